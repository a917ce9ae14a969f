//! `zkinfer demo --market --optimistic`: optimistic verification end to end on a local chain
//! that mines a block a second. A coordinator, an honest executor, a cheating one (it posts
//! wrong outputs, `--post-wrong-outputs`) and a validator; a customer submits one optimistic
//! job to each executor (sealed to it and to the validator). The honest job's result arrives
//! in about the model's run time and is paid after the challenge window; the cheater's is
//! re-executed by the validator, challenged, left unproved, and its executor slashed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use anyhow::{bail, Context, Result};
use zkinfer_protocol::client::{Client, CustomerClient};
use zkinfer_protocol::types::JobView;
use zkinfer_protocol::{ExecutorId, JobId, JobState, ModelId};
use zkinfer_prover::ModelDir;
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK};
use zkinfer_verifier_contract::escrow::{EscrowEvent, Logged};
use zkinfer_verifier_contract::market::deploy_market;
use zkinfer_verifier_contract::solc::Toolchain;

use crate::customer::{place, OptimisticAsk, Order, Payment};
use crate::demo_market::{log, start_coordinator, wait_for_executors, Children, API_KEY};

/// The customer's payment per job: 0.1 ETH.
const PRICE_WEI: u128 = 100_000_000_000_000_000;
/// Each job's bond: 1 ETH (the least audit probability that deters cheating is then
/// 2 × 1.5 × 0.1 / 1 = 30%); each executor stakes two.
const BOND_WEI: u128 = 1_000_000_000_000_000_000;
/// anvil accounts: 0 deploys, 1 is the customer, then the honest executor, the cheater and the validator.
const CUSTOMER: usize = 1;
const HONEST: usize = 2;
const CHEATER: usize = 3;
const VALIDATOR: usize = 4;
/// Short windows, so that the demo ends in a minute (a real market gives minutes to hours).
const CHALLENGE_WINDOW_S: u32 = 15;
const PROVE_WINDOW_S: u32 = 20;

fn eth(wei: U256) -> String {
    format!("{:.4} ETH", f64::from(wei) / 1e18)
}

/// Runs the optimistic demo for the compiled, set-up model in `model_dir`; `zk_seconds` is
/// how long the ZK market job took from submission to its verified proof, for comparison.
pub(crate) fn demo_optimistic(model_dir: &Path, input: &[f32], toolchain_dir: &Path, work: &Path, zk_seconds: Option<f64>) -> Result<()> {
    let toolchain = Toolchain::new(toolchain_dir)?;
    let loaded = ModelDir::new(model_dir).load()?;
    let dir = work.join("optimistic");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let chain = LocalChain::start_with_block_time(&toolchain.anvil()?, DEFAULT_HARDFORK, Some(1))?;
    let contracts = rt.block_on(deploy_market(&chain, &toolchain, &loaded, 0))?;
    println!(
        "anvil at {} (a block a second): escrow {:#x}, model registered as {}",
        chain.endpoint(),
        contracts.escrow,
        contracts.escrow_model
    );
    let exe = std::env::current_exe()?;
    let rpc = chain.endpoint();
    let mut children = Children(Vec::new());
    let (cw, pw) = (CHALLENGE_WINDOW_S.to_string(), PROVE_WINDOW_S.to_string());
    let extra = ["--min-challenge-window-secs", cw.as_str(), "--min-prove-window-secs", pw.as_str()];
    let addr = start_coordinator(&exe, &mut children, &dir, model_dir, &rpc, contracts.escrow, toolchain_dir, &extra)?;
    for (account, role, name) in [(HONEST, "executor", "honest"), (CHEATER, "executor", "cheater"), (VALIDATOR, "validator", "validator")] {
        let mut cmd = Command::new(&exe);
        cmd.args(["executor", "--coordinator", &format!("http://{addr}"), "--key", &chain.key_hex(account), "--role", role])
            .args(["--model", &format!("demo:{}", model_dir.display()), "--heartbeat-secs", "2", "--price-wei", "0"])
            .args([
                "--state-dir",
                &dir.join(name).display().to_string(),
                "--rpc-url",
                &rpc,
                "--escrow",
                &format!("{:#x}", contracts.escrow),
            ])
            .args(["--stake-wei", &(2 * BOND_WEI).to_string()]);
        if name == "cheater" {
            cmd.arg("--post-wrong-outputs");
        }
        children.0.push(cmd.stdout(log(&dir, &format!("{name}.log"))?).stderr(log(&dir, &format!("{name}.err"))?).spawn()?);
        println!("{name:<9} {:#x} ({role}), staking {}", chain.account(account), eth(U256::from(2 * BOND_WEI)));
    }
    let client = Client::new(&format!("http://{addr}"))?.customer(API_KEY);
    rt.block_on(async {
        wait_for_executors(&client, 3).await?;
        let escrow = chain.escrow(contracts.escrow, CUSTOMER)?;
        let from_block = escrow.block_number().await?;
        let honest = ExecutorId(chain.account(HONEST));
        let cheater = ExecutorId(chain.account(CHEATER));
        let validator = ExecutorId(chain.account(VALIDATOR));
        let terms = client.public().terms().await?.optimistic;
        let least = terms.min_audit_bps(U256::from(PRICE_WEI), U256::from(BOND_WEI)).context("the bond deters no cheating")?;
        println!(
            "\nthe coordinator's least audit probability for a {} job with a {} bond: {least} bps; the customer asks for 10000 (every result re-executed)",
            eth(U256::from(PRICE_WEI)),
            eth(U256::from(BOND_WEI))
        );
        let model = ModelId::new("demo")?;
        let payment = || Payment {
            escrow: escrow.clone(),
            key: chain.signer(CUSTOMER),
            price: U256::from(PRICE_WEI),
            token: None,
            min_bond: U256::from(BOND_WEI),
            escrow_model: Some(contracts.escrow_model),
            optimistic: Some(OptimisticAsk { audit_bps: Some(10_000), ..OptimisticAsk::default() }),
        };
        let (to_honest, to_cheater) = ([honest, validator], [cheater, validator]);
        let honest_job = place(&client, order(&model, model_dir, input, &to_honest, payment())).await?.job;
        println!("customer submitted job {honest_job} (sealed to the honest executor and the validator)");
        let cheat_job = place(&client, order(&model, model_dir, input, &to_cheater, payment())).await?.job;
        println!("customer submitted job {cheat_job} (sealed to the cheating executor and the validator)\n");
        let paid = follow(&client, honest_job, "honest", &[JobState::Settled]).await?;
        let latency = seconds_between(&paid, JobState::Queued, JobState::Posted).unwrap_or_default();
        println!("job {honest_job}: paid after the challenge window (result in {latency:.1} s, no proof)");
        if let Some(zk) = zk_seconds {
            println!("  (the ZK market job above waited {zk:.1} s for its proof)");
        }
        let slashed = follow(&client, cheat_job, "cheater", &[JobState::Slashed, JobState::Settled]).await?;
        if slashed.state != JobState::Slashed {
            bail!("the cheating executor's job ended {} instead of slashed: {slashed:?}", slashed.state);
        }
        println!("job {cheat_job}: the validator caught the wrong outputs; the executor could not prove them and was slashed");
        let latest = escrow.block_number().await?;
        report(&escrow.events(from_block, latest).await?, slashed.escrow_job, [honest, cheater, validator], &escrow).await
    })
}

