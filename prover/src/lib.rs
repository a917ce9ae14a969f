//! SRS handling, key generation, SHPLONK proving and verification for zkinfer circuits.
//!
//! Proofs use the EVM (Keccak) transcript of `snark-verifier`, so the same bytes can be
//! checked by a Solidity verifier generated for the same verifying key.
//!
//! # Feature flags
//! - `cuda` (off by default): the CUDA MSM backend ([`msm::CudaMsm`]) through `cudarc`, with its
//!   kernels compiled at run time by NVRTC. Without it the backend is a stub that returns
//!   [`Error::CudaUnavailable`], so callers need no `#[cfg]`.

pub mod commit;
mod error;
pub mod fs;
pub mod keys;
pub mod model_dir;
pub mod msm;
pub mod proof;
pub mod srs;

pub use commit::{CommitMsm, CommitParams, CrossCheck, MsmChoice};
pub use error::{Error, Result};
pub use model_dir::{model_hash, Loaded, ModelDir, SetupInfo};
pub use proof::{prove, prove_circuit, verify, Bindings, ProofEnvelope, Statement, Transcript};
pub use srs::Srs;
