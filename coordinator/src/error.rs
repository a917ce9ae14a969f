//! The coordinator's errors, each with a stable code for HTTP clients ([`ErrorCode`]).

use zkinfer_protocol::{Commitment, ErrorCode, EscrowJobId, ExecutorId, JobId, JobState};

/// Why an escrow job does not pay for a submitted job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscrowMismatch {
    /// The escrow job is not open.
    #[error("it is {0:?} on chain, not open")]
    NotOpen(zkinfer_verifier_contract::escrow::JobState),
    /// Its model's hash is not this model's.
    #[error("its model is not this model (model hashes differ)")]
    OtherModel,
    /// It holds the commitment to another input.
    #[error("it commits to input {on_chain:#x}, this job's input commits to {job}")]
    OtherInput {
        /// What the escrow job holds.
        on_chain: alloy::primitives::U256,
        /// This job's commitment.
        job: Commitment,
    },
    /// An executor the input is sealed to could not be paid.
    #[error("executor {0} is sealed to but not on its allow-list")]
    NotAllowListed(ExecutorId),
    /// Its model's verifier is not the one generated for this model's key.
    #[error("its model's verifier has code hash {got:#x}, the verifier of this model's key has {expected:#x}")]
    OtherVerifier {
        /// What this coordinator's verifier hashes to.
        expected: alloy::primitives::B256,
        /// What the escrow recorded.
        got: alloy::primitives::B256,
    },
    /// Its model takes another number of public instances.
    #[error("its model takes {got} public instances, this model's proofs have {expected}")]
    InstanceCount {
        /// This model's.
        expected: usize,
        /// The registration's.
        got: u32,
    },
    /// It runs out before a proof could be made and paid.
    #[error("its deadline {deadline} is before {needed} (now plus the least time this coordinator gives a job)")]
    ShortDeadline {
        /// Its deadline (unix seconds).
        deadline: u64,
        /// The earliest deadline accepted.
        needed: u64,
    },
    /// It pays less than the executors it is sealed to ask.
    #[error("it pays {price}, the executors it is sealed to ask up to {needed}")]
    LowPrice {
        /// What it pays.
        price: alloy::primitives::U256,
        /// What they ask.
        needed: alloy::primitives::U256,
    },
    /// It was opened by someone else than the submitter.
    #[error("it was opened by {customer}, the submission is signed by {signer}")]
    OtherCustomer {
        /// Its customer.
        customer: alloy::primitives::Address,
        /// Who signed the submission.
        signer: alloy::primitives::Address,
    },
    /// It can be claimed on chain, so that one claim would lock out the executors the market routes to.
    #[error("it is claimable: a market job must be opened with claimable = false")]
    Claimable,
    /// The job asks for optimistic verification, the escrow job is a ZK one, or the other way round.
    #[error("it is a {on_chain} job on chain, the submission asks for {asked} verification")]
    OtherVerification {
        /// What the escrow job is (`zk` or `optimistic`).
        on_chain: &'static str,
        /// What the submission asks for.
        asked: &'static str,
    },
    /// An optimistic result claimed is not what the escrow holds.
    #[error("the claimed result is not the one posted on chain: {0}")]
    ResultNotPosted(String),
    /// Its optimistic terms fall short of this coordinator's (`GET /v1/terms`).
    #[error("its optimistic terms fall short: {0}")]
    OptimisticTerms(String),
}