/// An optimistic order sealed to exactly `executors`.
fn order<'a>(model: &'a ModelId, model_dir: &'a Path, input: &[f32], executors: &'a [ExecutorId], payment: Payment) -> Order<'a> {
    Order {
        model,
        model_dir,
        input: input.to_vec(),
        executors,
        plain: false,
        deadline_s: 3600,
        payment: Some(payment),
        wait: Duration::from_secs(120),
        salt: None,
    }
}

fn seconds_between(job: &JobView, from: JobState, to: JobState) -> Option<f64> {
    let at = |s| job.events.iter().find(|e| e.state == s).map(|e| e.at_ms);
    Some((at(to)? - at(from)?) as f64 / 1e3)
}

/// Prints each state of the job as it is reached; returns it once it reaches one of `until`.
async fn follow(client: &CustomerClient, id: JobId, label: &str, until: &[JobState]) -> Result<JobView> {
    let (start, mut shown, mut outputs_shown) = (Instant::now(), 0, false);
    loop {
        let job = client.job(id).await?;
        let t0 = job.events.first().map_or(0, |e| e.at_ms);
        for e in &job.events[shown..] {
            let detail = match (e.state, &job.result) {
                (JobState::Posted, Some(r)) => format!("  in tx {}", r.post_tx),
                (JobState::Challenged, Some(r)) => r.dispute.as_ref().map_or(String::new(), |d| format!("  by {}", d.challenger)),
                _ => String::new(),
            };
            println!("  job {id} ({label}) {:<10} +{:>6.2}s{detail}", e.state.as_str(), (e.at_ms - t0) as f64 / 1e3);
        }
        shown = job.events.len();
        // The outputs come with the executor's claim (the chain may show the post first).
        if let Some(r) = job.result.as_ref().filter(|r| !r.outputs.is_empty() && !outputs_shown) {
            let first: Vec<String> = r.outputs.iter().flatten().take(4).map(|v| format!("{v:.6}")).collect();
            println!("  job {id} ({label}) outputs [{}, …], claimed and signed by {}", first.join(", "), r.executor);
            outputs_shown = true;
        }
        if until.contains(&job.state) {
            return Ok(job);
        }
        if job.state.is_terminal() || matches!(job.state, JobState::Expired) {
            bail!("job {id} ended {}: {job:?}", job.state);
        }
        if start.elapsed() > Duration::from_secs(300) {
            bail!("job {id} did not end in 5 minutes: {job:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Prints who got what from the dispute, from the escrow's events and stakes.
async fn report(
    events: &[Logged],
    slashed_job: Option<zkinfer_protocol::EscrowJobId>,
    [honest, cheater, validator]: [ExecutorId; 3],
    escrow: &zkinfer_verifier_contract::escrow::EscrowClient,
) -> Result<()> {
    let job = slashed_job.context("the cheater's job has no escrow job")?;
    let reward = events.iter().find_map(|l| match &l.event {
        EscrowEvent::Resolved { job: j, reward, .. } if *j == job => Some(*reward),
        _ => None,
    });
    let refund = events.iter().find_map(|l| match &l.event {
        EscrowEvent::Refunded { job: j, amount, slashed } if *j == job => Some((*amount, *slashed)),
        _ => None,
    });
    let (Some(reward), Some((amount, to_customer))) = (reward, refund) else { bail!("no dispute outcome on chain for escrow job {job}") };
    println!("\non chain:");
    for (who, name) in [(honest, "honest executor"), (cheater, "cheating executor"), (validator, "validator")] {
        let s = escrow.stake_of(who.address()).await?;
        println!("  {name:<17} {who}: stake {} (locked {})", eth(s.amount), eth(s.locked));
    }
    println!(
        "  the cheater's bond was slashed: {} to the validator (with its challenge bond back), {} to the customer",
        eth(reward),
        eth(to_customer)
    );
    println!("  the customer was refunded the price, {}", eth(amount));
    Ok(())
}
