//! `zkinfer demo --market`: the proving market end to end on a local chain. anvil, the
//! model's verifier and the escrow; a coordinator and two executors (processes of this
//! binary); a customer who pays into the escrow and submits a sealed job over HTTP; the
//! job's lifecycle printed as each state is reached; and an auditor's check of the proof.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use zkinfer_coordinator::check::{commitment_hex, input_commitment};
use zkinfer_prover::{ModelDir, ProofEnvelope};
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK};
use zkinfer_verifier_contract::market::{deploy_market, open_job};
use zkinfer_verifier_contract::solc::Toolchain;

use crate::ui::timed;

/// The customer's payment: 0.1 ETH.
const PRICE_WEI: u128 = 100_000_000_000_000_000;
/// anvil accounts: 0 deploys, 1 is the customer, 2 and 3 are the executors.
const CUSTOMER: usize = 1;
const EXECUTORS: [usize; 2] = [2, 3];
/// The demo's customer API key.
const API_KEY: &str = "demo-key";

/// Child processes, killed when the demo ends (also on error).
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the market demo for the compiled, set-up model in `model_dir`.
pub(crate) fn demo_market(model_dir: &Path, input: &[f32], toolchain_dir: &Path, work: &Path) -> Result<()> {
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
    let addr = start_coordinator(&exe, &mut children, &market_dir, model_dir, &rpc, contracts.escrow)?;
    println!("coordinator at http://{addr} (logs in {})", market_dir.display());
    for (n, &account) in EXECUTORS.iter().enumerate() {
        let state = market_dir.join(format!("executor{n}"));
        let price = (n as u64 + 1) * 10_000_000_000_000_000;
        children.0.push(
            Command::new(&exe)
                .args(["executor", "--coordinator", &format!("http://{addr}"), "--key", &chain.key_hex(account)])
                .args(["--model", &format!("demo:{}", model_dir.display()), "--heartbeat-secs", "2", "--price-wei", &price.to_string()])
                .args(["--state-dir", &state.display().to_string(), "--rpc-url", &rpc, "--escrow", &format!("{:#x}", contracts.escrow)])
                .stdout(log(&market_dir, &format!("executor{n}.log"))?)
                .stderr(log(&market_dir, &format!("executor{n}.err"))?)
                .spawn()?,
        );
        println!("executor {:#x} started (asks {price} wei)", chain.account(account));
    }
    let http = Http { base: format!("http://{addr}"), client: reqwest::Client::new() };
    rt.block_on(async {
        let executors = http.wait_for_executors(2).await?;
        // The customer computes the commitment from the public model.
        let commitment = input_commitment(&loaded.model, input)?;
        let allow: Vec<Address> = EXECUTORS.iter().map(|&a| chain.account(a)).collect();
        let before: Vec<U256> = futures_balances(&chain, &EXECUTORS).await?;
        let escrow_job = open_job(&chain, &contracts, CUSTOMER, commitment.parse()?, U256::from(PRICE_WEI), 3600, allow).await?;
        println!(
            "customer {:#x} paid {PRICE_WEI} wei into escrow job {escrow_job} for input commitment {commitment}",
            chain.account(CUSTOMER)
        );
        let id = http.submit_sealed(&executors, input, &commitment, escrow_job).await?;
        println!("customer submitted job {id}, its input sealed (HPKE) to both executors\n\nlifecycle of job {id}:");
        let job = http.follow(id).await?;
        audit(&http, &loaded, id, &commitment).await?;
        report_payment(&chain, &job, &before).await
    })
}

fn log(dir: &Path, name: &str) -> Result<Stdio> {
    Ok(Stdio::from(std::fs::File::create(dir.join(name))?))
}

