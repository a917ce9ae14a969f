//! The coordinator's models: set-up model directories given at startup, and models
//! registered over HTTP (compiled and set up into the models directory).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use alloy::primitives::{Address, B256, U256};
use halo2curves::ff::PrimeField;
use zkinfer_verifier_contract::solc::Toolchain;
use zkinfer_verifier_contract::verifier::CompiledVerifier;

use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::quant::Visibility;
use zkinfer_protocol::types::{RegisterModelRequest, RegisteredModel};
use zkinfer_protocol::{Binding, Commitment, Hash32, ModelId, Salt};
use zkinfer_prover::srs::SrsChoice;
use zkinfer_prover::{Loaded, ModelDir, ProofEnvelope};

use crate::check::{ExpectedProof, ModelRegistrar, ProofChecker};
use crate::error::{Error, Result};

/// Where models registered over HTTP go, and the SRS their keys use.
#[derive(Clone, Debug)]
pub struct Registration {
    /// The directory: one subdirectory per model id.
    pub dir: PathBuf,
    /// The SRS for their keys.
    pub srs: SrsChoice,
}

/// Models the coordinator verifies proofs for.
pub struct ModelRegistry {
    models: RwLock<HashMap<ModelId, (Arc<Loaded>, PathBuf)>>,
    registration: Option<Registration>,
    /// The Solidity toolchain, when escrow registrations must be pinned to the verifier
    /// generated here.
    toolchain: Option<Toolchain>,
    /// Each model's compiled verifier (cached in `DIR/evm/verifier-build.json`).
    verifiers: Mutex<HashMap<ModelId, Arc<CompiledVerifier>>>,
}

fn check_hashed(id: &ModelId, loaded: &Loaded) -> Result<()> {
    if loaded.model.settings.input_visibility != Visibility::Hashed {
        return Err(Error::Unservable {
            model: id.to_string(),
            why: "the market needs a hashed input (compile --input-visibility hashed)",
        });
    }
    Ok(())
}

fn load_dir(id: &ModelId, dir: &Path) -> Result<Loaded> {
    let bad = |source| Error::ModelDir { model: id.to_string(), source };
    let d = ModelDir::new(dir);
    let loaded = d.load().map_err(bad)?;
    d.check_vk(&loaded).map_err(bad)?;
    check_hashed(id, &loaded)?;
    Ok(loaded)
}

fn registered(id: &ModelId, loaded: &Loaded) -> Result<RegisteredModel> {
    let hash = |h: &str| h.parse::<Hash32>().map_err(|_| Error::Internal(format!("model `{id}`: setup.json holds a malformed hash")));
    Ok(RegisteredModel {
        model_id: id.clone(),
        model_hash: hash(&loaded.setup.model_hash)?,
        vk_sha256: hash(&loaded.setup.vk_sha256)?,
        k: loaded.setup.k,
        input_len: loaded.model.input_sizes().iter().sum::<usize>() as u64,
    })
}

impl ModelRegistry {
    /// Loads each `(id, dir)`; the verifying key is regenerated from the model and compared
    /// with the cached one, so a swapped key file is caught here. With `registration`,
    /// models registered over HTTP go to its directory with keys from its SRS, and the ones
    /// registered before a restart are loaded again.
    pub fn load(dirs: &[(ModelId, PathBuf)], registration: Option<Registration>) -> Result<Self> {
        let mut models = HashMap::new();
        for (id, dir) in dirs {
            models.insert(id.clone(), (Arc::new(load_dir(id, dir)?), dir.clone()));
        }
        if let Some(r) = &registration {
            for entry in std::fs::read_dir(&r.dir).into_iter().flatten().flatten() {
                let Ok(id) = ModelId::new(&entry.file_name().to_string_lossy()) else { continue };
                if entry.path().join("setup.json").exists() && !models.contains_key(&id) {
                    models.insert(id.clone(), (Arc::new(load_dir(&id, &entry.path())?), entry.path()));
                }
            }
        }
        Ok(ModelRegistry { models: RwLock::new(models), registration, toolchain: None, verifiers: Mutex::new(HashMap::new()) })
    }

    /// Pins escrow registrations to the verifiers this toolchain compiles from the models'
    /// keys ([`ProofChecker::expected_code_hash`]).
    pub fn with_toolchain(mut self, toolchain: Toolchain) -> Self {
        self.toolchain = Some(toolchain);
        self
    }

    /// The model's verifier as generated and compiled here (blocking: solcjs, seconds to a
    /// minute the first time; then the cache).
    pub fn verifier(&self, id: &ModelId) -> Result<Arc<CompiledVerifier>> {
        if let Some(v) = self.verifiers.lock().map_err(|_| Error::Internal("verifier cache poisoned".into()))?.get(id) {
            return Ok(v.clone());
        }
        let tc = self.toolchain.as_ref().ok_or_else(|| Error::Internal("no Solidity toolchain to pin verifiers with".into()))?;
        let (loaded, dir) = self.get(id)?;
        let built = CompiledVerifier::for_model(tc, &loaded, Some(&dir.join("evm/verifier-build.json")))
            .map_err(|e| Error::Internal(format!("model `{id}`: building its verifier: {e}")))?;
        let built = Arc::new(built);
        self.verifiers.lock().map_err(|_| Error::Internal("verifier cache poisoned".into()))?.insert(id.clone(), built.clone());
        Ok(built)
    }

    /// Whether models can be registered over HTTP.
    pub fn accepts_registrations(&self) -> bool {
        self.registration.is_some()
    }

    /// The served model ids, sorted.
    pub fn ids(&self) -> Vec<ModelId> {
        let mut ids: Vec<ModelId> = self.models.read().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        ids.sort();
        ids
    }

