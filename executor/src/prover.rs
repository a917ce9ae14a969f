//! A model's prover: its loaded directory, proving key and commitment parameters.

use std::path::Path;

use zkinfer_protocol::types::InputPayload;
use zkinfer_protocol::JobId;
use zkinfer_prover::{CommitParams, Loaded, ModelDir, MsmChoice};

use crate::{Error, Result};

/// Why a job could not be proved. The text goes to the coordinator as the failure reason.
#[derive(Debug, thiserror::Error)]
pub enum ProveFailure {
    /// The sealed input does not open for this job.
    #[error("the sealed input does not open: {0}")]
    Open(#[source] zkinfer_protocol::Error),
    /// The lease has no input commitment, so a sealed input cannot be opened.
    #[error("the lease carries no input commitment")]
    NoCommitment,
    /// The input payload is not the protocol's JSON.
    #[error("the input is not an input payload ({0})")]
    Payload(String),
    /// The input does not fit the model (length, range).
    #[error("the input does not fit the model: {0}")]
    Input(#[source] zkinfer_circuits::Error),
    /// Proving failed.
    #[error("proving failed: {0}")]
    Prover(#[source] zkinfer_prover::Error),
    /// The prover panicked.
    #[error("the prover panicked")]
    Panicked,
}

/// A loaded model with its proving key.
pub(crate) struct Prover {
    loaded: Loaded,
    pk: halo2_proofs::plonk::ProvingKey<halo2_proofs::halo2curves::bn256::G1Affine>,
    params: CommitParams,
}

impl Prover {
    pub(crate) fn load(model: &str, dir: &Path, msm: MsmChoice) -> Result<Self> {
        let err = |source| Error::Model { model: model.to_string(), source };
        let d = ModelDir::new(dir);
        let loaded = d.load().map_err(err)?;
        let pk = d.load_pk(&loaded).map_err(err)?;
        let (params, fallback) = d.commit_params_or_cpu(&loaded, msm).map_err(err)?;
        if let Some(reason) = fallback {
            tracing::warn!(model, %reason, "CUDA MSM unavailable: committing with the CPU's precomputed tables");
        }
        Ok(Prover { loaded, pk, params })
    }

    /// Proves the job's input payload (JSON); returns the proof file's bytes.
    pub(crate) fn prove(&self, job: JobId, payload: &[u8]) -> Result<Vec<u8>> {
        let fail = |reason| Error::Prove { job, reason };
        // The payload's own error text could quote input values: keep only its position.
        let p: InputPayload =
            serde_json::from_slice(payload).map_err(|e| fail(ProveFailure::Payload(format!("line {} column {}", e.line(), e.column()))))?;
        let model = self.loaded.model.clone();
        let inputs = model.split_inputs(&p.input).map_err(|e| fail(ProveFailure::Input(e)))?;
        let q = model.quantize_inputs(&inputs).map_err(|e| fail(ProveFailure::Input(e)))?;
        let env =
            zkinfer_prover::prove(&self.params, &self.pk, model, q, self.loaded.bindings).map_err(|e| fail(ProveFailure::Prover(e)))?;
        env.to_bytes().map_err(|e| fail(ProveFailure::Prover(e)))
    }
}
