//! Checking a delivered proof before a job becomes `proved`: it must be a valid proof for
//! the job's model, and its public input commitment must be the commitment to this job's input.

use std::collections::HashMap;
use std::path::Path;

use zkinfer_circuits::chips::{fr_from_i64, poseidon};
use zkinfer_circuits::quant::Visibility;
use zkinfer_prover::{Loaded, ModelDir, ProofEnvelope};

use crate::error::{Error, Result};

/// Checks delivered proofs. The API calls it before accepting one.
pub trait ProofChecker: Send + Sync {
    /// The number of input values a model takes, or `None` for an unknown model.
    fn input_len(&self, model_id: &str) -> Option<usize>;

    /// `Ok` when `proof` is a valid proof, for `model_id`, of the job input `input` (a JSON list of numbers).
    fn check(&self, model_id: &str, input: &[u8], proof: &[u8]) -> Result<()>;
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

    fn check(&self, model_id: &str, input: &[u8], proof: &[u8]) -> Result<()> {
        let loaded = self.models.get(model_id).ok_or_else(|| Error::UnknownModel(model_id.to_string()))?;
        let invalid = |why: String| Error::InvalidProof(why);
        let env = ProofEnvelope::from_bytes(proof).map_err(|e| invalid(e.to_string()))?;
        let n = loaded.model.num_instances();
        let instances = zkinfer_prover::verify(&loaded.params, &loaded.vk, &env, loaded.bindings, n).map_err(|e| invalid(e.to_string()))?;
        let values: Vec<f32> = serde_json::from_slice(input).map_err(|e| invalid(format!("stored input: {e}")))?;
        let q = loaded.model.quantize_inputs(&[values]).map_err(|e| invalid(e.to_string()))?;
        let flat: Vec<_> = q.iter().flatten().map(|&v| fr_from_i64(v)).collect();
        if instances.first() != Some(&poseidon::commit(&flat)) {
            return Err(invalid("the proof's input commitment is not this job's input".into()));
        }
        Ok(())
    }
}
