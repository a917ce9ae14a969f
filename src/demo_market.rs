//! `zkinfer demo --market`: the proving market end to end on a local chain. anvil, the
//! model's verifier and the escrow; a coordinator and two executors (processes of this
//! binary); a customer who pays into the escrow and submits a sealed job over HTTP; the
//! job's lifecycle printed as each state is reached; and an auditor's check of the proof.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use anyhow::{bail, Context, Result};
use zkinfer_protocol::client::{Client, CustomerClient};
use zkinfer_protocol::types::JobView;
use zkinfer_protocol::{Commitment, JobId, JobState, ModelId};
use zkinfer_prover::{ModelDir, ProofEnvelope};
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK};
use zkinfer_verifier_contract::market::deploy_market;
use zkinfer_verifier_contract::solc::Toolchain;

use crate::customer::{place, Order, Payment};
use crate::ui::timed;

/// The customer's payment: 0.1 ETH.
const PRICE_WEI: u128 = 100_000_000_000_000_000;
/// The stake the job asks of its executor, and what each executor stakes: 0.01 ETH.
const MIN_BOND_WEI: u128 = 10_000_000_000_000_000;
/// anvil accounts: 0 deploys, 1 is the customer, 2 and 3 are the executors.
const CUSTOMER: usize = 1;
const EXECUTORS: [usize; 2] = [2, 3];
/// The demo's customer API key.
pub(crate) const API_KEY: &str = "demo-key";

