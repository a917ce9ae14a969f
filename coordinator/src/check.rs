//! Checking a delivered proof before a job becomes `proved`: it must be a valid proof for
//! the job's model, and its public input commitment must be the commitment to this job's input.

use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::PrimeField;

use crate::error::{Error, Result};

/// Checks delivered proofs. The API calls it before accepting one.
pub trait ProofChecker: Send + Sync {
    /// The number of input values a model takes, or `None` for an unknown model.
    fn input_len(&self, model_id: &str) -> Option<usize>;

    /// The commitment (0x-hex, see [`commitment_hex`]) to a plain input, which the proof's
    /// first public value must equal.
    fn commitment(&self, model_id: &str, input: &[f32]) -> Result<String>;

    /// The model hash that the model's proofs and its escrow registration carry.
    fn model_hash(&self, model_id: &str) -> Option<[u8; 32]> {
        let _ = model_id;
        None
    }

    /// `Ok` when `proof` is a valid proof, for `model_id`, whose input commitment is `commitment`.
    fn check(&self, model_id: &str, commitment: &str, proof: &[u8]) -> Result<()>;
}

/// A commitment as the coordinator stores it: 0x and 64 hex digits, big-endian (as on chain).
pub fn commitment_hex(c: &Fr) -> String {
    let mut be = c.to_repr();
    be.reverse();
    format!("0x{}", hex::encode(be))
}

/// The commitment to a plain input (one model input, flattened), as customers, the coordinator
/// and the demo compute it from the public model: Poseidon over the quantized values
/// (design.md §1.2), in [`commitment_hex`] form.
pub fn input_commitment(model: &zkinfer_circuits::quant::QModel, input: &[f32]) -> Result<String> {
    let q = model.quantize_inputs(&[input.to_vec()]).map_err(|e| Error::BadRequest(format!("input: {e}")))?;
    let flat: Vec<_> = q.iter().flatten().map(|&v| zkinfer_circuits::chips::fr_from_i64(v)).collect();
    Ok(commitment_hex(&zkinfer_circuits::chips::poseidon::commit(&flat)))
}

/// The commitment field element's on-chain value.
pub fn commitment_u256(c: &str) -> Result<alloy::primitives::U256> {
    c.parse().map_err(|_| Error::BadRequest(format!("input commitment `{c}` is not a 256-bit number")))
}

/// A model sent for registration.
#[derive(Clone, Debug)]
pub struct RegisterModel {
    /// The id to register it under.
    pub id: String,
    /// The ONNX file.
    pub onnx: Vec<u8>,
    /// Calibration samples (one flattened list per model input), if any.
    pub calibration: Option<Vec<Vec<f32>>>,
}

/// A registered model, as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegisteredModel {
    /// Its id.
    pub model_id: String,
    /// The model hash (hex) that proofs and the escrow registration carry.
    pub model_hash: String,
    /// SHA-256 (hex) of the verifying key.
    pub vk_sha256: String,
    /// log2 of the circuit's rows.
    pub k: u32,
    /// Input values it takes.
    pub input_len: usize,
}

/// Registers models sent over HTTP: compiles them, runs keygen, and serves them to executors.
pub trait ModelRegistrar: Send + Sync {
    /// Compiles and sets up a model (blocking: seconds to minutes).
    fn register(&self, req: &RegisterModel) -> Result<RegisteredModel>;

    /// The compiled model file (`model.zkm`) executors set up from, with its registration.
    fn artifact(&self, model_id: &str) -> Result<(Vec<u8>, RegisteredModel)>;
}
