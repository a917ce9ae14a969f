//! Key generation and (de)serialization of proving and verifying keys.

use std::sync::Arc;

use halo2_proofs::halo2curves::bn256::G1Affine;
use halo2_proofs::plonk::{keygen_pk, keygen_vk_custom, ProvingKey, VerifyingKey};
use halo2_proofs::poly::commitment::Params;
use halo2_proofs::SerdeFormat;
use sha2::{Digest, Sha256};
use zkinfer_circuits::circuit::ModelCircuit;
use zkinfer_circuits::quant::QModel;

use crate::error::{Error, Result};

/// Generates the verifying and proving keys of a model's circuit. `params` is halo2's
/// `ParamsKZG` or a [`crate::commit::CommitParams`] (the same keys, committed faster).
pub fn keygen<P: for<'p> Params<'p, G1Affine> + Sync>(params: &P, model: Arc<QModel>) -> Result<ProvingKey<G1Affine>> {
    let circuit = ModelCircuit::for_keygen(model);
    let vk = circuit_vk(params, &circuit)?;
    keygen_pk(params, vk, &circuit).map_err(halo2_keygen)
}

/// Generates only the verifying key (what an auditor recomputes from the model and the SRS).
pub fn regenerate_vk<P: for<'p> Params<'p, G1Affine> + Sync>(params: &P, model: Arc<QModel>) -> Result<VerifyingKey<G1Affine>> {
    circuit_vk(params, &ModelCircuit::for_keygen(model))
}

/// The verifying key of one circuit, with its selectors compressed: halo2 merges selectors that
/// are never on in the same row into shared fixed columns (halo2-axiom's `keygen_vk` does not),
/// and each fixed column is a commitment the on-chain verifier pays for (papers/design.md §4.1).
pub fn circuit_vk<P: for<'p> Params<'p, G1Affine> + Sync>(params: &P, circuit: &ModelCircuit) -> Result<VerifyingKey<G1Affine>> {
    keygen_vk_custom(params, circuit, true).map_err(halo2_keygen)
}

fn halo2_keygen(e: halo2_proofs::plonk::Error) -> Error {
    Error::Halo2 { stage: "keygen", reason: format!("{e:?}") }
}

/// Serializes a verifying key.
pub fn vk_bytes(vk: &VerifyingKey<G1Affine>) -> Vec<u8> {
    vk.to_bytes(SerdeFormat::RawBytes)
}

/// SHA-256 of a verifying key's serialization.
pub fn vk_hash(vk: &VerifyingKey<G1Affine>) -> [u8; 32] {
    Sha256::digest(vk_bytes(vk)).into()
}

/// Serializes a proving key.
pub fn pk_bytes(pk: &ProvingKey<G1Affine>) -> Vec<u8> {
    pk.to_bytes(SerdeFormat::RawBytes)
}

/// Checks a key file's header (halo2's version byte, then k as a little-endian u32) against
/// `model` before halo2 reads it: halo2 sizes its domain by that k unchecked (`1 << k`).
fn check_key_header(bytes: &[u8], model: &QModel, what: &'static str, path: &str) -> Result<()> {
    let k = bytes.get(1..5).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_le_bytes);
    if bytes.first() == Some(&KEY_VERSION) && k == Some(model.settings.k) {
        return Ok(());
    }
    let reason = match k {
        Some(k) if bytes[0] == KEY_VERSION => format!("made for k = {k}, the model has k = {}", model.settings.k),
        _ => "not a halo2 key file of the expected version".into(),
    };
    Err(Error::Corrupt { what, path: path.into(), reason })
}

/// The version byte halo2-axiom writes first in a key file.
const KEY_VERSION: u8 = 0x02;

/// Reads a verifying key for `model`.
pub fn read_vk(bytes: &[u8], model: &QModel, path: &str) -> Result<VerifyingKey<G1Affine>> {
    check_key_header(bytes, model, "verifying key", path)?;
    VerifyingKey::from_bytes::<ModelCircuit>(bytes, SerdeFormat::RawBytes, model.settings.clone().into()).map_err(|e| Error::Corrupt {
        what: "verifying key",
        path: path.into(),
        reason: e.to_string(),
    })
}

/// Reads a proving key for `model`.
pub fn read_pk(bytes: &[u8], model: &QModel, path: &str) -> Result<ProvingKey<G1Affine>> {
    check_key_header(bytes, model, "proving key", path)?;
    ProvingKey::from_bytes::<ModelCircuit>(bytes, SerdeFormat::RawBytes, model.settings.clone().into()).map_err(|e| Error::Corrupt {
        what: "proving key",
        path: path.into(),
        reason: e.to_string(),
    })
}
