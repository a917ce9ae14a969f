//! The prover crate's error type.

use thiserror::Error;

/// Errors from SRS handling, key generation, proving and verification.
#[derive(Debug, Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An SRS file could not be parsed.
    #[error("SRS file {path} is not a halo2 KZG params file: {reason}")]
    BadSrs {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The SRS is smaller than the circuit needs.
    #[error("the SRS supports k = {have}, the circuit needs k = {need}")]
    SrsTooSmall {
        /// k of the SRS.
        have: u32,
        /// k needed.
        need: u32,
    },
    /// A stored key or compiled model could not be decoded.
    #[error("{what} in {path} is corrupt or from another version: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The proof file is not a zkinfer proof of this format version.
    #[error("not a zkinfer proof file (or an unsupported format version): {0}")]
    ProofFormat(String),
    /// The proof is for another model, key or SRS.
    #[error("proof does not match this model: {field} is {proof}, expected {expected}")]
    Mismatch {
        /// Which binding differs.
        field: &'static str,
        /// The value in the proof.
        proof: String,
        /// The local value.
        expected: String,
    },
    /// The proof did not verify.
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// Halo2 failed while generating keys or proving.
    #[error("halo2 {stage} failed: {reason}")]
    Halo2 {
        /// keygen or prove.
        stage: &'static str,
        /// The halo2 error.
        reason: String,
    },
    /// An error from the circuits crate.
    #[error(transparent)]
    Circuit(#[from] zkinfer_circuits::Error),
}

impl Error {
    /// Whether the error means "this proof is not valid" rather than a usage or format problem.
    pub fn is_invalid_proof(&self) -> bool {
        matches!(self, Error::InvalidProof(_) | Error::Mismatch { .. })
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io { path: path.display().to_string(), source }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
