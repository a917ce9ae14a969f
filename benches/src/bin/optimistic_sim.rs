//! Seeded simulation of optimistic verification's economics (design.md §7): for cheating
//! rates 1%–20% and audit probabilities around the coordinator's least one, the detection
//! rate, the cheater's expected gain per job against honest work (negative where the design
//! says cheating does not pay), honest executors' extra cost, and the market's total cost per
//! job against always-ZK. Prints a markdown table; `--json FILE` writes the figures for
//! `benches/plots.py`.
//!
//! Run: `cargo run --release -p zkinfer-benches --bin optimistic_sim -- --json target/optimistic_sim.json`

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zkinfer_protocol::optimistic::min_audit_bps;

/// Gas of each escrow call, measured on anvil (osaka) by
/// `verifier-contract/tests/onchain.rs` for the shipped MLP (papers/benchmarks.md).
mod gas {
    pub const OPEN_ZK: f64 = 173_391.0;
    pub const SUBMIT_PROOF: f64 = 979_263.0;
    pub const OPEN_OPTIMISTIC: f64 = 222_315.0;
    pub const POST: f64 = 119_368.0;
    pub const FINALIZE: f64 = 77_823.0;
    pub const CHALLENGE: f64 = 69_608.0;
    pub const RESOLVE: f64 = 987_523.0;
    pub const SLASH: f64 = 75_845.0;
}

/// What one run assumes (every amount in ETH).
#[derive(Clone, Copy, Debug)]
struct Params {
    price: f64,
    bond: f64,
    challenge_bond: f64,
    /// ETH per unit of gas (1 gwei by default).
    gas_price: f64,
    /// ETH per CPU-second.
    cpu_price: f64,
    /// CPU-seconds to run the model once, and to prove it.
    run_s: f64,
    prove_s: f64,
    /// Probability that the sampled validator is honest and online.
    validator_honest: f64,
    /// Share of honest results that a customer challenges anyway.
    frivolous: f64,
    /// The challenge window (seconds) and the yearly rate the bond's capital would earn
    /// elsewhere: what locking the bond for the window costs.
    window_s: f64,
    capital_rate: f64,
    /// The coordinator's safety factor (basis points).
    safety_bps: u32,
    jobs: usize,
    seed: u64,
}

/// The figures of one (cheating rate, audit probability) pair.
#[derive(Clone, Debug, serde::Serialize)]
struct Row {
    cheat_rate: f64,
    audit_p: f64,
    /// Cheated jobs caught, over cheated jobs.
    detection: f64,
    /// The cheater's gain per job over honest work (ETH): negative means cheating does not pay.
    cheater_gain_per_job: f64,
    /// What an honest executor pays per job beyond running it (ETH): its bond locked for the
    /// window, and frivolous disputes it must prove, less the challengers' bonds it takes.
    honest_extra_per_job: f64,
    /// The market's cost per job (gas, compute, disputes), optimistic and always-ZK (ETH).
    optimistic_cost_per_job: f64,
    zk_cost_per_job: f64,
}

fn simulate(p: &Params, cheat_rate: f64, audit_p: f64) -> Row {
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed ^ (cheat_rate.to_bits().rotate_left(17)) ^ audit_p.to_bits());
    let gas = |g: f64| g * p.gas_price;
    let (run, prove) = (p.run_s * p.cpu_price, p.prove_s * p.cpu_price);
    let lockup = p.bond * p.capital_rate * p.window_s / (365.0 * 86_400.0);
    let honest_profit = p.price - run - gas(gas::POST + gas::FINALIZE) - lockup;
    let (mut cheated, mut caught, mut cheater_profit, mut honest_extra, mut cost) = (0usize, 0usize, 0.0, 0.0, 0.0);
    for _ in 0..p.jobs {
        let audited = rng.gen::<f64>() < audit_p;
        // Every job: open, post, and the validator's re-execution when sampled.
        cost += gas(gas::OPEN_OPTIMISTIC + gas::POST) + if audited { run } else { 0.0 };
        if rng.gen::<f64>() < cheat_rate {
            cheated += 1;
            // A wrong result is caught when audited by an honest validator: challenged, not
            // proved, slashed. The cheater skipped the run; the worst case for the design is a
            // cheater whose puppet challenges first and takes back half the bond.
            if audited && rng.gen::<f64>() < p.validator_honest {
                caught += 1;
                cheater_profit += -(p.bond / 2.0) - gas(gas::POST);
                cost += gas(gas::CHALLENGE + gas::SLASH);
            } else {
                // Paid, and its wrong output is worth up to the price to it (design.md §7).
                cheater_profit += 2.0 * p.price - gas(gas::POST + gas::FINALIZE);
                cost += gas(gas::FINALIZE);
            }
        } else {
            cheater_profit += honest_profit;
            honest_extra += lockup;
            cost += run + lockup;
            if rng.gen::<f64>() < p.frivolous {
                // The executor proves and takes the challenger's bond.
                honest_extra += prove + gas(gas::RESOLVE) - p.challenge_bond;
                cost += prove + gas(gas::CHALLENGE + gas::RESOLVE);
            } else {
                cost += gas(gas::FINALIZE);
            }
        }
    }
    let n = p.jobs as f64;
    Row {
        cheat_rate,
        audit_p,
        detection: if cheated > 0 { caught as f64 / cheated as f64 } else { 0.0 },
        cheater_gain_per_job: cheater_profit / n - honest_profit,
        honest_extra_per_job: honest_extra / n,
        optimistic_cost_per_job: cost / n,
        zk_cost_per_job: gas(gas::OPEN_ZK + gas::SUBMIT_PROOF) + prove,
    }
}

