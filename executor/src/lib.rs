//! The proving market's executor: registers with the coordinator (models, price, hardware,
//! and the HPKE key that customers seal inputs to), long-polls for a job, opens its sealed
//! input, proves it with the model's local keys while renewing its lease, delivers the proof,
//! and submits it to the on-chain escrow to be paid ([`settle`], crash-safe).
//!
//! Every coordinator request is signed with the executor's Ethereum key
//! ([`zkinfer_coordinator::auth`]); the same key pays for and receives on-chain transactions.
//!
//! # Feature flags
//! None.

mod client;
mod models;
pub mod settle;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use serde::Deserialize;
use zkinfer_coordinator::seal::SealKey;
use zkinfer_coordinator::store::ExecutorInfo;
use zkinfer_prover::{CommitParams, Loaded, ModelDir, MsmChoice};

use crate::client::Client;
use crate::settle::{Escrow, Journal, Pending, Settled};

/// Seconds a delivery waits for an unreachable coordinator, one try a second.
const DELIVERY_RETRIES: u32 = 60;

/// Errors of the executor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model directory could not be loaded.
    #[error("model `{model}`: {source}")]
    Model {
        /// The model id.
        model: String,
        /// Why.
        source: zkinfer_prover::Error,
    },
    /// The coordinator could not be reached or answered with an error.
    #[error("coordinator: {0}")]
    Coordinator(String),
    /// A job could not be proved.
    #[error("job {job}: {reason}")]
    Prove {
        /// The job.
        job: i64,
        /// Why.
        reason: String,
    },
    /// The coordinator refused a delivered proof.
    #[error("the coordinator rejected the proof: {0}")]
    Rejected(String),
    /// The chain could not be reached, or refused a submission.
    #[error("chain: {0}")]
    Chain(String),
    /// The journal of unpaid proofs could not be read or written.
    #[error("journal: {0}")]
    Journal(String),
}

/// Result with the executor's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Where the escrow is.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// The escrow contract.
    pub escrow: Address,
}

/// What an executor needs to run.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// The coordinator's base URL, e.g. `http://127.0.0.1:8080`.
    pub coordinator: String,
    /// This executor's key: its address is its identity and its payee.
    pub key: PrivateKeySigner,
    /// Model id → set-up model directory.
    pub models: HashMap<String, PathBuf>,
    /// How often to renew a lease while proving.
    pub heartbeat: Duration,
    /// The price it asks per job (wei), told to the coordinator's router.
    pub price_wei: U256,
    /// Where the journal of unpaid proofs lives.
    pub state_dir: PathBuf,
    /// The escrow to submit proofs to; `None` delivers to the coordinator only.
    pub chain: Option<ChainConfig>,
    /// Also prove the models registered with the coordinator, set up with this SRS under
    /// `state_dir/models` ([`models`]).
    pub fetch_models: Option<zkinfer_prover::srs::SrsChoice>,
    /// How proofs' commitments are computed (`precomputed`: the SRS's cached fixed-base tables).
    pub msm: MsmChoice,
}

/// A lease, as the coordinator sends it.
#[derive(Clone, Debug, Deserialize)]
struct Lease {
    job: i64,
    model_id: String,
    input: Vec<u8>,
    sealed: bool,
    escrow_job: Option<u64>,
}

/// A loaded model with its proving key.
struct Prover {
    loaded: Loaded,
    pk: halo2_proofs::plonk::ProvingKey<halo2_proofs::halo2curves::bn256::G1Affine>,
    params: CommitParams,
}

impl Prover {
    fn load(model: &str, dir: &std::path::Path, msm: MsmChoice) -> Result<Self> {
        let err = |source| Error::Model { model: model.to_string(), source };
        let d = ModelDir::new(dir);
        let loaded = d.load().map_err(err)?;
        let pk = d.load_pk(&loaded).map_err(err)?;
        let (params, fallback) = d.commit_params_or_cpu(&loaded, msm).map_err(err)?;
        if let Some(reason) = fallback {
            eprintln!("model {model}: CUDA MSM unavailable ({reason}): committing with the CPU's precomputed tables");
        }
        Ok(Prover { loaded, pk, params })
    }

