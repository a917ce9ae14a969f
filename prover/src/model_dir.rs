//! The on-disk layout of a compiled model directory.
//!
//! ```text
//! DIR/model.zkm        postcard: graph, quantized model, ONNX hash
//! DIR/model.onnx       the source model (float reference)
//! DIR/settings.json    circuit settings (human-readable copy)
//! DIR/setup.json       which SRS and key the directory is set up with
//! DIR/srs/k{K}-{H}.params    the SRS at the circuit's k
//! DIR/srs/k{K}-{H}.tables    its fixed-base MSM tables (a cache: rebuilt when missing or bad)
//! DIR/keys/{ID}/pk.bin, vk.bin   keys, cached by (model hash, settings, SRS hash)
//! ```
//! Every file is written atomically.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_proofs::plonk::{ProvingKey, VerifyingKey};
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zkinfer_circuits::compile::Compiled;
use zkinfer_circuits::quant::QModel;

use crate::commit::{CommitMsm, CommitParams, MsmChoice, SrsTables};
use crate::error::{Error, Result};
use crate::fs::{atomic_write, read};
use crate::keys;
use crate::proof::Bindings;
use crate::srs::Srs;

/// Version of `setup.json`.
pub const SETUP_VERSION: u32 = 1;

/// SHA-256 of the quantized model's canonical encoding: what the verifying key commits to.
pub fn model_hash(model: &QModel) -> Result<[u8; 32]> {
    let bytes = postcard::to_stdvec(model).map_err(|e| Error::ProofFormat(e.to_string()))?;
    Ok(Sha256::digest(bytes).into())
}

/// What `setup` recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupInfo {
    /// [`SETUP_VERSION`].
    pub version: u32,
    /// Hex model hash.
    pub model_hash: String,
    /// Hex SHA-256 of the SRS source.
    pub srs_sha256: String,
    /// k of the SRS source file.
    pub srs_source_k: u32,
    /// Whether the SRS is the insecure development one.
    pub insecure_dev_srs: bool,
    /// Circuit k.
    pub k: u32,
    /// Cache key of the keys.
    pub key_id: String,
    /// Hex SHA-256 of the verifying key.
    pub vk_sha256: String,
    /// Hex SHA-256 of the SRS file at the circuit's k in `DIR/srs/` (what verification reads).
    pub params_sha256: String,
}

/// Everything `prove` and `verify` need, loaded.
pub struct Loaded {
    /// The compiled model.
    pub compiled: Compiled,
    /// Shared quantized model.
    pub model: Arc<QModel>,
    /// Setup record.
    pub setup: SetupInfo,
    /// SRS at k.
    pub params: ParamsKZG<Bn256>,
    /// Verifying key.
    pub vk: VerifyingKey<G1Affine>,
    /// Hash bindings.
    pub bindings: Bindings,
}

/// A compiled model directory.
#[derive(Clone, Debug)]
pub struct ModelDir {
    root: PathBuf,
}

fn decode_hex32(s: &str, what: &'static str, path: &Path) -> Result<[u8; 32]> {
    hex::decode(s).ok().and_then(|v| <[u8; 32]>::try_from(v).ok()).ok_or_else(|| Error::Corrupt {
        what,
        path: path.display().to_string(),
        reason: "bad hash".into(),
    })
}

impl ModelDir {
    /// A handle on `root` (nothing is read).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ModelDir { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Writes a compiled model.
    pub fn write_compiled(&self, compiled: &Compiled, onnx: &[u8]) -> Result<()> {
        let bytes = postcard::to_stdvec(compiled).map_err(|e| Error::ProofFormat(e.to_string()))?;
        let settings = serde_json::to_vec_pretty(&compiled.model.settings).map_err(|e| Error::ProofFormat(e.to_string()))?;
        atomic_write(&self.path("model.onnx"), onnx)?;
        atomic_write(&self.path("settings.json"), &settings)?;
        atomic_write(&self.path("model.zkm"), &bytes)
    }

    /// Reads the compiled model.
    pub fn read_compiled(&self) -> Result<Compiled> {
        let path = self.path("model.zkm");
        if !path.exists() {
            return Err(Error::Corrupt {
                what: "compiled model",
                path: path.display().to_string(),
                reason: "missing: run `zkinfer compile MODEL.onnx -o DIR` first".into(),
            });
        }
        Self::decode_compiled(&read(&path)?, &path)
    }

