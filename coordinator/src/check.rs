//! What the coordinator needs from the models it serves: input lengths, commitments, model
//! hashes and proof checks ([`ProofChecker`]), and compiling models sent over HTTP
//! ([`ModelRegistrar`]). [`crate::registry::ModelRegistry`] implements both.

use zkinfer_protocol::types::{RegisterModelRequest, RegisteredModel};
use zkinfer_protocol::{Commitment, ModelId};

use crate::error::Result;

/// Checks delivered proofs. The API calls it before accepting one.
pub trait ProofChecker: Send + Sync {
    /// The number of input values a model takes, or `None` for an unknown model.
    fn input_len(&self, model_id: &ModelId) -> Option<usize>;

    /// The commitment to a plain input, which the proof's first public value must equal.
    fn commitment(&self, model_id: &ModelId, input: &[f32]) -> Result<Commitment>;

    /// The model hash that the model's proofs and its escrow registration carry.
    fn model_hash(&self, model_id: &ModelId) -> Option<[u8; 32]> {
        let _ = model_id;
        None
    }

    /// `Ok` when `proof` is a valid proof, for `model_id`, whose input commitment is `commitment`.
    fn check(&self, model_id: &ModelId, commitment: &Commitment, proof: &[u8]) -> Result<()>;
}

/// Registers models sent over HTTP: compiles them, runs keygen, and serves them to executors.
pub trait ModelRegistrar: Send + Sync {
    /// Compiles and sets up a model (blocking: seconds to minutes).
    fn register(&self, req: &RegisterModelRequest) -> Result<RegisteredModel>;

    /// The compiled model file (`model.zkm`) executors set up from, with its registration.
    fn artifact(&self, model_id: &ModelId) -> Result<(Vec<u8>, RegisteredModel)>;
}
