//! The proving market's executor: long-polls the coordinator for a job, proves it with the
//! model's local keys while renewing its lease, and delivers the proof.
//!
//! Status (issue #5): off-chain only. Sealed inputs, signed requests, on-chain submission
//! and crash-safe resubmission are not built yet.
//!
//! # Feature flags
//! None.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
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
    /// This executor's name (its identity until requests are signed).
    pub name: String,
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
    let client = reqwest::Client::new();
    let base = cfg.coordinator.trim_end_matches('/').to_string();
    loop {
        let resp = client.post(format!("{base}/v1/executors/{}/claim", cfg.name)).send().await;
        let lease: Lease = match resp {
            Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => continue, // long-poll ended empty
            Ok(r) if r.status().is_success() => match r.bytes().await.map(|b| serde_json::from_slice(&b)) {
                Ok(Ok(l)) => l,
                other => return Err(Error::Coordinator(format!("unreadable lease: {other:?}"))),
            },
            Ok(r) => return Err(Error::Coordinator(format!("claim answered {}", r.status()))),
            Err(e) => {
                eprintln!("executor {}: coordinator unreachable ({e}); retrying", cfg.name);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        work(&client, &base, &cfg, &provers, lease).await?;
    }
}

async fn post(client: &reqwest::Client, url: String, name: &str, body: Vec<u8>) -> Result<()> {
    let r = client.post(&url).header("x-executor", name).body(body).send().await.map_err(|e| Error::Coordinator(e.to_string()))?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(Error::Coordinator(format!("{url}: {} {}", r.status(), r.text().await.unwrap_or_default())))
    }
}

async fn work(
    client: &reqwest::Client,
    base: &str,
    cfg: &ExecutorConfig,
    provers: &HashMap<String, Arc<Prover>>,
    lease: Lease,
) -> Result<()> {
    let job = lease.job;
    let Some(prover) = provers.get(&lease.model_id).cloned() else {
        // Not ours to prove: let the lease lapse so another executor gets it.
        eprintln!("executor {}: job {job} is for model `{}`, which is not loaded here", cfg.name, lease.model_id);
        return Ok(());
    };
    post(client, format!("{base}/v1/jobs/{job}/start"), &cfg.name, Vec::new()).await?;
    println!("executor {}: proving job {job}", cfg.name);
    let beat = {
        let (client, url, name, every) = (client.clone(), format!("{base}/v1/jobs/{job}/heartbeat"), cfg.name.clone(), cfg.heartbeat);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = post(&client, url.clone(), &name, Vec::new()).await {
                    eprintln!("executor {name}: heartbeat failed: {e}");
                }
            }
        })
    };
    let proved = tokio::task::spawn_blocking(move || prover.prove(job, &lease.input)).await;
    beat.abort();
    match proved {
        Ok(Ok(proof)) => {
            post(client, format!("{base}/v1/jobs/{job}/proof"), &cfg.name, proof).await?;
            println!("executor {}: delivered job {job}", cfg.name);
        }
        Ok(Err(e)) => eprintln!("executor {}: {e}", cfg.name),
        Err(e) => eprintln!("executor {}: job {job}: the prover panicked: {e}", cfg.name),
    }
    Ok(())
}
