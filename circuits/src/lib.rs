//! Quantized tensor chips and the lowering of ONNX graphs to Halo2 circuits.
//!
//! Pipeline: [`onnx`] decodes a model into the typed [`ir::Graph`]; [`compile`]
//! calibrates it, picks the circuit shape and lowers it to a [`quant::QModel`] of
//! integer steps; [`circuit::ModelCircuit`] lays the steps out on the [`chips`].
//!
//! # Feature flags
//! None.

pub mod chips;
pub mod circuit;
pub mod compile;
pub mod data;
mod error;
pub mod fold;
pub mod ir;
pub mod mutate;
pub mod onnx;
pub mod quant;
pub mod reference;
/// The ONNX graph builder of the integration tests, for the unit tests' negative tests too.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../tests/it/builder.rs"]
mod test_onnx;

pub use error::{Error, Result};
pub use halo2_proofs::halo2curves::bn256::Fr;
