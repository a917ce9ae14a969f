//! What the process-level market tests share: the binary, child processes that die with the
//! test, the shipped MLP compiled and set up, coordinators and executors as processes, the
//! customer's client, and a market on anvil (escrow, coordinator, two staked executors).

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use serde_json::Value;
use zkinfer_protocol::client::{Client, CustomerClient};
use zkinfer_protocol::seal::{seal, EscrowBinding, SealContext};
use zkinfer_protocol::types::{InputPayload, JobView, SubmitJob};
use zkinfer_protocol::{Commitment, EscrowJobId, HexBytes, JobId, ModelId, Salt};
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK};
use zkinfer_verifier_contract::escrow::{EscrowClient, EscrowEvent, Logged, OpenJob};
use zkinfer_verifier_contract::market::{deploy_market, MarketContracts};
use zkinfer_verifier_contract::solc::Toolchain;

pub const BIN: &str = env!("CARGO_BIN_EXE_zkinfer");

/// anvil accounts: 0 deploys, 1 is the customer, 2 and 3 are the executors.
pub const CUSTOMER: usize = 1;
pub const EXECUTORS: [usize; 2] = [2, 3];
/// What each executor stakes, and what a job asks: 0.01 ETH.
pub const BOND_WEI: u64 = 10_000_000_000_000_000;

/// Kills its processes when dropped (also when a test fails).
pub struct Procs(pub std::sync::Mutex<Vec<Child>>);

impl Procs {
    pub fn new(children: Vec<Child>) -> Self {
        Procs(std::sync::Mutex::new(children))
    }

    /// Kills child `i` (SIGKILL).
    pub fn kill(&self, i: usize) {
        let mut c = self.0.lock().unwrap();
        c[i].kill().unwrap();
        c[i].wait().unwrap();
    }

