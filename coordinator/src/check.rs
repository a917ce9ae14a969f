//! What the coordinator needs from the models it serves: input lengths, commitments, model
//! hashes and proof checks ([`ProofChecker`]), and compiling models sent over HTTP
//! ([`ModelRegistrar`]). [`crate::registry::ModelRegistry`] implements both.

use alloy::primitives::{Address, B256, U256};
use zkinfer_protocol::types::{RegisterModelRequest, RegisteredModel};
use zkinfer_protocol::{Binding, Commitment, ModelId, Salt};

use crate::error::Result;

/// What a delivered proof must bind: the job's input commitment and its payee binding (the
/// delivering executor, and the job's escrow job when it is paid on chain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectedProof {
    /// The job's input commitment.
    pub commitment: Commitment,
    /// Who it pays and for which escrow job.
    pub binding: Binding,
}

/// Checks delivered proofs. The API calls it before accepting one.
pub trait ProofChecker: Send + Sync {
    /// The number of input values a model takes, or `None` for an unknown model.
    fn input_len(&self, model_id: &ModelId) -> Option<usize>;

    /// The commitment to a plain input with `salt`, which the proof's first public value must equal.
    fn commitment(&self, model_id: &ModelId, input: &[f32], salt: Salt) -> Result<Commitment>;

    /// How many public instances the model's proofs have.
    fn num_instances(&self, model_id: &ModelId) -> Option<usize> {
        let _ = model_id;
        None
    }

    /// The code hash an escrow registration of the model's verifier (calling `parts`) must
    /// have (`InferenceEscrow.getModel(id).codeHash`), or `None` when it cannot be computed here.
    fn expected_code_hash(&self, model_id: &ModelId, parts: &[Address]) -> Result<Option<B256>> {
        let _ = (model_id, parts);
        Ok(None)
    }

    /// The model hash that the model's proofs and its escrow registration carry.
    fn model_hash(&self, model_id: &ModelId) -> Option<[u8; 32]> {
        let _ = model_id;
        None
    }

    /// The output instances (as the escrow's `postResult` takes them) of quantized outputs,
    /// and the outputs dequantized; an error when they do not fit the model's outputs.
    fn outputs(&self, model_id: &ModelId, quantized: &[Vec<i64>]) -> Result<(Vec<U256>, Vec<Vec<f64>>)> {
        let _ = quantized;
        Err(crate::error::Error::UnknownModel(model_id.to_string()))
    }

    /// `Ok` when `proof` is a valid proof for `model_id` that binds what `expect` says.
    fn check(&self, model_id: &ModelId, expect: &ExpectedProof, proof: &[u8]) -> Result<()>;
}

/// Registers models sent over HTTP: compiles them, runs keygen, and serves them to executors.
pub trait ModelRegistrar: Send + Sync {
    /// Compiles and sets up a model (blocking: seconds to minutes).
    fn register(&self, req: &RegisterModelRequest) -> Result<RegisteredModel>;

    /// The compiled model file (`model.zkm`) executors set up from, with its registration.
    fn artifact(&self, model_id: &ModelId) -> Result<(Vec<u8>, RegisteredModel)>;
}