/// Seeded simulation of optimistic verification's economics. Defaults: the demo's terms, the
/// MLP's measured run and prove times.
#[derive(clap::Parser, Debug)]
#[command(version, about)]
struct Config {
    /// The job's price (ETH).
    #[arg(long, env = "ZKINFER_SIM_PRICE", default_value_t = 0.1)]
    price: f64,
    /// The executor's bond per job (ETH).
    #[arg(long, env = "ZKINFER_SIM_BOND", default_value_t = 1.0)]
    bond: f64,
    /// The challenger's bond (ETH).
    #[arg(long, env = "ZKINFER_SIM_CHALLENGE_BOND", default_value_t = 0.01)]
    challenge_bond: f64,
    /// Gas price (gwei).
    #[arg(long, env = "ZKINFER_SIM_GAS_PRICE_GWEI", default_value_t = 1.0)]
    gas_price_gwei: f64,
    /// What a CPU-second costs (ETH).
    #[arg(long, env = "ZKINFER_SIM_CPU_ETH_PER_S", default_value_t = 1e-6)]
    cpu_eth_per_s: f64,
    /// CPU-seconds to run the model once (the MLP's measured 0.005 s).
    #[arg(long, env = "ZKINFER_SIM_RUN_S", default_value_t = 0.005)]
    run_s: f64,
    /// CPU-seconds to prove it (the MLP's measured 4.9 s).
    #[arg(long, env = "ZKINFER_SIM_PROVE_S", default_value_t = 4.9)]
    prove_s: f64,
    /// Probability that the sampled validator is honest and online.
    #[arg(long, env = "ZKINFER_SIM_VALIDATOR_HONEST", default_value_t = 1.0)]
    validator_honest: f64,
    /// Share of honest results that a customer challenges anyway.
    #[arg(long, env = "ZKINFER_SIM_FRIVOLOUS", default_value_t = 0.01)]
    frivolous: f64,
    /// The challenge window (seconds).
    #[arg(long, env = "ZKINFER_SIM_WINDOW_S", default_value_t = 3600.0)]
    window_s: f64,
    /// Yearly rate the bond's capital would earn elsewhere.
    #[arg(long, env = "ZKINFER_SIM_CAPITAL_RATE", default_value_t = 0.05)]
    capital_rate: f64,
    /// The coordinator's safety factor (basis points).
    #[arg(long, env = "ZKINFER_SIM_SAFETY_BPS", default_value_t = 15_000)]
    safety_bps: u32,
    /// Jobs simulated per (cheating rate, audit probability).
    #[arg(long, env = "ZKINFER_SIM_JOBS", default_value_t = 200_000)]
    jobs: usize,
    /// The simulation's seed.
    #[arg(long, env = "ZKINFER_SIM_SEED", default_value_t = 7)]
    seed: u64,
    /// Write the figures as JSON here (for benches/plots.py).
    #[arg(long, env = "ZKINFER_SIM_JSON")]
    json: Option<PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let c = <Config as clap::Parser>::parse();
    let p = Params {
        price: c.price,
        bond: c.bond,
        challenge_bond: c.challenge_bond,
        gas_price: c.gas_price_gwei * 1e-9,
        cpu_price: c.cpu_eth_per_s,
        run_s: c.run_s,
        prove_s: c.prove_s,
        validator_honest: c.validator_honest,
        frivolous: c.frivolous,
        window_s: c.window_s,
        capital_rate: c.capital_rate,
        safety_bps: c.safety_bps,
        jobs: c.jobs,
        seed: c.seed,
    };
    let wei = |eth: f64| alloy_u256(eth);
    let least = min_audit_bps(wei(p.price), wei(p.bond), p.safety_bps).map_or(1.0, |b| f64::from(b) / 1e4);
    let ps = [least / 4.0, least / 2.0, least, (2.0 * least).min(1.0), 1.0];
    let rates = [0.01, 0.02, 0.05, 0.10, 0.20];
    println!(
        "price {} ETH, bond {} ETH: the coordinator's least audit probability is {:.1}% ({}x safety)\n",
        p.price,
        p.bond,
        least * 100.0,
        f64::from(p.safety_bps) / 1e4
    );
    println!("| cheating rate | audit p | detection | cheater's gain per job (ETH) | honest extra per job (ETH) | optimistic cost per job (ETH) | always-ZK cost per job (ETH) |");
    println!("|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for &q in &rates {
        for &a in &ps {
            let r = simulate(&p, q, a);
            println!(
                "| {:.0}% | {:.1}% | {:.3} | {:+.5} | {:.6} | {:.6} | {:.6} |",
                q * 100.0,
                a * 100.0,
                r.detection,
                r.cheater_gain_per_job,
                r.honest_extra_per_job,
                r.optimistic_cost_per_job,
                r.zk_cost_per_job
            );
            rows.push(r);
        }
    }
    println!();
    if let Some(path) = c.json {
        let doc = serde_json::json!({ "least_audit_p": least, "params": format!("{p:?}"), "rows": rows });
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&doc)?)?;
        std::fs::rename(&tmp, &path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// ETH as wei, for the protocol's integer rule.
fn alloy_u256(eth: f64) -> alloy::primitives::U256 {
    alloy::primitives::U256::from((eth * 1e18).round() as u128)
}
