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
    /// An RPC call failed (the node is unreachable or answered with an error): retry later.
    #[error("chain: {call}: {message}")]
    Rpc {
        /// The call.
        call: &'static str,
        /// The node's or the transport's message.
        message: String,
    },
    /// An RPC call took longer than the client's timeout: retry later.
    #[error("chain: {call} took over {secs} s")]
    Timeout {
        /// The call.
        call: &'static str,
        /// The timeout.
        secs: u64,
    },
    /// A call or transaction reverted: retrying the same thing fails the same way.
    #[error("reverted: {0}")]
    Reverted(String),
    /// What the chain returned does not decode as the escrow's types.
    #[error("chain: unexpected data: {0}")]
    Decode(String),
    /// A transaction was asked of a client without a key.
    #[error("this escrow client has no key to send transactions with")]
    NoSigner,
    /// A protocol value out of range (an escrow job id above u64, say).
    #[error(transparent)]
    Protocol(#[from] zkinfer_protocol::Error),
    /// An error from the prover crate.
    #[error(transparent)]
    Prover(#[from] zkinfer_prover::Error),
}

impl Error {
    /// Whether trying again later may succeed (the node was unreachable or slow).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Rpc { .. } | Error::Timeout { .. })
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io { path: path.display().to_string(), source }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