    fn get(&self, id: &ModelId) -> Result<(Arc<Loaded>, PathBuf)> {
        let models = self.models.read().map_err(|_| Error::Internal("model registry poisoned".into()))?;
        models.get(id).cloned().ok_or_else(|| Error::UnknownModel(id.to_string()))
    }
}

impl ModelRegistrar for ModelRegistry {
    fn register(&self, req: &RegisterModelRequest) -> Result<RegisteredModel> {
        let reg = self.registration.as_ref().ok_or_else(|| {
            Error::BadRequest("this coordinator does not register models (start it with --models-dir and --srs or --dev-srs)".into())
        })?;
        if self.get(&req.id).is_ok() {
            return Err(Error::BadRequest(format!("model `{}` is already registered", req.id)));
        }
        let opts = CompileOptions { input_visibility: Visibility::Hashed, ..CompileOptions::default() };
        // Unsupported ops and malformed files are the sender's error, named with op and node.
        let compiled = compile(&req.onnx.0, req.calibration.as_deref(), &opts).map_err(Error::Compile)?;
        // The id is path-safe by construction (ModelId).
        let dir = reg.dir.join(req.id.as_str());
        let d = ModelDir::new(&dir);
        let internal = |source| Error::ModelDir { model: req.id.to_string(), source };
        d.write_compiled(&compiled, &req.onnx.0).map_err(internal)?;
        let srs = reg.srs.at(compiled.model.settings.k).map_err(internal)?;
        d.setup(&compiled, &srs, || ()).map_err(internal)?;
        let loaded = load_dir(&req.id, &dir)?;
        let out = registered(&req.id, &loaded)?;
        let mut models = self.models.write().map_err(|_| Error::Internal("model registry poisoned".into()))?;
        models.insert(req.id.clone(), (Arc::new(loaded), dir));
        Ok(out)
    }

    fn artifact(&self, model_id: &ModelId) -> Result<(Vec<u8>, RegisteredModel)> {
        let (loaded, dir) = self.get(model_id)?;
        let zkm = std::fs::read(dir.join("model.zkm")).map_err(|e| Error::Internal(format!("model `{model_id}`: model.zkm: {e}")))?;
        Ok((zkm, registered(model_id, &loaded)?))
    }
}

impl ProofChecker for ModelRegistry {
    fn input_len(&self, model_id: &ModelId) -> Option<usize> {
        self.get(model_id).ok().map(|(l, _)| l.model.input_sizes().iter().sum())
    }

    fn commitment(&self, model_id: &ModelId, input: &[f32], salt: Salt) -> Result<Commitment> {
        let (loaded, _) = self.get(model_id)?;
        let inputs = loaded.model.split_inputs(input).map_err(|e| Error::BadRequest(format!("input: {e}")))?;
        let c = loaded.model.input_commitment(&inputs, salt.to_fr()).map_err(|e| Error::BadRequest(format!("input: {e}")))?;
        Ok(Commitment::from(c))
    }

    fn num_instances(&self, model_id: &ModelId) -> Option<usize> {
        self.get(model_id).ok().map(|(l, _)| l.model.num_instances())
    }

    fn expected_code_hash(&self, model_id: &ModelId, parts: &[Address]) -> Result<Option<B256>> {
        if self.toolchain.is_none() {
            return Ok(None);
        }
        // Another number of parts than this verifier has cannot be it.
        let v = self.verifier(model_id)?;
        Ok(Some(v.code_hash(parts).unwrap_or(B256::ZERO)))
    }

    fn model_hash(&self, model_id: &ModelId) -> Option<[u8; 32]> {
        self.get(model_id).ok().map(|(l, _)| l.bindings.model_hash)
    }

    fn outputs(&self, model_id: &ModelId, quantized: &[Vec<i64>]) -> Result<(Vec<U256>, Vec<Vec<f64>>)> {
        let (loaded, _) = self.get(model_id)?;
        let model = &loaded.model;
        let sizes: Vec<usize> = model.output_shapes().iter().map(|s| s.iter().product()).collect();
        let got: Vec<usize> = quantized.iter().map(Vec::len).collect();
        if got != sizes {
            return Err(Error::BadRequest(format!("model `{model_id}` has outputs of {sizes:?} values, the result has {got:?}")));
        }
        let words =
            zkinfer_circuits::circuit::output_instances(model, quantized).iter().map(|f| U256::from_le_bytes(f.to_repr())).collect();
        let real = quantized.iter().map(|o| o.iter().map(|&v| model.dequantize(v)).collect()).collect();
        Ok((words, real))
    }

    fn check(&self, model_id: &ModelId, expect: &ExpectedProof, proof: &[u8]) -> Result<()> {
        let (loaded, _) = self.get(model_id)?;
        let env = ProofEnvelope::from_bytes(proof).map_err(Error::InvalidProof)?;
        let n = loaded.model.num_instances();
        let instances = zkinfer_prover::verify(&loaded.params, &loaded.vk, &env, loaded.bindings, n).map_err(Error::InvalidProof)?;
        let got = instances.first().copied().map(Commitment::from);
        if got != Some(expect.commitment) {
            return Err(Error::ProofForOtherInput { expected: expect.commitment, got: got.map_or("nothing".into(), |c| c.to_string()) });
        }
        let at = loaded.model.binding_offset();
        let fields: Option<[_; 4]> = instances.get(at..at + 4).and_then(|f| f.try_into().ok());
        let bound = fields.map(|f| Binding::from_fields(&f));
        match bound {
            Some(Ok(b)) if b == expect.binding => Ok(()),
            Some(Ok(b)) => Err(Error::ProofForOtherPayee { expected: expect.binding, got: b.to_string() }),
            _ => Err(Error::ProofForOtherPayee { expected: expect.binding, got: "no binding a chain can pay".into() }),
        }
    }
}
