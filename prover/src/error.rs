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
    /// The proof was made with another transcript than the verifier reads.
    #[error("this proof uses the {got} transcript; {expected} is needed here (prove without --for-aggregation to settle one job on chain, with it to aggregate)")]
    WrongTranscript {
        /// The proof's transcript.
        got: crate::proof::Transcript,
        /// The one this verifier reads.
        expected: crate::proof::Transcript,
    },
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
    /// An MSM was given a different number of scalars and bases.
    #[error("MSM length mismatch: {scalars} scalars, {bases} bases")]
    MsmLength {
        /// Number of scalars.
        scalars: usize,
        /// Number of bases.
        bases: usize,
    },
    /// An MSM window size outside the supported range.
    #[error("MSM window c = {c} is outside {min}..={max}")]
    MsmWindow {
        /// The window asked for.
        c: usize,
        /// Smallest supported.
        min: usize,
        /// Largest supported.
        max: usize,
    },
    /// A precomputed MSM table would have more points than it can index (2^32).
    #[error("an MSM table of {points} points is too large (at most 2^32)")]
    MsmTableTooLarge {
        /// Bases times windows.
        points: u128,
    },
    /// The bases given to a precomputed MSM are not the ones it was built from.
    #[error("these bases are not the {precomputed} bases the MSM table was precomputed from")]
    MsmBasesChanged {
        /// Number of bases in the table.
        precomputed: usize,
    },
    /// A cached MSM table file is damaged or was made for other bases.
    #[error("MSM table is corrupt or for other bases: {reason}")]
    MsmTableCorrupt {
        /// What is wrong.
        reason: String,
    },
    /// No MSM backend has this name.
    #[error("unknown MSM backend {name:?} (known: {known})")]
    UnknownMsmBackend {
        /// The name asked for.
        name: String,
        /// The names that exist, comma-separated.
        known: &'static str,
    },
    /// The CUDA MSM cannot run here: compiled out, no driver, no GPU, or no NVRTC.
    #[error("CUDA MSM unavailable: {reason}")]
    CudaUnavailable {
        /// Why.
        reason: String,
    },
    /// A CUDA call failed after the device was opened.
    #[error("CUDA {stage} failed: {reason}")]
    Cuda {
        /// What was being done (compile, load, copy, launch).
        stage: &'static str,
        /// The driver or NVRTC error.
        reason: String,
    },
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
