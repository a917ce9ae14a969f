//! The verifier-contract crate's error type.

use thiserror::Error;

/// Errors from code generation, compilation and chain interaction.
#[derive(Debug, Error)]
pub enum Error {
    /// The npm toolchain (solc, anvil) is not installed.
    #[error("EVM toolchain missing at {path}: run `npm ci --prefix verifier-contract` (scripts/setup.sh does)")]
    ToolchainMissing {
        /// What was looked for.
        path: String,
    },
    /// solcjs failed.
    #[error("solc failed: {0}")]
    Solc(String),
    /// snark-verifier could not generate a verifier for the key.
    #[error("verifier generation failed: {0}")]
    Codegen(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The local node or an RPC call failed.
    #[error("chain: {0}")]
    Chain(String),
    /// A call or transaction reverted.
    #[error("reverted: {0}")]
    Reverted(String),
    /// An error from the prover crate.
    #[error(transparent)]
    Prover(#[from] zkinfer_prover::Error),
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io { path: path.display().to_string(), source }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
