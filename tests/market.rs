//! `zkinfer coordinator` and `zkinfer executor` as processes, on a real chain (anvil): a
//! customer seals a job's input to two executors, pays for it in the escrow and submits it
//! over HTTP; the job is proved, delivered, paid on chain and settled, and balances show the
//! executor paid exactly the price, once. An executor killed mid-proof loses the job to the
//! other, which is paid; the coordinator's database and logs never hold the input in
//! plaintext; jobs queued and running survive a coordinator kill -9 (SQLite and Postgres).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use serde_json::{json, Value};
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK};
use zkinfer_verifier_contract::market::{deploy_market, open_job, MarketContracts};
use zkinfer_verifier_contract::solc::Toolchain;

const BIN: &str = env!("CARGO_BIN_EXE_zkinfer");

/// Kills its processes when dropped (also when a test fails).
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn example(f: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/mlp").join(f)
}

/// Compiles and sets up the shipped MLP in `dir`; returns its directory.
fn mlp_dir(dir: &Path) -> PathBuf {
    let d = dir.join("mlp");
    let cal = example("calibration.json");
    for args in [
        vec!["compile", example("model.onnx").to_str().unwrap(), "-o", d.to_str().unwrap(), "--calibration", cal.to_str().unwrap()],
        vec!["setup", d.to_str().unwrap(), "--dev-srs"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    d
}

fn log_file(dir: &Path, name: &str) -> Stdio {
    Stdio::from(std::fs::File::create(dir.join(name)).unwrap())
}

/// Starts the coordinator on a free port, its output in `dir`; returns it and its address.
fn coordinator(dir: &Path, model: &Path, lease_secs: &str, chain: Option<(&str, Address)>) -> (Child, String) {
    coordinator_on(&format!("sqlite:{}", dir.join("coordinator.db").display()), dir, model, lease_secs, chain)
}

fn coordinator_on(db: &str, dir: &Path, model: &Path, lease_secs: &str, chain: Option<(&str, Address)>) -> (Child, String) {
    coordinator_at("127.0.0.1:0", db, dir, model, lease_secs, chain)
}

fn coordinator_at(listen: &str, db: &str, dir: &Path, model: &Path, lease_secs: &str, chain: Option<(&str, Address)>) -> (Child, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["coordinator", "--listen", listen, "--database-url", db, "--api-key", "alice:key-alice"]).args([
        "--model",
        &format!("mlp:{}", model.display()),
        "--lease-secs",
        lease_secs,
        "--long-poll-secs",
        "1",
    ]);
    if let Some((rpc, escrow)) = chain {
        cmd.args(["--rpc-url", rpc, "--escrow", &format!("{escrow:#x}"), "--chain-poll-ms", "200"]);
    }
    let child = cmd.stdout(log_file(dir, "coordinator.out")).stderr(log_file(dir, "coordinator.err")).spawn().unwrap();
    let start = Instant::now();
    loop {
        let out = std::fs::read_to_string(dir.join("coordinator.out")).unwrap_or_default();
        if let Some(addr) = out.split("http://").nth(1).and_then(|r| r.split_whitespace().next()) {
            return (child, addr.to_string());
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the coordinator did not start: {}",
            std::fs::read_to_string(dir.join("coordinator.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn executor(dir: &Path, addr: &str, key: &str, model: &Path, chain: Option<(&str, Address)>, n: usize) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(["executor", "--coordinator", &format!("http://{addr}"), "--key", key, "--heartbeat-secs", "1"])
        .args(["--model", &format!("mlp:{}", model.display()), "--price-wei", "1000"])
        .args(["--state-dir", dir.join(format!("executor{n}")).to_str().unwrap()]);
    if let Some((rpc, escrow)) = chain {
        cmd.args(["--rpc-url", rpc, "--escrow", &format!("{escrow:#x}")]);
    }
    cmd.stdout(log_file(dir, &format!("executor{n}.out"))).stderr(log_file(dir, &format!("executor{n}.err"))).spawn().unwrap()
}

/// One HTTP/1.1 request as customer alice; returns the status code and the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nx-api-key: key-alice\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").expect("headers end");
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("a status line");
    let mut body = resp[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
    out
}

fn get(addr: &str, path: &str) -> Value {
    let (status, body) = http(addr, "GET", path, "");
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn wait_for(addr: &str, id: i64, state: &str, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        let j = get(addr, &format!("/v1/jobs/{id}"));
        if j["state"] == state {
            return j;
        }
        assert!(start.elapsed() < limit, "job {id} never reached {state}: {j}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn input_values() -> Vec<f32> {
    let input: Value = serde_json::from_str(&std::fs::read_to_string(example("input.json")).unwrap()).unwrap();
    input["input_data"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect()
}

/// The customer's commitment to its input, computed locally from the public model.
fn commitment(model: &Path, values: &[f32]) -> String {
    let loaded = zkinfer_prover::ModelDir::new(model).load().unwrap();
    zkinfer_coordinator::check::input_commitment(&loaded.model, values).unwrap()
}

/// A chain with the market's contracts, a coordinator settling through them, and two
/// executors (anvil accounts 2 and 3); account 1 is the customer.
struct Market {
    dir: tempfile::TempDir,
    model: PathBuf,
    chain: LocalChain,
    contracts: MarketContracts,
    rt: tokio::runtime::Runtime,
    procs: Procs,
    addr: String,
}

const CUSTOMER: usize = 1;
const EXECUTORS: [usize; 2] = [2, 3];

impl Market {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let model = mlp_dir(dir.path());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let tc = Toolchain::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("verifier-contract")).expect("run scripts/setup.sh");
        let chain = LocalChain::start(&tc.anvil().unwrap(), DEFAULT_HARDFORK).unwrap();
        let loaded = zkinfer_prover::ModelDir::new(&model).load().unwrap();
        let contracts = rt.block_on(deploy_market(&chain, &tc, &loaded, 0)).unwrap();
        let on_chain = Some((chain.endpoint(), contracts.escrow));
        let on_chain = on_chain.as_ref().map(|(r, e)| (r.as_str(), *e));
        let (c, addr) = coordinator(dir.path(), &model, "3", on_chain);
        let mut procs = Procs(vec![c]);
        for (n, &account) in EXECUTORS.iter().enumerate() {
            procs.0.push(executor(dir.path(), &addr, &chain.key_hex(account), &model, on_chain, n));
        }
        let start = Instant::now();
        while get(&addr, "/v1/executors").as_array().unwrap().len() < 2 {
            assert!(start.elapsed() < Duration::from_secs(120), "the executors did not register");
            std::thread::sleep(Duration::from_millis(100));
        }
        Market { dir, model, chain, contracts, rt, procs, addr }
    }

    fn balance(&self, account: usize) -> U256 {
        self.rt.block_on(self.chain.balance(self.chain.account(account))).unwrap()
    }

    /// Pays `price` into the escrow for the input, sealed to both executors, and submits the
    /// job; returns the coordinator's and the escrow's job ids, and the commitment.
    fn submit_paid_sealed(&self, values: &[f32], price: U256) -> (i64, u64, String) {
        let c = commitment(&self.model, values);
        let allow: Vec<Address> = EXECUTORS.iter().map(|&a| self.chain.account(a)).collect();
        let escrow_job =
            self.rt.block_on(open_job(&self.chain, &self.contracts, CUSTOMER, c.parse().unwrap(), price, 3600, allow)).unwrap();
        let plaintext = serde_json::to_vec(values).unwrap();
        let mut sealed = serde_json::Map::new();
        for e in get(&self.addr, "/v1/executors").as_array().unwrap() {
            let pk = hex::decode(e["hpke_public_key"].as_str().unwrap()).unwrap();
            let ct = zkinfer_coordinator::seal::seal(&pk, "mlp", &plaintext).unwrap();
            sealed.insert(e["address"].as_str().unwrap().to_string(), json!(hex::encode(ct)));
        }
        let body = json!({ "model_id": "mlp", "sealed": sealed, "input_commitment": c, "escrow_job": escrow_job, "deadline_s": 3600 });
        let (status, resp) = http(&self.addr, "POST", "/v1/jobs", &body.to_string());
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&resp));
        (serde_json::from_slice::<Value>(&resp).unwrap()["job_id"].as_i64().unwrap(), escrow_job, c)
    }

    /// Asserts the payment: the payee got exactly `price` less its gas, every other executor
    /// nothing, the escrow holds nothing, and the escrow paid this job exactly once.
    fn assert_paid_once(&self, job: &Value, escrow_job: u64, before: &[U256], price: U256) -> usize {
        let payment = &job["payment"];
        let payee = payment["executor"].as_str().unwrap();
        assert_eq!(payment["price_wei"], price.to_string());
        let tx = payment["tx"].as_str().unwrap().parse().unwrap();
        let fee = self.rt.block_on(self.chain.fee(tx)).unwrap();
        let winner = EXECUTORS.iter().position(|&a| format!("{:#x}", self.chain.account(a)) == payee).expect("a test executor was paid");
        for (i, &account) in EXECUTORS.iter().enumerate() {
            let expected = if i == winner { before[i] + price - fee } else { before[i] };
            assert_eq!(self.balance(account), expected, "executor {i}'s balance");
        }
        assert_eq!(self.rt.block_on(self.chain.balance(self.contracts.escrow)).unwrap(), U256::ZERO);
        let escrow = zkinfer_coordinator::chain::Escrow::connect(&self.chain.endpoint(), self.contracts.escrow).unwrap();
        let (events, _) = self.rt.block_on(escrow.payments_since(0)).unwrap();
        assert_eq!(events.iter().filter(|p| p.escrow_job == escrow_job).count(), 1, "paid exactly once: {events:?}");
        winner
    }

    /// An auditor downloads the proof and checks it offline against the model.
    fn audit(&self, id: i64, commitment: &str) {
        let (status, proof) = http(&self.addr, "GET", &format!("/v1/jobs/{id}/proof"), "");
        assert_eq!(status, 200);
        let env = zkinfer_prover::ProofEnvelope::from_bytes(&proof).unwrap();
        let mut first = env.instances[0];
        first.reverse();
        assert_eq!(format!("0x{}", hex::encode(first)), commitment, "the proof binds the customer's input");
        let file = self.dir.path().join(format!("job{id}.zkp"));
        std::fs::write(&file, proof).unwrap();
        let out = Command::new(BIN).args(["verify", self.model.to_str().unwrap(), file.to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
}

fn states(job: &Value) -> Vec<String> {
    job["events"].as_array().unwrap().iter().map(|e| e[0].as_str().unwrap().to_string()).collect()
}

fn price() -> U256 {
    U256::from(10u64).pow(U256::from(17u64)) // 0.1 ETH
}

#[test]
fn a_sealed_job_is_proved_paid_on_chain_and_settled_and_its_input_never_reaches_the_coordinator() {
    let m = Market::start();
    let values = input_values();
    let before: Vec<U256> = EXECUTORS.iter().map(|&a| m.balance(a)).collect();
    let (id, escrow_job, c) = m.submit_paid_sealed(&values, price());
    let job = wait_for(&m.addr, id, "settled", Duration::from_secs(240));
    assert_eq!(states(&job), ["queued", "assigned", "proving", "proved", "settled"]);
    assert_eq!(job["escrow_job"], escrow_job);
    m.assert_paid_once(&job, escrow_job, &before, price());
    m.audit(id, &c);

    // Nothing the coordinator wrote holds the input: not the database (with its WAL), not its logs.
    let plaintext = serde_json::to_vec(&values).unwrap();
    let head = serde_json::to_string(&values[..3]).unwrap();
    let head = head.trim_matches(|ch| ch == '[' || ch == ']').to_string();
    let floats: Vec<u8> = values[..4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut scanned = Vec::new();
    for f in ["coordinator.db", "coordinator.db-wal", "coordinator.out", "coordinator.err"] {
        scanned.extend(std::fs::read(m.dir.path().join(f)).unwrap_or_default());
    }
    let has = |needle: &[u8]| scanned.windows(needle.len()).any(|w| w == needle);
    assert!(has(c.as_bytes()), "control: the scan sees what the coordinator stores (the commitment)");
    assert!(!has(&plaintext), "the input's JSON is in the coordinator's files");
    assert!(!has(head.as_bytes()), "the input's first values are in the coordinator's files: {head}");
    assert!(!has(&floats), "the input's f32 bytes are in the coordinator's files");
}

#[test]
fn an_executor_killed_mid_proof_loses_the_job_to_the_other_which_is_paid_exactly_once() {
    let mut m = Market::start();
    let before: Vec<U256> = EXECUTORS.iter().map(|&a| m.balance(a)).collect();
    let (id, escrow_job, c) = m.submit_paid_sealed(&input_values(), price());
    let proving = wait_for(&m.addr, id, "proving", Duration::from_secs(60));
    let holder = proving["executor"].as_str().unwrap().to_string();
    let victim = EXECUTORS.iter().position(|&a| format!("{:#x}", m.chain.account(a)) == holder).expect("a test executor holds it");
    m.procs.0[1 + victim].kill().unwrap(); // SIGKILL mid-proof: no goodbye, its lease just stops
    let job = wait_for(&m.addr, id, "settled", Duration::from_secs(240));
    assert_ne!(job["executor"].as_str(), Some(holder.as_str()), "{job}");
    assert_eq!(job["attempts"], 2);
    assert_eq!(states(&job), ["queued", "assigned", "proving", "queued", "assigned", "proving", "proved", "settled"]);
    let winner = m.assert_paid_once(&job, escrow_job, &before, price());
    assert_ne!(winner, victim);
    m.audit(id, &c);
}

#[test]
fn queued_and_running_jobs_survive_a_coordinator_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    survive_kill_9(&format!("sqlite:{}", dir.path().join("coordinator.db").display()), dir);
}

#[test]
fn queued_and_running_jobs_survive_a_coordinator_kill_9_and_restart_on_postgres() {
    use sqlx::Connection;
    let Ok(admin) = std::env::var("ZKINFER_TEST_DATABASE_URL") else {
        eprintln!("SKIPPED on Postgres: ZKINFER_TEST_DATABASE_URL is not set (scripts/test.sh starts a server)");
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
        for sql in ["DROP DATABASE IF EXISTS zkt_market_restart WITH (FORCE)", "CREATE DATABASE zkt_market_restart"] {
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
    });
    let url = format!("{}/zkt_market_restart", admin.rsplit_once('/').unwrap().0);
    survive_kill_9(&url, tempfile::tempdir().unwrap());
}

/// Three jobs, one of them proving: the coordinator is SIGKILLed and restarted on the same
/// address; the executor reconnects, and every job is proved exactly once.
fn survive_kill_9(db: &str, dir: tempfile::TempDir) {
    let model = mlp_dir(dir.path());
    // A fixed port, so that the executor finds the restarted coordinator.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let (first, addr) = coordinator_at(&listen, db, dir.path(), &model, "60", None);
    let mut procs = Procs(vec![first]);
    let input = serde_json::to_string(&input_values()).unwrap();
    let ids: Vec<i64> = (0..3)
        .map(|_| {
            let (status, body) =
                http(&addr, "POST", "/v1/jobs", &format!(r#"{{"model_id": "mlp", "input": {input}, "deadline_s": 3600}}"#));
            assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
            serde_json::from_slice::<Value>(&body).unwrap()["job_id"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    let (status, body) = http(&addr, "POST", "/v1/jobs", r#"{"model_id": "mlp", "input": [1.0], "deadline_s": 60}"#);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("\"code\":\"input_length\""));
    let key = "0x0101010101010101010101010101010101010101010101010101010101010101";
    procs.0.push(executor(dir.path(), &addr, key, &model, None, 0));
    wait_for(&addr, 1, "proving", Duration::from_secs(60));
    procs.0[0].kill().unwrap(); // SIGKILL while job 1 is proving and jobs 2 and 3 are queued
    procs.0[0].wait().unwrap();
    let (second, addr) = coordinator_at(&listen, db, dir.path(), &model, "60", None);
    procs.0.push(second);
    for id in ids {
        let job = wait_for(&addr, id, "proved", Duration::from_secs(240));
        assert_eq!(job["attempts"], 1, "job {id}: {job}");
        assert_eq!(states(&job), ["queued", "assigned", "proving", "proved"], "job {id}: {job}");
    }
    assert_eq!(http(&addr, "GET", "/v1/jobs/4", "").0, 404, "no job was duplicated");
}

#[test]
fn the_market_demo_prints_each_state_as_it_is_reached_and_the_exact_payment() {
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(BIN)
        .args(["demo", "--market", "--workdir", dir.path().to_str().unwrap()])
        .args(["--model", root.join("examples/mlp").to_str().unwrap(), "--toolchain", root.join("verifier-contract").to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let lifecycle: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("lifecycle of job"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(lifecycle, ["queued", "assigned", "proving", "proved", "settled"], "{text}");
    assert!(text.contains("auditor: the downloaded proof") && text.contains("escrow paid executor"), "{text}");
}

#[test]
fn a_restarted_executor_never_submits_a_proof_twice() {
    use alloy::providers::Provider;
    use zkinfer_executor::settle::{Escrow, Journal, Pending, Settled};
    let dir = tempfile::tempdir().unwrap();
    let model = mlp_dir(dir.path());
    let proof_file = dir.path().join("job.zkp");
    let out = Command::new(BIN)
        .args(["prove", model.to_str().unwrap(), "--input", example("input.json").to_str().unwrap(), "-o", proof_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let proof = std::fs::read(&proof_file).unwrap();
    let env = zkinfer_prover::ProofEnvelope::from_bytes(&proof).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tc = Toolchain::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("verifier-contract")).unwrap();
    let chain = LocalChain::start(&tc.anvil().unwrap(), DEFAULT_HARDFORK).unwrap();
    let loaded = zkinfer_prover::ModelDir::new(&model).load().unwrap();
    let contracts = rt.block_on(deploy_market(&chain, &tc, &loaded, 0)).unwrap();
    let me = chain.account(2);
    let commitment = U256::from_le_bytes(env.instances[0]);
    let escrow_job = rt.block_on(open_job(&chain, &contracts, CUSTOMER, commitment, price(), 3600, vec![me])).unwrap();
    let key: alloy::signers::local::PrivateKeySigner = chain.key_hex(2).parse().unwrap();
    let escrow = Escrow::connect(&chain.endpoint(), contracts.escrow, &key).unwrap();
    let journal = Journal::new(&dir.path().join("state"));
    let nonce = || rt.block_on(async { chain.provider(0).get_transaction_count(me).await }).unwrap();
    let balance = || rt.block_on(chain.balance(me)).unwrap();
    let (before, nonce0) = (balance(), nonce());

    let fresh = Pending { job: 1, escrow_job, proof: hex::encode(&proof), delivered: true, tx: None };
    let mut entry = fresh.clone();
    journal.put(&entry).unwrap();
    let Settled::Paid(tx) = rt.block_on(escrow.settle(&journal, &mut entry)).unwrap() else { panic!("not paid") };
    assert_eq!(journal.entries().unwrap()[0].tx, Some(tx), "the transaction is journaled before it is awaited");
    assert_eq!(nonce(), nonce0 + 1);
    // A restart after the transaction was sent: the journaled transaction is found, none is sent.
    let mut resumed = journal.entries().unwrap().remove(0);
    assert_eq!(rt.block_on(escrow.settle(&journal, &mut resumed)).unwrap(), Settled::Paid(tx));
    // A restart that lost the transaction hash: the escrow says it is paid, none is sent.
    let mut lost = fresh.clone();
    assert_eq!(rt.block_on(escrow.settle(&journal, &mut lost)).unwrap(), Settled::AlreadyPaid { to: me });
    assert_eq!(nonce(), nonce0 + 1, "no second submission");
    let fee = rt.block_on(chain.fee(tx)).unwrap();
    assert_eq!(balance(), before + price() - fee, "paid exactly once");
    journal.done(escrow_job).unwrap();
    assert!(journal.entries().unwrap().is_empty());
}

#[test]
fn a_model_registered_over_http_is_set_up_by_an_executor_that_fetches_it_and_proved() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let db = format!("sqlite:{}", dir.path().join("coordinator.db").display());
    let start_coordinator = || {
        let child = Command::new(BIN)
            .args([
                "coordinator",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db,
                "--api-key",
                "alice:key-alice",
                "--long-poll-secs",
                "1",
            ])
            .args(["--models-dir", models.to_str().unwrap(), "--dev-srs"])
            .stdout(log_file(dir.path(), "coordinator.out"))
            .stderr(log_file(dir.path(), "coordinator.err"))
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            let out = std::fs::read_to_string(dir.path().join("coordinator.out")).unwrap_or_default();
            if let Some(addr) = out.split("http://").nth(1).and_then(|r| r.split_whitespace().next()) {
                return (child, addr.to_string());
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the coordinator did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let (c, addr) = start_coordinator();
    let mut procs = Procs(vec![c]);
    let register = |id: &str, onnx: &Path| {
        let calibration: Value = serde_json::from_str(&std::fs::read_to_string(example("calibration.json")).unwrap()).unwrap();
        let body = json!({ "id": id, "onnx": hex::encode(std::fs::read(onnx).unwrap()), "calibration": calibration["input_data"] });
        http(&addr, "POST", "/v1/models", &body.to_string())
    };
    let (status, body) = register("mlp", &example("model.onnx"));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let registered: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((registered["model_id"].as_str(), registered["input_len"].as_u64()), (Some("mlp"), Some(784)));
    let unsupported = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/unsupported/model.onnx");
    let (status, body) = register("bad", &unsupported);
    let text = String::from_utf8_lossy(&body);
    assert!(status == 400 && text.contains("\"code\":\"bad_request\"") && text.contains("unsupported"), "{status} {text}");
    assert_eq!(register("mlp", &example("model.onnx")).0, 400, "an id cannot be registered twice");

    let mut exec = Command::new(BIN);
    exec.args(["executor", "--coordinator", &format!("http://{addr}"), "--fetch-models", "--dev-srs", "--heartbeat-secs", "1"])
        .args(["--state-dir", dir.path().join("executor").to_str().unwrap()])
        .stdout(log_file(dir.path(), "executor.out"))
        .stderr(log_file(dir.path(), "executor.err"));
    procs.0.push(exec.spawn().unwrap());
    let input = serde_json::to_string(&input_values()).unwrap();
    let (status, body) = http(&addr, "POST", "/v1/jobs", &format!(r#"{{"model_id": "mlp", "input": {input}, "deadline_s": 600}}"#));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<Value>(&body).unwrap()["job_id"].as_i64().unwrap();
    wait_for(&addr, id, "proved", Duration::from_secs(240));
    let (status, proof) = http(&addr, "GET", &format!("/v1/jobs/{id}/proof"), "");
    assert_eq!(status, 200);
    let file = dir.path().join("job.zkp");
    std::fs::write(&file, proof).unwrap();
    let out = Command::new(BIN).args(["verify", models.join("mlp").to_str().unwrap(), file.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // A restarted coordinator serves the models registered before.
    procs.0[0].kill().unwrap();
    procs.0[0].wait().unwrap();
    let (c, addr) = start_coordinator();
    procs.0.push(c);
    let listed = get(&addr, "/v1/models");
    assert_eq!(listed[0]["id"], "mlp", "{listed}");
    assert_eq!(listed[0]["model_hash"], format!("0x{}", registered["model_hash"].as_str().unwrap()));
}