    pub fn push(&self, child: Child) {
        self.0.lock().unwrap().push(child);
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in self.0.get_mut().map(|v| v.iter_mut()).into_iter().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example(f: &str) -> PathBuf {
    root().join("examples/mlp").join(f)
}

pub fn toolchain() -> Toolchain {
    Toolchain::new(root().join("verifier-contract")).expect("run scripts/setup.sh")
}

/// Compiles and sets up the shipped MLP in `dir`; returns its directory.
pub fn mlp_dir(dir: &Path) -> PathBuf {
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

pub fn log_file(dir: &Path, name: &str) -> Stdio {
    Stdio::from(std::fs::File::create(dir.join(name)).unwrap())
}

/// Starts `zkinfer coordinator` with `args`, its output in `dir`; returns it and its address.
#[allow(clippy::zombie_processes)] // the caller owns the child (Procs kills and waits for it)
pub fn spawn_coordinator(dir: &Path, args: &[&str]) -> (Child, String) {
    let child = Command::new(BIN)
        .arg("coordinator")
        .args(args)
        .stdout(log_file(dir, "coordinator.out"))
        .stderr(log_file(dir, "coordinator.err"))
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let out = std::fs::read_to_string(dir.join("coordinator.out")).unwrap_or_default();
        if let Some(addr) = out.split("http://").nth(1).and_then(|r| r.split_whitespace().next()) {
            return (child, addr.to_string());
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the coordinator did not start: {}",
            std::fs::read_to_string(dir.join("coordinator.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the coordinator for model `mlp` on `listen` with database `db`; with `chain`, it
/// settles through that escrow (no confirmations: anvil mines only on transactions).
pub fn coordinator_at(
    listen: &str,
    db: &str,
    dir: &Path,
    model: &Path,
    lease_secs: &str,
    chain: Option<(&str, Address)>,
) -> (Child, String) {
    coordinator_with(listen, db, dir, model, lease_secs, chain, &[])
}

/// [`coordinator_at`] with `extra` arguments.
pub fn coordinator_with(
    listen: &str,
    db: &str,
    dir: &Path,
    model: &Path,
    lease_secs: &str,
    chain: Option<(&str, Address)>,
    extra: &[&str],
) -> (Child, String) {
    let model_arg = format!("mlp:{}", model.display());
    let mut args = vec!["--listen", listen, "--database-url", db, "--api-key", "alice:key-alice", "--api-key", "bob:key-bob"];
    args.extend(["--model", &model_arg, "--lease-secs", lease_secs, "--long-poll-secs", "1"]);
    let (escrow, tc) = (chain.map(|(_, e)| format!("{e:#x}")), root().join("verifier-contract").display().to_string());
    if let (Some((rpc, _)), Some(escrow)) = (chain, &escrow) {
        args.extend(["--rpc-url", rpc, "--escrow", escrow, "--chain-poll-ms", "200", "--confirmations", "0", "--toolchain", &tc]);
    }
    args.extend(extra);
    spawn_coordinator(dir, &args)
}

pub fn coordinator(dir: &Path, model: &Path, lease_secs: &str, chain: Option<(&str, Address)>) -> (Child, String) {
    coordinator_at("127.0.0.1:0", &format!("sqlite:{}", dir.join("coordinator.db").display()), dir, model, lease_secs, chain)
}

/// Starts executor `n` with `key` for model `mlp`; on chain it stakes [`BOND_WEI`].
pub fn executor(dir: &Path, addr: &str, key: &str, model: &Path, chain: Option<(&str, Address)>, n: usize) -> Child {
    executor_with(dir, addr, key, model, chain, n, &[])
}

/// [`executor`] with `extra` arguments.
pub fn executor_with(dir: &Path, addr: &str, key: &str, model: &Path, chain: Option<(&str, Address)>, n: usize, extra: &[&str]) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(["executor", "--coordinator", &format!("http://{addr}"), "--key", key, "--heartbeat-secs", "1"])
        .args(["--model", &format!("mlp:{}", model.display()), "--price-wei", "1000"])
        .args(["--state-dir", dir.join(format!("executor{n}")).to_str().unwrap()]);
    if let Some((rpc, escrow)) = chain {
        cmd.args(["--rpc-url", rpc, "--escrow", &format!("{escrow:#x}"), "--stake-wei", &BOND_WEI.to_string()]);
    }
    cmd.args(extra);
    cmd.stdout(log_file(dir, &format!("executor{n}.out"))).stderr(log_file(dir, &format!("executor{n}.err"))).spawn().unwrap()
}

/// A customer's client of the coordinator at `addr`.
pub fn customer(addr: &str, key: &str) -> CustomerClient {
    Client::new(&format!("http://{addr}")).unwrap().customer(key)
}

/// Customer alice's client.
pub fn alice(addr: &str) -> CustomerClient {
    customer(addr, "key-alice")
}

pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

pub fn wait_for(addr: &str, id: JobId, state: &str, limit: Duration) -> JobView {
    let c = alice(addr);
    let start = Instant::now();
    loop {
        let j = block_on(c.job(id)).unwrap();
        if j.state.as_str() == state {
            return j;
        }
        assert!(start.elapsed() < limit, "job {id} never reached {state}: {j:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn mlp_id() -> ModelId {
    ModelId::new("mlp").unwrap()
}

/// A plain job for the shipped input.
pub fn plain_job(values: Vec<f32>, deadline_s: u64) -> SubmitJob {
    SubmitJob {
        model_id: mlp_id(),
        input: Some(values),
        sealed: None,
        input_commitment: None,
        salt: None,
        escrow_job: None,
        deadline_s,
        customer_signature: None,
        verification: zkinfer_protocol::Verification::Zk,
    }
}

pub fn input_values() -> Vec<f32> {
    let input: Value = serde_json::from_str(&std::fs::read_to_string(example("input.json")).unwrap()).unwrap();
    input["input_data"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect()
}

/// The customer's commitment to its input with `salt`, computed locally from the public model.
pub fn commitment(model: &Path, values: &[f32], salt: Salt) -> Commitment {
    let compiled = zkinfer_prover::ModelDir::new(model).read_compiled().unwrap();
    Commitment::from(compiled.model.input_commitment(&compiled.model.split_inputs(values).unwrap(), salt.to_fr()).unwrap())
}

pub fn price() -> U256 {
    U256::from(10u64).pow(U256::from(17u64)) // 0.1 ETH
}

pub fn states(job: &JobView) -> Vec<String> {
    job.events.iter().map(|e| e.state.as_str().to_string()).collect()
}

/// What a paid job is opened with; tests change what an attack needs.
#[derive(Clone, Debug)]
pub struct Terms {
    pub price: U256,
    pub deadline_s: u64,
    pub min_bond: U256,
    pub allow: Vec<Address>,
    pub model: Option<u64>,
    pub claimable: bool,
}

/// A chain with the market's contracts, a coordinator settling through them, and two staked
/// executors (anvil accounts 2 and 3); account 1 is the customer.
pub struct Market {
    pub dir: tempfile::TempDir,
    pub model: PathBuf,
    pub chain: LocalChain,
    pub contracts: MarketContracts,
    pub rt: tokio::runtime::Runtime,
    pub procs: Procs,
    pub addr: String,
}

impl Market {
    /// The market with both executors.
    pub fn start() -> Self {
        Self::start_with(EXECUTORS.len())
    }

    /// The market with the first `executors` of [`EXECUTORS`] running.
    pub fn start_with(executors: usize) -> Self {
        let specs: Vec<(usize, Vec<&str>)> = EXECUTORS.iter().take(executors).map(|&a| (a, vec![])).collect();
        Self::start_custom(None, &[], &specs)
    }

    /// A market on a chain mining a block every `block_time` seconds (`None`: one per
    /// transaction), with a coordinator given `coordinator_extra` arguments and one executor
    /// per `(account, extra arguments)`.
    pub fn start_custom(block_time: Option<u64>, coordinator_extra: &[&str], executors: &[(usize, Vec<&str>)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let model = mlp_dir(dir.path());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let tc = toolchain();
        let chain = LocalChain::start_with_block_time(&tc.anvil().unwrap(), DEFAULT_HARDFORK, block_time).unwrap();
        let loaded = zkinfer_prover::ModelDir::new(&model).load().unwrap();
        let contracts = rt.block_on(deploy_market(&chain, &tc, &loaded, 0)).unwrap();
        let endpoint = chain.endpoint();
        let on_chain = Some((endpoint.as_str(), contracts.escrow));
        let db = format!("sqlite:{}", dir.path().join("coordinator.db").display());
        let (c, addr) = coordinator_with("127.0.0.1:0", &db, dir.path(), &model, "3", on_chain, coordinator_extra);
        let procs = Procs::new(vec![c]);
        for (n, (account, extra)) in executors.iter().enumerate() {
            procs.push(executor_with(dir.path(), &addr, &chain.key_hex(*account), &model, on_chain, n, extra));
        }
        let start = Instant::now();
        while block_on(alice(&addr).executors()).unwrap().len() < executors.len() {
            assert!(start.elapsed() < Duration::from_secs(180), "the executors did not register");
            std::thread::sleep(Duration::from_millis(100));
        }
        Market { dir, model, chain, contracts, rt, procs, addr }
    }

    /// Adds a process that dies with the market.
    pub fn procs_push(&self, child: Child) {
        self.procs.0.lock().unwrap().push(child);
    }

    pub fn balance(&self, account: usize) -> U256 {
        self.rt.block_on(self.chain.balance(self.chain.account(account))).unwrap()
    }

    /// A client of the escrow sending as account `i`.
    pub fn escrow(&self, i: usize) -> EscrowClient {
        self.chain.escrow(self.contracts.escrow, i).unwrap()
    }

    pub fn chain_id(&self) -> u64 {
        self.rt.block_on(self.escrow(0).chain_id()).unwrap()
    }

    /// The default terms: the price, an hour, the bond, both executors allowed.
    pub fn terms(&self, price: U256) -> Terms {
        Terms {
            price,
            deadline_s: 3600,
            min_bond: U256::from(BOND_WEI),
            allow: EXECUTORS.iter().map(|&a| self.chain.account(a)).collect(),
            model: None,
            claimable: false,
        }
    }

    /// Opens an escrow job as `payer` for `commitment` on `terms`.
    pub fn open(&self, payer: usize, commitment: Commitment, terms: &Terms) -> EscrowJobId {
        let deadline = self.rt.block_on(self.chain.timestamp()).unwrap() + terms.deadline_s;
        let open = OpenJob {
            model: terms.model.unwrap_or(self.contracts.escrow_model),
            commitment,
            deadline,
            allow: terms.allow.clone(),
            token: None,
            price: terms.price,
            min_bond: terms.min_bond,
            claimable: terms.claimable,
            optimistic: None,
        };
        self.rt.block_on(self.escrow(payer).open_job(&open)).unwrap()
    }

    /// The sealed submission of `values` (with `salt`) for escrow job `escrow_job`, signed by
    /// account `signer`, sealed to every registered executor.
    pub fn sealed_submission(&self, values: &[f32], salt: Salt, c: Commitment, escrow_job: EscrowJobId, signer: usize) -> SubmitJob {
        let model = mlp_id();
        let binding = EscrowBinding { chain_id: self.chain_id(), escrow: self.contracts.escrow, job: escrow_job };
        let ctx = SealContext { model_id: &model, input_commitment: c, escrow: Some(binding) };
        let plaintext = serde_json::to_vec(&InputPayload { input: values.to_vec(), salt }).unwrap();
        let mut sealed = std::collections::BTreeMap::new();
        for e in self.rt.block_on(alice(&self.addr).executors()).unwrap() {
            sealed.insert(e.address, HexBytes(seal(&e.hpke_public_key.0, &ctx, &plaintext).unwrap()));
        }
        let signature = zkinfer_protocol::auth::sign_submission(&self.chain.signer(signer), &binding, &model, &c).unwrap();
        SubmitJob {
            model_id: model,
            input: None,
            sealed: Some(sealed),
            input_commitment: Some(c),
            salt: None,
            escrow_job: Some(escrow_job),
            deadline_s: 3600,
            customer_signature: Some(HexBytes(signature)),
            verification: zkinfer_protocol::Verification::Zk,
        }
    }

    /// Pays `price` into the escrow for the input, sealed to both executors, and submits the
    /// job; returns the coordinator's and the escrow's job ids, and the commitment.
    pub fn submit_paid_sealed(&self, values: &[f32], price: U256) -> (JobId, EscrowJobId, Commitment) {
        let salt = Salt::random();
        let c = commitment(&self.model, values, salt);
        let escrow_job = self.open(CUSTOMER, c, &self.terms(price));
        let job = self.sealed_submission(values, salt, c, escrow_job, CUSTOMER);
        let submitted = self.rt.block_on(alice(&self.addr).submit(&job)).unwrap();
        (submitted.job_id, escrow_job, c)
    }

    /// The escrow's `JobPaid` events for `escrow_job`.
    pub fn payments(&self, escrow_job: EscrowJobId) -> usize {
        let escrow = self.escrow(0);
        let latest = self.rt.block_on(escrow.block_number()).unwrap();
        let events = self.rt.block_on(escrow.events(0, latest)).unwrap();
        events.iter().filter(|l: &&Logged| matches!(l.event, EscrowEvent::Paid { job, .. } if job == escrow_job)).count()
    }

    /// Asserts the payment: the payee got exactly `price` less its gas, every other executor
    /// nothing, the escrow holds nothing but the stakes, and the escrow paid this job exactly once.
    pub fn assert_paid_once(&self, job: &JobView, escrow_job: EscrowJobId, before: &[U256], price: U256) -> usize {
        self.assert_paid_once_holding(job, escrow_job, before, price, U256::ZERO)
    }

    /// [`Self::assert_paid_once`] where the escrow also holds `held` for other open jobs.
    pub fn assert_paid_once_holding(&self, job: &JobView, escrow_job: EscrowJobId, before: &[U256], price: U256, held: U256) -> usize {
        let payment = job.payment.as_ref().expect("a payment");
        let payee = payment.executor.address();
        assert_eq!(payment.price_wei.to_string(), price.to_string());
        let fee = self.rt.block_on(self.chain.fee(payment.tx.0.into())).unwrap();
        let winner = EXECUTORS.iter().position(|&a| self.chain.account(a) == payee).expect("a test executor was paid");
        for (i, &account) in EXECUTORS.iter().enumerate() {
            let expected = if i == winner { before[i] + price - fee } else { before[i] };
            assert_eq!(self.balance(account), expected, "executor {i}'s balance");
        }
        let stakes: U256 =
            EXECUTORS.iter().map(|&a| self.rt.block_on(self.escrow(0).stake_of(self.chain.account(a))).unwrap().amount).sum();
        assert_eq!(
            self.rt.block_on(self.chain.balance(self.contracts.escrow)).unwrap(),
            stakes + held,
            "the escrow holds only the stakes (and open jobs' payments)"
        );
        assert_eq!(self.payments(escrow_job), 1, "paid exactly once");
        winner
    }

    /// An auditor downloads the proof and checks it offline against the model.
    pub fn audit(&self, id: JobId, commitment: Commitment) {
        let proof = self.rt.block_on(alice(&self.addr).proof(id)).unwrap();
        let env = zkinfer_prover::ProofEnvelope::from_bytes(&proof).unwrap();
        assert_eq!(Commitment::from_le_bytes(env.instances[0]).unwrap(), commitment, "the proof binds the customer's input");
        let file = self.dir.path().join(format!("job{id}.zkp"));
        std::fs::write(&file, proof).unwrap();
        let out = Command::new(BIN).args(["verify", self.model.to_str().unwrap(), file.to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
}
