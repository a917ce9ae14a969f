//! On-chain verification: the Solidity verifier for a compiled model (snark-verifier's EVM
//! code generator), compiled with solcjs; the proof-gated `InferenceEscrow` contract; and a
//! client for a local anvil node used by the tests and the demo.
//!
//! # Feature flags
//! None.

pub mod chain;
pub mod codegen;
mod error;
pub mod escrow;
pub mod market;
pub mod solc;
pub mod split;
pub mod verifier;

pub use error::{Error, Result};
