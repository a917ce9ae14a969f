//! The coordinator's errors, each with a stable code for HTTP clients.

use axum::http::StatusCode;

/// Errors of the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No model with this id.
    #[error("unknown model `{0}`")]
    UnknownModel(String),
    /// No job with this id.
    #[error("unknown job {0}")]
    UnknownJob(i64),
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
        job: i64,
        /// Its state.
        state: &'static str,
        /// What was asked.
        action: &'static str,
    },
    /// The executor does not hold the job's lease.
    #[error("job {job} is not leased to executor `{executor}`")]
    NotLeaseHolder {
        /// The job.
        job: i64,
        /// The executor that asked.
        executor: String,
    },
    /// A delivered proof does not verify, or does not bind the job's input.
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// An executor request whose signature is missing or wrong.
    #[error("bad executor signature: {0}")]
    BadSignature(String),
    /// An executor request with a nonce already used.
    #[error("replayed request: nonce {nonce} of executor {executor} is not above its last one")]
    Replayed {
        /// The executor.
        executor: String,
        /// The nonce sent.
        nonce: u64,
    },
    /// Missing or wrong API key.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// A fault inside the coordinator (its message is logged, not sent to clients).
    #[error("internal: {0}")]
    Internal(String),
    /// A model directory that cannot serve (at startup).
    #[error("{0}")]
    ModelDir(String),
    /// A malformed request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body is over the limit.
    #[error("request body over {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The chain could not be read (the RPC endpoint failed).
    #[error("chain: {0}")]
    Chain(String),
    /// The escrow job named by a submission does not pay for it.
    #[error("escrow job {job} does not pay for this job: {reason}")]
    Escrow {
        /// The escrow's job id.
        job: u64,
        /// Why not.
        reason: String,
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
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnknownModel(_) => "unknown_model",
            Error::UnknownJob(_) => "unknown_job",
            Error::InputLength { .. } => "input_length",
            Error::BadTransition { .. } => "bad_state",
            Error::NotLeaseHolder { .. } => "not_lease_holder",
            Error::InvalidProof(_) => "invalid_proof",
            Error::BadSignature(_) => "bad_signature",
            Error::Replayed { .. } => "replayed_request",
            Error::Unauthorized => "unauthorized",
            Error::BadRequest(_) => "bad_request",
            Error::ModelDir(_) | Error::Internal(_) => "internal",
            Error::TooLarge { .. } => "body_too_large",
            Error::Database(_) => "internal",
            Error::Chain(_) => "chain_unavailable",
            Error::Escrow { .. } => "escrow_mismatch",
            Error::Timeout { .. } => "timeout",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::UnknownModel(_) | Error::UnknownJob(_) => StatusCode::NOT_FOUND,
            Error::InputLength { .. } | Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::BadTransition { .. } | Error::NotLeaseHolder { .. } => StatusCode::CONFLICT,
            Error::InvalidProof(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::BadSignature(_) => StatusCode::UNAUTHORIZED,
            Error::Replayed { .. } => StatusCode::CONFLICT,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Database(_) | Error::ModelDir(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Chain(_) => StatusCode::BAD_GATEWAY,
            Error::Escrow { .. } => StatusCode::BAD_REQUEST,
            Error::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}