    /// Decodes a compiled model (`model.zkm`, as read from `path` or fetched from a
    /// coordinator): what every reader of one goes through.
    pub fn decode_compiled(bytes: &[u8], path: &Path) -> Result<Compiled> {
        let compiled: Compiled = postcard::from_bytes(bytes).map_err(|e| Error::Corrupt {
            what: "compiled model",
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if compiled.model.settings.version != zkinfer_circuits::quant::SETTINGS_VERSION {
            return Err(Error::Corrupt {
                what: "compiled model",
                path: path.display().to_string(),
                reason: "settings version differs: recompile".into(),
            });
        }
        // Decoded from a file others may have made: nothing may index or size by it unchecked.
        compiled.model.validate().map_err(|e| Error::Corrupt {
            what: "compiled model",
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(compiled)
    }

    /// The original ONNX bytes.
    pub fn read_onnx(&self) -> Result<Vec<u8>> {
        read(&self.path("model.onnx"))
    }

    fn key_dir(&self, id: &str) -> PathBuf {
        self.root.join("keys").join(id)
    }

    fn params_path(&self, k: u32, srs_hex: &str) -> PathBuf {
        self.root.join("srs").join(format!("k{k}-{}.params", &srs_hex[..16]))
    }

    fn tables_path(&self, k: u32, srs_hex: &str) -> PathBuf {
        self.root.join("srs").join(format!("k{k}-{}.tables", &srs_hex[..16]))
    }

    /// The fixed-base MSM tables of the SRS at `k`: read from the cache, or built and cached
    /// when missing or unreadable (the cache is rebuilt, never trusted: see [`SrsTables::from_bytes`]).
    fn tables(&self, params: &ParamsKZG<Bn256>, k: u32, srs_hex: &str) -> Result<Arc<SrsTables>> {
        let path = self.tables_path(k, srs_hex);
        if path.exists() {
            if let Ok(tables) = SrsTables::from_bytes(&read(&path)?, params) {
                return Ok(Arc::new(tables));
            }
        }
        let tables = SrsTables::build(params)?;
        atomic_write(&path, &tables.to_bytes())?;
        Ok(Arc::new(tables))
    }

    /// Params for keygen and proving that commit with `choice` (tables are cached beside the SRS).
    pub fn commit_params(&self, loaded: &Loaded, choice: MsmChoice) -> Result<CommitParams> {
        let msm = match choice {
            MsmChoice::Precomputed => CommitMsm::Precomputed(self.tables(&loaded.params, loaded.setup.k, &loaded.setup.srs_sha256)?),
            MsmChoice::Backend(b) => CommitMsm::Backend(Arc::from(b.build()?)),
        };
        CommitParams::new(loaded.params.clone(), msm)
    }

    /// [`ModelDir::commit_params`], falling back to the CPU's precomputed tables where the
    /// CUDA backend cannot run; the reason comes back with the params so the caller can say so.
    pub fn commit_params_or_cpu(&self, loaded: &Loaded, choice: MsmChoice) -> Result<(CommitParams, Option<String>)> {
        match self.commit_params(loaded, choice) {
            Err(Error::CudaUnavailable { reason }) => Ok((self.commit_params(loaded, MsmChoice::Precomputed)?, Some(reason))),
            other => other.map(|p| (p, None)),
        }
    }

    /// Sets the directory up with `srs`: builds the MSM tables and generates keys unless
    /// cached. `on_keygen` is called before keygen runs.
    pub fn setup(&self, compiled: &Compiled, srs: &Srs, on_keygen: impl FnOnce()) -> Result<(SetupInfo, bool)> {
        let model = Arc::new(compiled.model.clone());
        let mh = model_hash(&model)?;
        let settings = serde_json::to_vec(&model.settings).map_err(|e| Error::ProofFormat(e.to_string()))?;
        let key_id = {
            let mut h = Sha256::new();
            h.update(mh);
            h.update(&settings);
            h.update(srs.source_sha256);
            hex::encode(&h.finalize()[..12])
        };
        let kd = self.key_dir(&key_id);
        let (vk_path, pk_path) = (kd.join("vk.bin"), kd.join("pk.bin"));
        let params_path = self.params_path(model.settings.k, &srs.sha256_hex());
        srs.save_params(&params_path)?;
        let params_sha256 = hex::encode(Sha256::digest(read(&params_path)?));
        let cached = vk_path.exists() && pk_path.exists();
        let vk_bytes = if cached {
            read(&vk_path)?
        } else {
            on_keygen();
            let tables = self.tables(&srs.params, model.settings.k, &srs.sha256_hex())?;
            let pk = keys::keygen(&CommitParams::new(srs.params.clone(), CommitMsm::Precomputed(tables))?, model.clone())?;
            let vk_bytes = keys::vk_bytes(pk.get_vk());
            atomic_write(&pk_path, &keys::pk_bytes(&pk))?;
            atomic_write(&vk_path, &vk_bytes)?;
            vk_bytes
        };
        let info = SetupInfo {
            version: SETUP_VERSION,
            model_hash: hex::encode(mh),
            srs_sha256: srs.sha256_hex(),
            srs_source_k: srs.source_k,
            insecure_dev_srs: srs.insecure,
            k: model.settings.k,
            key_id,
            vk_sha256: hex::encode(Sha256::digest(&vk_bytes)),
            params_sha256,
        };
        let json = serde_json::to_vec_pretty(&info).map_err(|e| Error::ProofFormat(e.to_string()))?;
        atomic_write(&self.path("setup.json"), &json)?;
        Ok((info, cached))
    }

    /// Reads `setup.json`.
    pub fn read_setup(&self) -> Result<SetupInfo> {
        let path = self.path("setup.json");
        if !path.exists() {
            return Err(Error::Corrupt {
                what: "setup record",
                path: path.display().to_string(),
                reason: "missing: run `zkinfer setup DIR` first".into(),
            });
        }
        Self::decode_setup(&read(&path)?, &path)
    }

    /// Decodes a setup record (`setup.json`, as read from `path`).
    pub fn decode_setup(bytes: &[u8], path: &Path) -> Result<SetupInfo> {
        let info: SetupInfo = serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
            what: "setup record",
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if info.version != SETUP_VERSION {
            return Err(Error::Corrupt {
                what: "setup record",
                path: path.display().to_string(),
                reason: "version differs: rerun setup".into(),
            });
        }
        Ok(info)
    }

    /// Loads the model, SRS and verifying key, checking they belong together.
    pub fn load(&self) -> Result<Loaded> {
        let compiled = self.read_compiled()?;
        let setup = self.read_setup()?;
        let model = Arc::new(compiled.model.clone());
        let mh = model_hash(&model)?;
        let setup_path = self.path("setup.json");
        if hex::encode(mh) != setup.model_hash {
            return Err(Error::Corrupt {
                what: "setup record",
                path: setup_path.display().to_string(),
                reason: "set up for another model: rerun setup".into(),
            });
        }
        let params_path = self.params_path(setup.k, &setup.srs_sha256);
        if hex::encode(Sha256::digest(read(&params_path)?)) != setup.params_sha256 {
            return Err(Error::Corrupt {
                what: "SRS",
                path: params_path.display().to_string(),
                reason: "hash differs from setup.json: rerun setup".into(),
            });
        }
        let params = Srs::read_params(&params_path)?;
        let vk_path = self.key_dir(&setup.key_id).join("vk.bin");
        let vk_bytes = read(&vk_path)?;
        if hex::encode(Sha256::digest(&vk_bytes)) != setup.vk_sha256 {
            return Err(Error::Corrupt {
                what: "verifying key",
                path: vk_path.display().to_string(),
                reason: "hash differs from setup.json".into(),
            });
        }
        let vk = keys::read_vk(&vk_bytes, &model, &vk_path.display().to_string())?;
        let bindings = Bindings {
            model_hash: mh,
            vk_hash: decode_hex32(&setup.vk_sha256, "setup record", &setup_path)?,
            srs_hash: decode_hex32(&setup.srs_sha256, "setup record", &setup_path)?,
        };
        Ok(Loaded { compiled, model, setup, params, vk, bindings })
    }

    /// Regenerates the verifying key from the compiled model and the SRS and checks that it
    /// is the one `setup` recorded: ties the key to the model instead of trusting `vk.bin`.
    pub fn check_vk(&self, loaded: &Loaded) -> Result<()> {
        // halo2's own MSM, never the tables cache: the cache is checked only in part when read
        // (its first window exactly, a sample of the rest), so a crafted cache could make a
        // foreign key match; this is the check that ties the key to the model.
        let msm = CommitMsm::Halo2;
        let vk = keys::regenerate_vk(&CommitParams::new(loaded.params.clone(), msm)?, loaded.model.clone())?;
        if keys::vk_hash(&vk) != loaded.bindings.vk_hash {
            return Err(Error::Corrupt {
                what: "verifying key",
                path: self.key_dir(&loaded.setup.key_id).join("vk.bin").display().to_string(),
                reason: "it is not the key of this model and SRS".into(),
            });
        }
        Ok(())
    }

    /// Loads the proving key.
    pub fn load_pk(&self, loaded: &Loaded) -> Result<ProvingKey<G1Affine>> {
        let path = self.key_dir(&loaded.setup.key_id).join("pk.bin");
        keys::read_pk(&read(&path)?, &loaded.model, &path.display().to_string())
    }
}
