//! Batch settlement by aggregation (issue #15): zkinfer proofs made with snark-verifier's
//! Poseidon transcript ([`inner`]) are folded into one proof of snark-verifier-sdk's
//! aggregation circuit ([`fold`]) under a batch key ([`key`]), which one Solidity verifier
//! checks for all of them.
//!
//! This crate carries the aggregation's heavy dependencies (halo2-base, halo2-ecc), so that
//! the prover crate, the executor's proving path and the verifiers of single proofs stay
//! without them.

pub mod check;
mod error;
pub mod fold;
pub mod inner;
pub mod key;

pub use check::{check_key, Checked};
pub use error::{Error, Result};
pub use fold::{aggregate, check_inner, verify, BatchProof, InnerProof};
pub use key::{predicted_peak_gib, BatchKey, BatchRecord, KeySpec, Member, ACCUMULATOR_INSTANCES};