/// Child processes, killed when the demo ends (also on error).
pub(crate) struct Children(pub(crate) Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the market demo for the compiled, set-up model in `model_dir`; returns the seconds
/// from the job's submission to its verified proof.
pub(crate) fn demo_market(model_dir: &Path, input: &[f32], toolchain_dir: &Path, work: &Path) -> Result<Option<f64>> {
    let toolchain = Toolchain::new(toolchain_dir)?;
    let loaded = ModelDir::new(model_dir).load()?;
    let market_dir = work.join("market");
    if market_dir.exists() {
        std::fs::remove_dir_all(&market_dir).with_context(|| format!("clearing {}", market_dir.display()))?;
    }
    std::fs::create_dir_all(&market_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let chain = LocalChain::start(&toolchain.anvil()?, DEFAULT_HARDFORK)?;
    let (contracts, t) =
        timed("deploying the verifier and the escrow on anvil", || rt.block_on(deploy_market(&chain, &toolchain, &loaded, 0)));
    let contracts = contracts?;
    println!(
        "anvil at {} ({} hardfork): verifier {:#x}, escrow {:#x}, model registered as {} ({:.1}s)",
        chain.endpoint(),
        chain.hardfork,
        contracts.verifier,
        contracts.escrow,
        contracts.escrow_model,
        t.as_secs_f64()
    );
    let exe = std::env::current_exe()?;
    let rpc = chain.endpoint();
    let mut children = Children(Vec::new());
    let addr = start_coordinator(&exe, &mut children, &market_dir, model_dir, &rpc, contracts.escrow, toolchain_dir, &[])?;
    println!("coordinator at http://{addr} (logs in {})", market_dir.display());
    for (n, &account) in EXECUTORS.iter().enumerate() {
        let state = market_dir.join(format!("executor{n}"));
        let price = (n as u64 + 1) * 10_000_000_000_000_000;
        children.0.push(
            Command::new(&exe)
                .args(["executor", "--coordinator", &format!("http://{addr}"), "--key", &chain.key_hex(account)])
                .args(["--model", &format!("demo:{}", model_dir.display()), "--heartbeat-secs", "2", "--price-wei", &price.to_string()])
                .args(["--state-dir", &state.display().to_string(), "--rpc-url", &rpc, "--escrow", &format!("{:#x}", contracts.escrow)])
                .args(["--stake-wei", &MIN_BOND_WEI.to_string()])
                .stdout(log(&market_dir, &format!("executor{n}.log"))?)
                .stderr(log(&market_dir, &format!("executor{n}.err"))?)
                .spawn()?,
        );
        println!("executor {:#x} started (asks {price} wei)", chain.account(account));
    }
    let client = Client::new(&format!("http://{addr}"))?.customer(API_KEY);
    let model_id = ModelId::new("demo")?;
    rt.block_on(async {
        wait_for_executors(&client, EXECUTORS.len()).await?;
        let before: Vec<U256> = balances(&chain, &EXECUTORS).await?;
        // The customer computes the commitment from the public model, pays, seals and submits
        // (what `zkinfer job submit` does).
        let payment = Payment {
            escrow: chain.escrow(contracts.escrow, CUSTOMER)?,
            key: chain.signer(CUSTOMER),
            price: U256::from(PRICE_WEI),
            token: None,
            min_bond: U256::from(MIN_BOND_WEI),
            escrow_model: Some(contracts.escrow_model),
            optimistic: None,
        };
        let order = Order {
            model: &model_id,
            model_dir,
            input: input.to_vec(),
            executors: &[],
            plain: false,
            deadline_s: 3600,
            payment: Some(payment),
            wait: Duration::from_secs(120),
            salt: None,
        };
        let placed = place(&client, order).await?;
        println!(
            "customer {:#x} paid {PRICE_WEI} wei into escrow job {} for input commitment {}",
            chain.account(CUSTOMER),
            placed.escrow_job.map_or("?".into(), |j| j.to_string()),
            placed.commitment
        );
        println!("customer submitted job {}, its input sealed (HPKE) to both executors\n\nlifecycle of job {}:", placed.job, placed.job);
        let job = follow(&client, placed.job).await?;
        audit(&client, &loaded, placed.job, placed.commitment).await?;
        report_payment(&chain, &job, &before).await?;
        let at = |s: JobState| job.events.iter().find(|e| e.state == s).map(|e| e.at_ms);
        Ok(at(JobState::Proved).zip(at(JobState::Queued)).map(|(p, q)| (p - q) as f64 / 1e3))
    })
}

pub(crate) fn log(dir: &Path, name: &str) -> Result<Stdio> {
    Ok(Stdio::from(std::fs::File::create(dir.join(name))?))
}

/// Starts the coordinator for model `demo` with `extra` arguments; returns its address.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_coordinator(
    exe: &Path,
    children: &mut Children,
    dir: &Path,
    model: &Path,
    rpc: &str,
    escrow: Address,
    toolchain: &Path,
    extra: &[&str],
) -> Result<String> {
    let db = format!("sqlite:{}", dir.join("coordinator.db").display());
    children.0.push(
        Command::new(exe)
            .args(["coordinator", "--listen", "127.0.0.1:0", "--database-url", &db, "--api-key", &format!("customer:{API_KEY}")])
            .args(["--model", &format!("demo:{}", model.display()), "--lease-secs", "10", "--long-poll-secs", "5"])
            .args(["--rpc-url", rpc, "--escrow", &format!("{escrow:#x}"), "--chain-poll-ms", "200", "--confirmations", "0"])
            .args(["--toolchain", &toolchain.display().to_string()])
            .args(extra)
            .stdout(log(dir, "coordinator.log")?)
            .stderr(log(dir, "coordinator.err")?)
            .spawn()?,
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let out = std::fs::read_to_string(dir.join("coordinator.log")).unwrap_or_default();
        if let Some(addr) = out.split("http://").nth(1).and_then(|r| r.split_whitespace().next()) {
            return Ok(addr.to_string());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the coordinator did not start: {}", std::fs::read_to_string(dir.join("coordinator.err")).unwrap_or_default())
}

async fn balances(chain: &LocalChain, accounts: &[usize]) -> Result<Vec<U256>> {
    let mut out = Vec::new();
    for &a in accounts {
        out.push(chain.balance(chain.account(a)).await?);
    }
    Ok(out)
}

pub(crate) async fn wait_for_executors(client: &CustomerClient, n: usize) -> Result<()> {
    let start = Instant::now();
    loop {
        let registered = client.executors().await?.len();
        if registered >= n {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(120) {
            bail!("only {registered} of {n} executors registered (they load the proving key first)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Prints each state of the job as it is reached; returns the settled job.
async fn follow(client: &CustomerClient, id: JobId) -> Result<JobView> {
    let (start, mut shown) = (Instant::now(), 0);
    loop {
        let job = client.job(id).await?;
        let t0 = job.events.first().map_or(0, |e| e.at_ms);
        for e in &job.events[shown..] {
            let who = match e.state {
                JobState::Assigned | JobState::Proving | JobState::Proved => {
                    format!("  executor {}", job.executor.map_or("?".into(), |x| x.to_string()))
                }
                JobState::Settled => format!("  paid on chain in tx {}", job.payment.as_ref().map_or("?".into(), |p| p.tx.to_string())),
                _ => String::new(),
            };
            println!("  {:<9} +{:>6.2}s{who}", e.state.as_str(), (e.at_ms - t0) as f64 / 1e3);
        }
        shown = job.events.len();
        match job.state {
            JobState::Settled => return Ok(job),
            s @ (JobState::Failed | JobState::Expired | JobState::Refunded) => bail!("job {id} ended {s}: {job:?}"),
            _ if start.elapsed() > Duration::from_secs(600) => bail!("job {id} did not settle in 10 minutes: {job:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// An auditor downloads the proof and checks it against the model's keys and the commitment.
async fn audit(client: &CustomerClient, loaded: &zkinfer_prover::Loaded, id: JobId, commitment: Commitment) -> Result<()> {
    let bytes = client.proof(id).await?;
    let env = ProofEnvelope::from_bytes(&bytes)?;
    let instances = zkinfer_prover::verify(&loaded.params, &loaded.vk, &env, loaded.bindings, loaded.model.num_instances())?;
    if instances.first().copied().map(Commitment::from) != Some(commitment) {
        bail!("the proof does not bind the customer's input commitment");
    }
    println!("\nauditor: the downloaded proof ({} bytes) verifies against the model's keys and binds input {commitment}", bytes.len());
    Ok(())
}

async fn report_payment(chain: &LocalChain, job: &JobView, before: &[U256]) -> Result<()> {
    let payment = job.payment.as_ref().context("no payment recorded")?;
    let (gas, fee) = chain.gas(alloy::primitives::B256::from(payment.tx.0)).await?;
    let payee = payment.executor;
    let i = EXECUTORS.iter().position(|&a| chain.account(a) == payee.address()).context("paid to an unknown executor")?;
    let after = chain.balance(chain.account(EXECUTORS[i])).await?;
    let gained = after + fee - before[i];
    if gained != U256::from(PRICE_WEI) {
        bail!("executor {payee} gained {gained} wei (+ {fee} gas), not the price {PRICE_WEI}");
    }
    println!("escrow paid executor {payee} exactly {gained} wei (its balance: +{gained} − {fee} for the {gas} gas of submitProof)");
    Ok(())
}

/// The input values of an example's input.json.
pub(crate) fn example_input(model: &Path) -> Result<Vec<f32>> {
    let p: PathBuf = model.join("input.json");
    let mut inputs = crate::commands::read_input(&p)?;
    if inputs.len() != 1 {
        bail!("{}: the market demo takes a model with one input", p.display());
    }
    Ok(inputs.remove(0))
}