fn start_coordinator(exe: &Path, children: &mut Children, dir: &Path, model: &Path, rpc: &str, escrow: Address) -> Result<String> {
    let db = format!("sqlite:{}", dir.join("coordinator.db").display());
    children.0.push(
        Command::new(exe)
            .args(["coordinator", "--listen", "127.0.0.1:0", "--database-url", &db, "--api-key", &format!("customer:{API_KEY}")])
            .args(["--model", &format!("demo:{}", model.display()), "--lease-secs", "10", "--long-poll-secs", "5"])
            .args(["--rpc-url", rpc, "--escrow", &format!("{escrow:#x}"), "--chain-poll-ms", "200"])
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

async fn futures_balances(chain: &LocalChain, accounts: &[usize]) -> Result<Vec<U256>> {
    let mut out = Vec::new();
    for &a in accounts {
        out.push(chain.balance(chain.account(a)).await?);
    }
    Ok(out)
}

/// The customer's HTTP client.
struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    async fn get(&self, path: &str) -> Result<Value> {
        let r = self.client.get(format!("{}{path}", self.base)).header("x-api-key", API_KEY).send().await?;
        let status = r.status();
        let body = r.bytes().await?;
        if !status.is_success() {
            bail!("GET {path}: {status} {}", String::from_utf8_lossy(&body));
        }
        Ok(serde_json::from_slice(&body)?)
    }

    async fn wait_for_executors(&self, n: usize) -> Result<Vec<Value>> {
        let start = Instant::now();
        loop {
            let list = self.get("/v1/executors").await?;
            let list = list.as_array().cloned().unwrap_or_default();
            if list.len() >= n {
                return Ok(list);
            }
            if start.elapsed() > Duration::from_secs(120) {
                bail!("only {} of {n} executors registered (they load the proving key first)", list.len());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn submit_sealed(&self, executors: &[Value], input: &[f32], commitment: &str, escrow_job: u64) -> Result<i64> {
        let plaintext = serde_json::to_vec(input)?;
        let mut sealed = serde_json::Map::new();
        for e in executors {
            let pk = hex::decode(e["hpke_public_key"].as_str().context("an executor without an HPKE key")?)?;
            let address = e["address"].as_str().context("an executor without an address")?;
            sealed.insert(address.to_string(), json!(hex::encode(zkinfer_coordinator::seal::seal(&pk, "demo", &plaintext)?)));
        }
        let body =
            json!({ "model_id": "demo", "sealed": sealed, "input_commitment": commitment, "escrow_job": escrow_job, "deadline_s": 3600 });
        let r = self.client.post(format!("{}/v1/jobs", self.base)).header("x-api-key", API_KEY).body(body.to_string()).send().await?;
        let status = r.status();
        let v: Value = serde_json::from_slice(&r.bytes().await?)?;
        if !status.is_success() {
            bail!("submitting the job: {status} {v}");
        }
        v["job_id"].as_i64().context("no job id")
    }

    /// Prints each state of the job as it is reached; returns the settled job.
    async fn follow(&self, id: i64) -> Result<Value> {
        let (start, mut shown) = (Instant::now(), 0);
        loop {
            let job = self.get(&format!("/v1/jobs/{id}")).await?;
            let events = job["events"].as_array().cloned().unwrap_or_default();
            let t0 = events.first().and_then(|e| e[1].as_i64()).unwrap_or(0);
            for e in &events[shown..] {
                let (state, at) = (e[0].as_str().unwrap_or("?"), e[1].as_i64().unwrap_or(t0));
                let who = match state {
                    "assigned" | "proving" | "proved" => format!("  executor {}", job["executor"].as_str().unwrap_or("?")),
                    "settled" => format!("  paid on chain in tx {}", job["payment"]["tx"].as_str().unwrap_or("?")),
                    _ => String::new(),
                };
                println!("  {state:<9} +{:>6.2}s{who}", (at - t0) as f64 / 1e3);
            }
            shown = events.len();
            match job["state"].as_str() {
                Some("settled") => return Ok(job),
                Some(s @ ("failed" | "expired" | "refunded")) => bail!("job {id} ended {s}: {job}"),
                _ if start.elapsed() > Duration::from_secs(600) => bail!("job {id} did not settle in 10 minutes: {job}"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// An auditor downloads the proof and checks it against the model's keys and the commitment.
async fn audit(http: &Http, loaded: &zkinfer_prover::Loaded, id: i64, commitment: &str) -> Result<()> {
    let r = http.client.get(format!("{}/v1/jobs/{id}/proof", http.base)).header("x-api-key", API_KEY).send().await?;
    let bytes = r.error_for_status()?.bytes().await?;
    let env = ProofEnvelope::from_bytes(&bytes)?;
    let instances = zkinfer_prover::verify(&loaded.params, &loaded.vk, &env, loaded.bindings, loaded.model.num_instances())?;
    if instances.first().map(commitment_hex).as_deref() != Some(commitment) {
        bail!("the proof does not bind the customer's input commitment");
    }
    println!("\nauditor: the downloaded proof ({} bytes) verifies against the model's keys and binds input {commitment}", bytes.len());
    Ok(())
}

async fn report_payment(chain: &LocalChain, job: &Value, before: &[U256]) -> Result<()> {
    let payee = job["payment"]["executor"].as_str().context("no payment recorded")?;
    let tx = job["payment"]["tx"].as_str().context("no payment tx")?.parse()?;
    let (gas, fee) = chain.gas(tx).await?;
    let i = EXECUTORS.iter().position(|&a| format!("{:#x}", chain.account(a)) == payee).context("paid to an unknown executor")?;
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