    /// Proves the job's input (a JSON list of numbers); returns the proof file's bytes.
    fn prove(&self, job: i64, input: &[u8]) -> Result<Vec<u8>> {
        let fail = |reason: String| Error::Prove { job, reason };
        let values: Vec<f32> = serde_json::from_slice(input).map_err(|e| fail(format!("input: {e}")))?;
        let model = self.loaded.model.clone();
        let q = model.quantize_inputs(&[values]).map_err(|e| fail(e.to_string()))?;
        let env = zkinfer_prover::prove(&self.params, &self.pk, model, q, self.loaded.bindings).map_err(|e| fail(e.to_string()))?;
        env.to_bytes().map_err(|e| fail(e.to_string()))
    }
}

/// A running executor's parts.
struct Executor {
    cfg: ExecutorConfig,
    client: Client,
    provers: HashMap<String, Arc<Prover>>,
    seal: SealKey,
    escrow: Option<Escrow>,
    journal: Journal,
}

/// Runs the executor until the process is stopped: register, resume unpaid proofs, then
/// claim, prove, deliver, get paid, repeat.
pub async fn run(cfg: ExecutorConfig) -> Result<()> {
    let mut provers = HashMap::new();
    for (id, dir) in &cfg.models {
        provers.insert(id.clone(), Arc::new(Prover::load(id, dir, cfg.msm)?));
    }
    let escrow = cfg.chain.as_ref().map(|c| Escrow::connect(&c.rpc_url, c.escrow, &cfg.key)).transpose()?;
    let ex = Executor {
        client: Client::new(&cfg.coordinator, cfg.key.clone()),
        seal: SealKey::derive(cfg.key.to_bytes().as_slice()),
        journal: Journal::new(&cfg.state_dir),
        provers,
        escrow,
        cfg,
    };
    let mut ex = ex;
    ex.sync_models().await;
    ex.register().await?;
    let name = ex.client.name();
    loop {
        if ex.sync_models().await {
            ex.register().await?;
        }
        // Unpaid proofs first (left by a crash, or by a chain that was unreachable).
        if let Err(e) = ex.resume().await {
            eprintln!("executor {name}: {e}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let lease: Lease = match ex.client.post(&format!("/v1/executors/{name}/claim"), Vec::new()).await {
            Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => continue, // the long-poll ended empty
            Ok(r) if r.status().is_success() => match r.bytes().await.map(|b| serde_json::from_slice(&b)) {
                Ok(Ok(l)) => l,
                other => return Err(Error::Coordinator(format!("unreadable lease: {other:?}"))),
            },
            Ok(r) => return Err(Error::Coordinator(format!("claim answered {}: {}", r.status(), r.text().await.unwrap_or_default()))),
            Err(e) => {
                eprintln!("executor {name}: coordinator unreachable ({e}); retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = ex.work(lease).await {
            eprintln!("executor {name}: {e}");
        }
    }
}

impl Executor {
    /// Tells the coordinator what it serves, retrying until the coordinator is up.
    async fn register(&self) -> Result<()> {
        let mut models: Vec<String> = self.provers.keys().cloned().collect();
        models.sort();
        let info = ExecutorInfo {
            address: String::new(),
            hpke_public_key: hex::encode(self.seal.public_bytes()),
            price_wei: self.cfg.price_wei.to_string(),
            gpu: false,
            models,
        };
        let body = serde_json::to_vec(&info).map_err(|e| Error::Coordinator(e.to_string()))?;
        let path = format!("/v1/executors/{}/register", self.client.name());
        loop {
            match self.client.post(&path, body.clone()).await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => {
                    return Err(Error::Coordinator(format!("register answered {}: {}", r.status(), r.text().await.unwrap_or_default())))
                }
                Err(e) => {
                    eprintln!("executor {}: coordinator unreachable ({e}); retrying", self.client.name());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Finishes what a previous run left in the journal: deliver, then get paid.
    async fn resume(&self) -> Result<()> {
        for mut entry in self.journal.entries()? {
            println!("executor {}: resuming job {} (escrow job {})", self.client.name(), entry.job, entry.escrow_job);
            self.deliver_and_settle(&mut entry).await?;
        }
        Ok(())
    }

    async fn work(&self, lease: Lease) -> Result<()> {
        let (job, name) = (lease.job, self.client.name());
        let Some(prover) = self.provers.get(&lease.model_id).cloned() else {
            // Not ours to prove: let the lease lapse so another executor gets it.
            eprintln!("executor {name}: job {job} is for model `{}`, which is not loaded here", lease.model_id);
            return Ok(());
        };
        self.client.expect(&format!("/v1/jobs/{job}/start"), Vec::new()).await?;
        println!("executor {name}: proving job {job}");
        let beat = self.heartbeat(job);
        let input = if lease.sealed { self.seal.open(&lease.model_id, &lease.input).map_err(|e| e.to_string()) } else { Ok(lease.input) };
        let proved = match input {
            Ok(input) => match tokio::task::spawn_blocking(move || prover.prove(job, &input)).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(e) => Err(format!("the prover panicked: {e}")),
            },
            Err(e) => Err(e),
        };
        let result = match proved {
            Ok(proof) => self.finish(job, lease.escrow_job, proof).await,
            Err(reason) => {
                eprintln!("executor {name}: job {job}: {reason}");
                let body = serde_json::to_vec(&serde_json::json!({ "reason": reason })).map_err(|e| Error::Coordinator(e.to_string()))?;
                self.client.expect(&format!("/v1/jobs/{job}/fail"), body).await
            }
        };
        beat.abort();
        result
    }

    fn heartbeat(&self, job: i64) -> tokio::task::JoinHandle<()> {
        let (client, path, every, name) =
            (self.client.clone(), format!("/v1/jobs/{job}/heartbeat"), self.cfg.heartbeat, self.client.name());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = client.expect(&path, Vec::new()).await {
                    eprintln!("executor {name}: heartbeat failed: {e}");
                }
            }
        })
    }

    /// Delivers a proof; for a paid job, journals it first and then gets paid.
    async fn finish(&self, job: i64, escrow_job: Option<u64>, proof: Vec<u8>) -> Result<()> {
        match (escrow_job, &self.escrow) {
            (Some(escrow_job), Some(_)) => {
                let mut entry = Pending { job, escrow_job, proof: hex::encode(&proof), delivered: false, tx: None };
                self.journal.put(&entry)?;
                self.deliver_and_settle(&mut entry).await
            }
            (Some(escrow_job), None) => {
                eprintln!(
                    "executor {}: job {job} is paid by escrow job {escrow_job}, but no --rpc-url/--escrow is set",
                    self.client.name()
                );
                self.deliver(job, proof).await.map(|_| ())
            }
            (None, _) => self.deliver(job, proof).await.map(|_| ()),
        }
    }

    /// Delivers a proof. `Ok(false)` when the job moved on (its lease lapsed and it was
    /// re-leased or proved by another executor): the proof is still valid on chain.
    async fn deliver(&self, job: i64, proof: Vec<u8>) -> Result<bool> {
        // An unreachable coordinator (restarting, say) gets DELIVERY_RETRIES seconds to come back.
        let mut tries = 0;
        let r = loop {
            match self.client.post(&format!("/v1/jobs/{job}/proof"), proof.clone()).await {
                Ok(r) => break r,
                Err(e) if tries < DELIVERY_RETRIES => {
                    tries += 1;
                    eprintln!("executor {}: delivering job {job}: {e}; retrying", self.client.name());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(Error::Coordinator(e)),
            }
        };
        let status = r.status();
        if status.is_success() {
            println!("executor {}: delivered job {job}", self.client.name());
            return Ok(true);
        }
        let text = r.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::CONFLICT {
            eprintln!("executor {}: job {job} moved on before delivery: {text}", self.client.name());
            return Ok(false);
        }
        if status.is_client_error() {
            return Err(Error::Rejected(format!("job {job}: {status} {text}")));
        }
        Err(Error::Coordinator(format!("delivering job {job}: {status} {text}")))
    }

    async fn deliver_and_settle(&self, entry: &mut Pending) -> Result<()> {
        let name = self.client.name();
        if !entry.delivered {
            let proof = hex::decode(&entry.proof).map_err(|e| Error::Journal(e.to_string()))?;
            if let Err(e) = self.deliver(entry.job, proof).await {
                if matches!(e, Error::Rejected(_)) {
                    // The proof itself was refused: the escrow would refuse it too.
                    self.journal.done(entry.escrow_job)?;
                }
                return Err(e);
            }
            entry.delivered = true;
            self.journal.put(entry)?;
        }
        let Some(escrow) = &self.escrow else { return Ok(()) };
        match escrow.settle(&self.journal, entry).await? {
            Settled::Paid(tx) => println!("executor {name}: paid for job {} (escrow job {}) in tx {tx:#x}", entry.job, entry.escrow_job),
            Settled::AlreadyPaid { to } => {
                println!("executor {name}: escrow job {} was already paid to {to:#x}; not submitting again", entry.escrow_job)
            }
        }
        self.journal.done(entry.escrow_job)
    }
}
