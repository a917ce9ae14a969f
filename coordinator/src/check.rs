//! Checking a delivered proof before a job becomes `proved`: it must be a valid proof for
//! the job's model, and its public input commitment must be the commitment to this job's input.

use std::collections::HashMap;
use std::path::Path;

use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::PrimeField;
use zkinfer_circuits::chips::{fr_from_i64, poseidon};
use zkinfer_circuits::quant::Visibility;
use zkinfer_prover::{Loaded, ModelDir, ProofEnvelope};

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

/// The commitment field element's on-chain value.
pub fn commitment_u256(c: &str) -> Result<alloy::primitives::U256> {
    c.parse().map_err(|_| Error::BadRequest(format!("input commitment `{c}` is not a 256-bit number")))
}

/// Models loaded from set-up model directories (`zkinfer compile` + `zkinfer setup`).
pub struct ModelRegistry {
    models: HashMap<String, Loaded>,
}

impl ModelRegistry {
    /// Loads each `(id, dir)`; the verifying key is regenerated from the model and compared
    /// with the cached one, so a swapped key file is caught here.
    pub fn load(dirs: &[(String, std::path::PathBuf)]) -> Result<Self> {
        let mut models = HashMap::new();
        for (id, dir) in dirs {
            let bad = |e: zkinfer_prover::Error| Error::ModelDir(format!("model `{id}` in {}: {e}", dir.display()));
            let d = ModelDir::new(Path::new(dir));
            let loaded = d.load().map_err(bad)?;
            d.check_vk(&loaded).map_err(bad)?;
            if loaded.model.settings.input_visibility != Visibility::Hashed {
                return Err(Error::ModelDir(format!("model `{id}`: the market needs a hashed input (compile --input-visibility hashed)")));
            }
            models.insert(id.clone(), loaded);
        }
        Ok(ModelRegistry { models })
    }

    /// The registered model ids.
    pub fn ids(&self) -> Vec<String> {
        self.models.keys().cloned().collect()
    }
}

impl ProofChecker for ModelRegistry {
    fn input_len(&self, model_id: &str) -> Option<usize> {
        self.models.get(model_id).map(|l| l.model.input_sizes().iter().sum())
    }

    fn commitment(&self, model_id: &str, input: &[f32]) -> Result<String> {
        let loaded = self.models.get(model_id).ok_or_else(|| Error::UnknownModel(model_id.to_string()))?;
        let q = loaded.model.quantize_inputs(&[input.to_vec()]).map_err(|e| Error::BadRequest(format!("input: {e}")))?;
        let flat: Vec<_> = q.iter().flatten().map(|&v| fr_from_i64(v)).collect();
        Ok(commitment_hex(&poseidon::commit(&flat)))
    }

    fn model_hash(&self, model_id: &str) -> Option<[u8; 32]> {
        self.models.get(model_id).map(|l| l.bindings.model_hash)
    }

    fn check(&self, model_id: &str, commitment: &str, proof: &[u8]) -> Result<()> {
        let loaded = self.models.get(model_id).ok_or_else(|| Error::UnknownModel(model_id.to_string()))?;
        let invalid = |why: String| Error::InvalidProof(why);
        let env = ProofEnvelope::from_bytes(proof).map_err(|e| invalid(e.to_string()))?;
        let n = loaded.model.num_instances();
        let instances = zkinfer_prover::verify(&loaded.params, &loaded.vk, &env, loaded.bindings, n).map_err(|e| invalid(e.to_string()))?;
        if instances.first().map(commitment_hex).as_deref() != Some(commitment) {
            return Err(invalid("the proof's input commitment is not this job's input".into()));
        }
        Ok(())
    }
}
