//! The aggregation crate's error type.

use thiserror::Error;

/// Errors from proving for aggregation, aggregating and checking a batch.
#[derive(Debug, Error)]
pub enum Error {
    /// An inner proof does not verify: nothing is aggregated (a batch with it could never
    /// settle, and its accumulator would only fail on chain).
    #[error("proof {index} ({path}) is invalid: {reason}; re-prove it with `zkinfer prove --for-aggregation`")]
    InnerProofInvalid {
        /// Position in the batch (0-based).
        index: usize,
        /// The proof's file, as given.
        path: String,
        /// Why.
        reason: String,
    },
    /// A proof is for another model (or key) than the batch key's member at its position.
    #[error(
        "proof {index} is for model {proof} but the batch key's member {index} is model {expected}: give the proofs in the key's order"
    )]
    WrongMember {
        /// Position in the batch.
        index: usize,
        /// What the proof binds (hex model hash, short).
        proof: String,
        /// What the key expects.
        expected: String,
    },
    /// The number of proofs differs from the batch key's members.
    #[error("{got} proofs for a batch key of {expected} members: make a key for this batch (`zkinfer aggregate --keys NEW_DIR`)")]
    WrongBatchSize {
        /// Members of the key.
        expected: usize,
        /// Proofs given.
        got: usize,
    },
    /// A tree's fan-in that does not split the batch into groups of one shape.
    #[error("--fan-in {fan_in} for {members} proofs: {reason}")]
    BadFanIn {
        /// Proofs in the batch.
        members: usize,
        /// The fan-in asked for.
        fan_in: usize,
        /// Why it does not work.
        reason: String,
    },
    /// A batch needs at least one proof.
    #[error("nothing to aggregate: give at least one model directory and one proof")]
    EmptyBatch,
    /// The inner proofs' SRS is not a prefix of the aggregation's: their accumulators could not
    /// be decided with its pairing.
    #[error(
        "model {index} was set up with another SRS than the aggregation's ({reason}): set it up with the same SRS (`zkinfer setup --srs`)"
    )]
    SrsMismatch {
        /// Member position.
        index: usize,
        /// What differs.
        reason: String,
    },
    /// The aggregation circuit does not fit its k.
    #[error("the aggregation of {members} proof(s) does not fit k = {k}: {reason}; raise --k")]
    DoesNotFit {
        /// Members.
        members: usize,
        /// The aggregation circuit's k.
        k: u32,
        /// Why.
        reason: String,
    },
    /// The circuit's predicted peak memory is more than the caller allows.
    #[error(
        "the aggregation circuit of {members} proof(s) at k = {k} has {columns} advice columns and would need about {predicted_gib:.1} GiB, \
         more than the {limit_gib:.1} GiB allowed: fold fewer proofs per circuit (--fan-in), or raise --max-memory-gib to try anyway"
    )]
    NotEnoughMemory {
        /// Members of the circuit.
        members: usize,
        /// Its k.
        k: u32,
        /// Its advice columns (lookup ones included).
        columns: usize,
        /// [`crate::predicted_peak_gib`].
        predicted_gib: f64,
        /// The limit.
        limit_gib: f64,
    },
    /// A model directory given for a key's check is not the key's member at its position.
    #[error(
        "model directory {index} is model {given}, but the batch key's member {index} is model {expected} (or another \
         set-up of it): give your model directories in the key's order"
    )]
    MemberMismatch {
        /// Position.
        index: usize,
        /// The directory's model hash (short).
        given: String,
        /// The key's (short).
        expected: String,
    },
    /// A batch key's verifying key is not the one its members and the given SRS make.
    #[error(
        "the batch key in {dir} is not the aggregation of these models under this SRS: its verifying key differs from the one \
         regenerated from them; do not trust its verifier"
    )]
    ForeignKey {
        /// The key directory.
        dir: String,
    },
    /// snark-verifier or halo2 failed while aggregating.
    #[error("aggregation failed at {stage}: {reason}")]
    Aggregation {
        /// The step.
        stage: &'static str,
        /// What failed.
        reason: String,
    },
    /// The aggregated proof does not verify.
    #[error("invalid aggregated proof: {0}")]
    InvalidBatch(String),
    /// A batch file or key record that does not decode or does not match.
    #[error("{what} {path}: {reason}")]
    Corrupt {
        /// What was read.
        what: &'static str,
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
    /// An error from the prover crate (files, keys, SRS, the inner proof's bindings).
    #[error(transparent)]
    Prover(#[from] zkinfer_prover::Error),
}

impl Error {
    /// Whether the error says a proof (inner or aggregated) is invalid, not that the call was
    /// wrong.
    pub fn is_invalid_proof(&self) -> bool {
        match self {
            Error::InnerProofInvalid { .. } | Error::InvalidBatch(_) => true,
            Error::Prover(e) => e.is_invalid_proof(),
            _ => false,
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
