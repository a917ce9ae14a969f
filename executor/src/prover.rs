//! A model's prover: its loaded directory, proving key and commitment parameters.

use std::path::Path;

use alloy::primitives::U256;
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::PrimeField;
use zkinfer_circuits::circuit::{output_instances, salted_commitment, PayeeBinding};
use zkinfer_protocol::types::InputPayload;
use zkinfer_protocol::{Binding, Commitment, JobId};
use zkinfer_prover::{CommitParams, Loaded, ModelDir, MsmChoice, Statement};

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
    /// The input does not fit the model (length, range). The text names the node, never a value.
    #[error("the input does not fit the model: {0}")]
    Input(String),
    /// The opened input and salt do not hash to the job's commitment (the customer sealed
    /// another input than it committed to): the job cannot be proved, and is not retried.
    #[error("input does not match commitment")]
    CommitmentMismatch,
    /// The escrow job cannot pay this executor (so it is not proved).
    #[error("escrow job {0}")]
    Unpayable(String),
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

    /// Opens the job's input payload (JSON): the quantized inputs and the salt, after
    /// checking that they hash to `commitment`.
    fn open(&self, job: JobId, payload: &[u8], commitment: Commitment) -> Result<(Vec<Vec<i64>>, Fr)> {
        let fail = |reason| Error::Prove { job, reason };
        // The payload's own error text could quote input values: keep only its position.
        let p: InputPayload =
            serde_json::from_slice(payload).map_err(|e| fail(ProveFailure::Payload(format!("line {} column {}", e.line(), e.column()))))?;
        let model = &self.loaded.model;
        let inputs = model.split_inputs(&p.input).map_err(|e| fail(ProveFailure::Input(input_reason(&e))))?;
        let q = model.quantize_inputs(&inputs).map_err(|e| fail(ProveFailure::Input(input_reason(&e))))?;
        if Commitment::from(salted_commitment(&q, p.salt.to_fr(), model.settings.value_bits)) != commitment {
            return Err(fail(ProveFailure::CommitmentMismatch));
        }
        Ok((q, p.salt.to_fr()))
    }

    /// Proves the job's input payload (JSON) bound to `binding`, after checking that it
    /// hashes to `commitment`; returns the proof file's bytes.
    pub(crate) fn prove(&self, job: JobId, payload: &[u8], commitment: Commitment, binding: &Binding) -> Result<Vec<u8>> {
        let (inputs, salt) = self.open(job, payload, commitment)?;
        let fail = |e| Error::Prove { job, reason: ProveFailure::Prover(e) };
        let statement = Statement { inputs, salt, binding: PayeeBinding::from_values(binding.to_fields()) };
        let env =
            zkinfer_prover::prove(&self.params, &self.pk, self.loaded.model.clone(), statement, self.loaded.bindings).map_err(fail)?;
        env.to_bytes().map_err(fail)
    }

    /// Runs the model on the job's input payload (JSON), after checking that it hashes to
    /// `commitment`: the quantized outputs, one flattened list per output, exactly what a
    /// proof would show (an optimistic job posts them; a validator recomputes them).
    pub(crate) fn evaluate(&self, job: JobId, payload: &[u8], commitment: Commitment) -> Result<Vec<Vec<i64>>> {
        let (inputs, _) = self.open(job, payload, commitment)?;
        let model = &self.loaded.model;
        let trace = model.eval_quantized(&inputs).map_err(|e| Error::Prove { job, reason: ProveFailure::Input(input_reason(&e)) })?;
        Ok(trace.outputs(model))
    }

    /// The output instances (the words `postResult` takes) of quantized outputs.
    pub(crate) fn output_words(&self, quantized: &[Vec<i64>]) -> Vec<U256> {
        output_instances(&self.loaded.model, quantized).iter().map(|f| U256::from_le_bytes(f.to_repr())).collect()
    }
}

/// What went wrong with an input, naming the node but never a value (failure reasons reach
/// the coordinator and the customer's job record).
fn input_reason(e: &zkinfer_circuits::Error) -> String {
    use zkinfer_circuits::Error as E;
    match e {
        E::Overflow { node, .. } => format!("an intermediate value overflows at node `{node}`"),
        E::OutsideTable { node, .. } => format!("a value falls outside the calibrated table range at node `{node}`"),
        E::NonFinite { index, .. } => format!("input {index} holds a value that is not finite"),
        E::InputLength { .. } | E::InputCount { .. } => e.to_string(),
        _ => "the input does not fit the model".to_string(),
    }
}
