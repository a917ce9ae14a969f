//! The coordinator's models: set-up model directories given at startup, and models
//! registered over HTTP (compiled and set up into the models directory).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::quant::Visibility;
use zkinfer_prover::srs::SrsChoice;
use zkinfer_prover::{Loaded, ModelDir, ProofEnvelope};

use crate::check::{commitment_hex, input_commitment, ModelRegistrar, ProofChecker, RegisterModel, RegisteredModel};
use crate::error::{Error, Result};

/// Models the coordinator verifies proofs for.
pub struct ModelRegistry {
    models: RwLock<HashMap<String, (Arc<Loaded>, PathBuf)>>,
    /// Where models registered over HTTP are written, and the SRS their keys use.
    registration: Option<(PathBuf, SrsChoice)>,
}

fn check_hashed(id: &str, loaded: &Loaded) -> Result<()> {
    if loaded.model.settings.input_visibility != Visibility::Hashed {
        return Err(Error::ModelDir(format!("model `{id}`: the market needs a hashed input (compile --input-visibility hashed)")));
    }
    Ok(())
}

fn load_dir(id: &str, dir: &Path) -> Result<Loaded> {
    let bad = |e: zkinfer_prover::Error| Error::ModelDir(format!("model `{id}` in {}: {e}", dir.display()));
    let d = ModelDir::new(dir);
    let loaded = d.load().map_err(bad)?;
    d.check_vk(&loaded).map_err(bad)?;
    check_hashed(id, &loaded)?;
    Ok(loaded)
}

fn registered(id: &str, loaded: &Loaded) -> RegisteredModel {
    RegisteredModel {
        model_id: id.to_string(),
        model_hash: loaded.setup.model_hash.clone(),
        vk_sha256: loaded.setup.vk_sha256.clone(),
        k: loaded.setup.k,
        input_len: loaded.model.input_sizes().iter().sum(),
    }
}

impl ModelRegistry {
    /// Loads each `(id, dir)`; the verifying key is regenerated from the model and compared
    /// with the cached one, so a swapped key file is caught here. With `registration`,
    /// models registered over HTTP go to its directory with keys from its SRS, and the ones
    /// registered before a restart are loaded again.
    pub fn load(dirs: &[(String, PathBuf)], registration: Option<(PathBuf, SrsChoice)>) -> Result<Self> {
        let mut models = HashMap::new();
        for (id, dir) in dirs {
            models.insert(id.clone(), (Arc::new(load_dir(id, dir)?), dir.clone()));
        }
        if let Some((root, _)) = &registration {
            for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
                let id = entry.file_name().to_string_lossy().to_string();
                if valid_id(&id) && entry.path().join("setup.json").exists() && !models.contains_key(&id) {
                    models.insert(id.clone(), (Arc::new(load_dir(&id, &entry.path())?), entry.path()));
                }
            }
        }
        Ok(ModelRegistry { models: RwLock::new(models), registration })
    }

    /// The registered model ids.
    pub fn ids(&self) -> Vec<String> {
        self.models.read().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    fn get(&self, id: &str) -> Result<(Arc<Loaded>, PathBuf)> {
        let models = self.models.read().map_err(|_| Error::Internal("model registry poisoned".into()))?;
        models.get(id).cloned().ok_or_else(|| Error::UnknownModel(id.to_string()))
    }
}

/// Model ids are path components and URL segments: `[A-Za-z0-9_-]{1,64}`.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl ModelRegistrar for ModelRegistry {
    fn register(&self, req: &RegisterModel) -> Result<RegisteredModel> {
        let (root, srs) = self.registration.as_ref().ok_or_else(|| {
            Error::BadRequest("this coordinator does not register models (start it with --models-dir and --srs or --dev-srs)".into())
        })?;
        if !valid_id(&req.id) {
            return Err(Error::BadRequest(format!("model id `{}`: use 1 to 64 of A-Z a-z 0-9 _ -", req.id)));
        }
        if self.get(&req.id).is_ok() {
            return Err(Error::BadRequest(format!("model `{}` is already registered", req.id)));
        }
        let opts = CompileOptions { input_visibility: Visibility::Hashed, ..CompileOptions::default() };
        // Unsupported ops and malformed files are the sender's error, named with op and node.
        let compiled = compile(&req.onnx, req.calibration.as_deref(), &opts).map_err(|e| Error::BadRequest(format!("model: {e}")))?;
        let dir = root.join(&req.id);
        let d = ModelDir::new(&dir);
        let internal = |e: zkinfer_prover::Error| Error::ModelDir(format!("model `{}`: {e}", req.id));
        d.write_compiled(&compiled, &req.onnx).map_err(internal)?;
        let srs = srs.at(compiled.model.settings.k).map_err(internal)?;
        d.setup(&compiled, &srs, || ()).map_err(internal)?;
        let loaded = load_dir(&req.id, &dir)?;
        let out = registered(&req.id, &loaded);
        let mut models = self.models.write().map_err(|_| Error::Internal("model registry poisoned".into()))?;
        models.insert(req.id.clone(), (Arc::new(loaded), dir));
        Ok(out)
    }

    fn artifact(&self, model_id: &str) -> Result<(Vec<u8>, RegisteredModel)> {
        let (loaded, dir) = self.get(model_id)?;
        let zkm = std::fs::read(dir.join("model.zkm")).map_err(|e| Error::ModelDir(format!("model `{model_id}`: {e}")))?;
        Ok((zkm, registered(model_id, &loaded)))
    }
}

impl ProofChecker for ModelRegistry {
    fn input_len(&self, model_id: &str) -> Option<usize> {
        self.get(model_id).ok().map(|(l, _)| l.model.input_sizes().iter().sum())
    }

    fn commitment(&self, model_id: &str, input: &[f32]) -> Result<String> {
        let (loaded, _) = self.get(model_id)?;
        input_commitment(&loaded.model, input)
    }

    fn model_hash(&self, model_id: &str) -> Option<[u8; 32]> {
        self.get(model_id).ok().map(|(l, _)| l.bindings.model_hash)
    }

    fn check(&self, model_id: &str, commitment: &str, proof: &[u8]) -> Result<()> {
        let (loaded, _) = self.get(model_id)?;
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
