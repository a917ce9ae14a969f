//! The protocol's errors: what a client gets back (the coordinator's stable error codes) and
//! what can go wrong on the way (transport, decoding, malformed values, sealing).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every stable, machine-readable error code the coordinator answers with. The OpenAPI
/// document's list of codes is this enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No model with this id (404).
    UnknownModel,
    /// No job with this id, or not one of the caller's jobs (404).
    UnknownJob,
    /// The input does not have the model's length (400).
    InputLength,
    /// The job's state does not allow the request (409).
    BadState,
    /// The executor does not hold the job's lease (409).
    NotLeaseHolder,
    /// A delivered proof does not verify or does not bind the job (422).
    InvalidProof,
    /// A missing or wrong executor signature (401).
    BadSignature,
    /// A nonce already used (409): re-sign with a fresh one.
    ReplayedRequest,
    /// A missing or unknown API key (401).
    Unauthorized,
    /// The key is known but may not do this (403).
    Forbidden,
    /// A malformed request (400).
    BadRequest,
    /// The body is over the limit (413).
    BodyTooLarge,
    /// The escrow job does not pay for this job (409).
    EscrowMismatch,
    /// The chain could not be read (502).
    ChainUnavailable,
    /// The request took too long, or the service is busy (503): retry later.
    Timeout,
    /// A fault inside the coordinator (500); details are logged, not sent.
    Internal,
}

impl ErrorCode {
    /// Every code, for documents and tests.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::UnknownModel,
        ErrorCode::UnknownJob,
        ErrorCode::InputLength,
        ErrorCode::BadState,
        ErrorCode::NotLeaseHolder,
        ErrorCode::InvalidProof,
        ErrorCode::BadSignature,
        ErrorCode::ReplayedRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::BadRequest,
        ErrorCode::BodyTooLarge,
        ErrorCode::EscrowMismatch,
        ErrorCode::ChainUnavailable,
        ErrorCode::Timeout,
        ErrorCode::Internal,
    ];

    /// The HTTP status that carries this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::UnknownModel | ErrorCode::UnknownJob => 404,
            ErrorCode::InputLength | ErrorCode::BadRequest => 400,
            ErrorCode::BadState | ErrorCode::NotLeaseHolder | ErrorCode::ReplayedRequest | ErrorCode::EscrowMismatch => 409,
            ErrorCode::InvalidProof => 422,
            ErrorCode::BadSignature | ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::BodyTooLarge => 413,
            ErrorCode::ChainUnavailable => 502,
            ErrorCode::Timeout => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownModel => "unknown_model",
            ErrorCode::UnknownJob => "unknown_job",
            ErrorCode::InputLength => "input_length",
            ErrorCode::BadState => "bad_state",
            ErrorCode::NotLeaseHolder => "not_lease_holder",
            ErrorCode::InvalidProof => "invalid_proof",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::ReplayedRequest => "replayed_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::EscrowMismatch => "escrow_mismatch",
            ErrorCode::ChainUnavailable => "chain_unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response: `{"error": {"code": ..., "message": ...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A stable code and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The stable code: act on this.
    pub code: ErrorCode,
    /// What to do about it, for people.
    pub message: String,
}

/// Errors of the protocol crate and its client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The coordinator answered with a structured error.
    #[error("{method} {path}: {status} {code}: {message}")]
    Api {
        /// The request's method.
        method: &'static str,
        /// The request's path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The stable code.
        code: ErrorCode,
        /// The coordinator's message.
        message: String,
    },
    /// The coordinator answered with something that is not the protocol (a proxy's page, say).
    #[error("{method} {path}: unexpected {status} answer: {body}")]
    Unexpected {
        /// The request's method.
        method: &'static str,
        /// The request's path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The coordinator could not be reached, or the connection broke.
    #[error("{method} {path}: coordinator unreachable: {source}")]
    Transport {
        /// The request's method.
        method: &'static str,
        /// The request's path.
        path: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// A body that does not decode as the protocol type it should be.
    #[error("{what}: {source}")]
    Decode {
        /// What was decoded.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: serde_json::Error,
    },
    /// A value that is not what its field takes (a non-hex string, an out-of-range number).
    #[error("malformed {what}: `{value}`")]
    Malformed {
        /// What the value should be.
        what: &'static str,
        /// The value (truncated).
        value: String,
    },
    /// A commitment that is not a canonical BN254 scalar (it is at or above the field modulus).
    #[error("commitment {0} is not below the BN254 scalar field modulus")]
    NonCanonical(String),
    /// A request signature that does not check.
    #[error("bad signature: {0}")]
    BadSignature(&'static str),
    /// Sealing or opening an input failed.
    #[error("sealed input: {0}")]
    Seal(&'static str),
    /// The client's base URL is not a URL.
    #[error("coordinator URL `{url}`: {why}")]
    Url {
        /// The URL given.
        url: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// Waiting for a job ran out of time.
    #[error("job {job} did not reach {wanted} within {secs} s (it is {state})")]
    WaitTimeout {
        /// The job.
        job: crate::JobId,
        /// The state waited for.
        wanted: String,
        /// Its state when the wait ended.
        state: crate::JobState,
        /// How long the wait was.
        secs: u64,
    },
}

/// Result with the protocol's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The coordinator's error code, when it answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether retrying the same request later may succeed: the coordinator was unreachable,
    /// faulted, timed out, or could not read the chain.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Api { code, .. } => matches!(code, ErrorCode::Internal | ErrorCode::Timeout | ErrorCode::ChainUnavailable),
            Error::Unexpected { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_names() {
        for c in ErrorCode::ALL {
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{}\"", c.as_str()));
            assert!((400..600).contains(&c.status()));
        }
    }
}