/// Errors of the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No model with this id.
    #[error("unknown model `{0}`")]
    UnknownModel(String),
    /// No job with this id (or not the caller's).
    #[error("unknown job {0}")]
    UnknownJob(JobId),
    /// The input does not have the model's length.
    #[error("input has {got} values, the model takes {expected}")]
    InputLength {
        /// Values sent.
        got: usize,
        /// Values the model takes.
        expected: usize,
    },
    /// The job is not in a state that allows the request.
    #[error("job {job} is {state}, cannot {action}")]
    BadTransition {
        /// The job.
        job: JobId,
        /// Its state.
        state: JobState,
        /// What was asked.
        action: &'static str,
    },
    /// The executor does not hold the job's lease.
    #[error("job {job} is not leased to executor {executor}")]
    NotLeaseHolder {
        /// The job.
        job: JobId,
        /// The executor that asked.
        executor: ExecutorId,
    },
    /// A delivered proof does not decode or does not verify.
    #[error("invalid proof: {0}")]
    InvalidProof(#[source] zkinfer_prover::Error),
    /// A delivered proof verifies but for another input.
    #[error("invalid proof: it binds input {got}, this job's input commits to {expected}")]
    ProofForOtherInput {
        /// The job's commitment.
        expected: Commitment,
        /// The proof's.
        got: String,
    },
    /// A delivered proof verifies but pays someone else, or is for another escrow job.
    #[error("invalid proof: it is bound to {got}, this delivery must be bound to {expected}")]
    ProofForOtherPayee {
        /// What the job needs.
        expected: zkinfer_protocol::Binding,
        /// What the proof binds.
        got: String,
    },
    /// The key is known but may not do this (an unstaked executor, a customer's key where an
    /// admin's is needed).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Too busy for the request now (another model registration is running): retry later.
    #[error("busy: {0}")]
    Busy(&'static str),
    /// An executor request whose signature is missing or wrong.
    #[error("bad executor signature: {0}")]
    BadSignature(String),
    /// An executor request with a nonce already used.
    #[error("replayed request: nonce {nonce} of executor {executor} is not above its last one")]
    Replayed {
        /// The executor.
        executor: ExecutorId,
        /// The nonce sent.
        nonce: u64,
    },
    /// Missing or wrong API key.
    #[error("missing or invalid API key (header x-api-key)")]
    Unauthorized,
    /// A fault inside the coordinator (its message is logged, not sent to clients).
    #[error("internal: {0}")]
    Internal(String),
    /// A model directory that cannot serve.
    #[error("model `{model}`: {source}")]
    ModelDir {
        /// The model.
        model: String,
        /// Why.
        #[source]
        source: zkinfer_prover::Error,
    },
    /// A model that the market cannot serve as compiled.
    #[error("model `{model}`: {why}")]
    Unservable {
        /// The model.
        model: String,
        /// Why, and what to do.
        why: &'static str,
    },
    /// A malformed request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A protocol value that does not parse (an address, a commitment, a model id).
    #[error("bad request: {0}")]
    Malformed(#[from] zkinfer_protocol::Error),
    /// A model sent for registration that does not compile.
    #[error("model: {0}")]
    Compile(#[source] zkinfer_circuits::Error),
    /// The body is over the limit.
    #[error("request body over {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The chain could not be read.
    #[error("{0}")]
    Chain(#[from] zkinfer_verifier_contract::Error),
    /// The escrow job named by a submission does not pay for it.
    #[error("escrow job {job} does not pay for this job: {reason}")]
    Escrow {
        /// The escrow's job id.
        job: EscrowJobId,
        /// Why not.
        reason: EscrowMismatch,
    },
    /// The request took too long.
    #[error("the request took over {secs} s")]
    Timeout {
        /// The limit.
        secs: u64,
    },
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Result with the coordinator's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The stable, machine-readable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::UnknownModel(_) => ErrorCode::UnknownModel,
            Error::UnknownJob(_) => ErrorCode::UnknownJob,
            Error::InputLength { .. } => ErrorCode::InputLength,
            Error::BadTransition { .. } => ErrorCode::BadState,
            Error::NotLeaseHolder { .. } => ErrorCode::NotLeaseHolder,
            Error::InvalidProof(_) | Error::ProofForOtherInput { .. } | Error::ProofForOtherPayee { .. } => ErrorCode::InvalidProof,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::Busy(_) => ErrorCode::Timeout,
            Error::BadSignature(_) => ErrorCode::BadSignature,
            Error::Replayed { .. } => ErrorCode::ReplayedRequest,
            Error::Unauthorized => ErrorCode::Unauthorized,
            Error::BadRequest(_) | Error::Malformed(_) | Error::Compile(_) => ErrorCode::BadRequest,
            Error::TooLarge { .. } => ErrorCode::BodyTooLarge,
            Error::Chain(_) => ErrorCode::ChainUnavailable,
            Error::Escrow { .. } => ErrorCode::EscrowMismatch,
            Error::Timeout { .. } => ErrorCode::Timeout,
            Error::Internal(_) | Error::ModelDir { .. } | Error::Unservable { .. } | Error::Database(_) => ErrorCode::Internal,
        }
    }

    /// Whether the message is internal (logged, not sent to clients).
    pub fn is_internal(&self) -> bool {
        self.code() == ErrorCode::Internal
    }
}
