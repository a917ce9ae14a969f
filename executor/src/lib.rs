//! The proving market's executor: long-polls the coordinator for a job, proves it with the
//! model's local keys while renewing its lease, and delivers the proof.
//!
//! Every request is signed with the executor's Ethereum key ([`zkinfer_coordinator::auth`]).
//!
//! Status (issue #5): off-chain only. Sealed inputs, on-chain submission and crash-safe
//! resubmission are not built yet.
//!
//! # Feature flags
//! None.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use alloy::signers::local::PrivateKeySigner;
use serde::Deserialize;
use zkinfer_coordinator::auth;
use zkinfer_prover::{Loaded, ModelDir};

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
}

/// Result with the executor's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What an executor needs to run.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// The coordinator's base URL, e.g. `http://127.0.0.1:8080`.
    pub coordinator: String,
    /// This executor's key: its address is its identity.
    pub key: PrivateKeySigner,
    /// Model id → set-up model directory.
    pub models: HashMap<String, PathBuf>,
    /// How often to renew a lease while proving.
    pub heartbeat: Duration,
}

/// A lease, as the coordinator sends it.
#[derive(Clone, Debug, Deserialize)]
struct Lease {
    job: i64,
    model_id: String,
    input: Vec<u8>,
}

/// A loaded model with its proving key.
struct Prover {
    loaded: Loaded,
    pk: halo2_proofs::plonk::ProvingKey<halo2_proofs::halo2curves::bn256::G1Affine>,
}

impl Prover {
    fn load(model: &str, dir: &PathBuf) -> Result<Self> {
        let err = |source| Error::Model { model: model.to_string(), source };
        let d = ModelDir::new(dir);
        let loaded = d.load().map_err(err)?;
        let pk = d.load_pk(&loaded).map_err(err)?;
        Ok(Prover { loaded, pk })
    }

    /// Proves the job's input (a JSON list of numbers); returns the proof file's bytes.
    fn prove(&self, job: i64, input: &[u8]) -> Result<Vec<u8>> {
        let fail = |reason: String| Error::Prove { job, reason };
        let values: Vec<f32> = serde_json::from_slice(input).map_err(|e| fail(format!("input: {e}")))?;
        let model = self.loaded.model.clone();
        let q = model.quantize_inputs(&[values]).map_err(|e| fail(e.to_string()))?;
        let env = zkinfer_prover::prove(&self.loaded.params, &self.pk, model, q, self.loaded.bindings).map_err(|e| fail(e.to_string()))?;
        env.to_bytes().map_err(|e| fail(e.to_string()))
    }
}

/// Runs the executor until the process is stopped: claim, prove, deliver, repeat.
pub async fn run(cfg: ExecutorConfig) -> Result<()> {
    let mut provers = HashMap::new();
    for (id, dir) in &cfg.models {
        provers.insert(id.clone(), Arc::new(Prover::load(id, dir)?));
    }
    let client = Client {
        http: reqwest::Client::new(),
        base: cfg.coordinator.trim_end_matches('/').to_string(),
        key: cfg.key.clone(),
        nonce: Arc::new(AtomicU64::new(0)),
    };
    let name = client.name();
    loop {
        let lease: Lease = match client.post(&format!("/v1/executors/{name}/claim"), Vec::new()).await {
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
        work(&client, &cfg, &provers, lease).await?;
    }
}

/// Signed requests to the coordinator.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    key: PrivateKeySigner,
    /// The last nonce used: nonces are milliseconds, bumped to stay strictly increasing.
    nonce: Arc<AtomicU64>,
}

impl Client {
    fn name(&self) -> String {
        auth::address_string(self.key.address())
    }

    fn next_nonce(&self) -> u64 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut last = self.nonce.load(Ordering::SeqCst);
        loop {
            let next = now.max(last + 1);
            match self.nonce.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> std::result::Result<reqwest::Response, String> {
        let headers = auth::sign(&self.key, "POST", path, &body, self.next_nonce()).map_err(|e| e.to_string())?;
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send().await.map_err(|e| e.to_string())
    }

    /// A signed POST that must succeed.
    async fn expect(&self, path: &str, body: Vec<u8>) -> Result<()> {
        let r = self.post(path, body).await.map_err(Error::Coordinator)?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(Error::Coordinator(format!("{path}: {} {}", r.status(), r.text().await.unwrap_or_default())))
        }
    }
}

async fn work(client: &Client, cfg: &ExecutorConfig, provers: &HashMap<String, Arc<Prover>>, lease: Lease) -> Result<()> {
    let (job, name) = (lease.job, client.name());
    let Some(prover) = provers.get(&lease.model_id).cloned() else {
        // Not ours to prove: let the lease lapse so another executor gets it.
        eprintln!("executor {name}: job {job} is for model `{}`, which is not loaded here", lease.model_id);
        return Ok(());
    };
    client.expect(&format!("/v1/jobs/{job}/start"), Vec::new()).await?;
    println!("executor {name}: proving job {job}");
    let beat = {
        let (client, path, every, name) = (client.clone(), format!("/v1/jobs/{job}/heartbeat"), cfg.heartbeat, name.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = client.expect(&path, Vec::new()).await {
                    eprintln!("executor {name}: heartbeat failed: {e}");
                }
            }
        })
    };
    let proved = tokio::task::spawn_blocking(move || prover.prove(job, &lease.input)).await;
    beat.abort();
    match proved {
        Ok(Ok(proof)) => {
            client.expect(&format!("/v1/jobs/{job}/proof"), proof).await?;
            println!("executor {name}: delivered job {job}");
        }
        Ok(Err(e)) => eprintln!("executor {name}: {e}"),
        Err(e) => eprintln!("executor {name}: job {job}: the prover panicked: {e}"),
    }
    Ok(())
}
