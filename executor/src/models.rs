//! Models registered with the coordinator over HTTP: an executor started with
//! `--fetch-models` downloads each one's compiled circuit, sets it up with its own SRS, and
//! proves it only if its verifying key is the coordinator's (same circuit, same SRS).

use std::sync::Arc;

use serde::Deserialize;
use zkinfer_coordinator::check::RegisteredModel;
use zkinfer_prover::ModelDir;

use crate::{Error, Executor, Prover, Result};

#[derive(Deserialize)]
struct Listed {
    id: String,
}

#[derive(Deserialize)]
struct Artifact {
    model: RegisteredModel,
    model_zkm: String,
}

impl Executor {
    /// Sets up models registered since the last look; returns whether any was added. Failures
    /// are logged and retried at the next look (the executor keeps serving what it has).
    pub(crate) async fn sync_models(&mut self) -> bool {
        if self.cfg.fetch_models.is_none() {
            return false;
        }
        let listed: Vec<Listed> = match self.client.get_json("/v1/models").await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("executor {}: listing models: {e}", self.client.name());
                return false;
            }
        };
        let mut added = false;
        let new: Vec<Listed> = listed.into_iter().filter(|m| !self.provers.contains_key(&m.id)).collect();
        for m in new {
            match self.fetch(&m.id).await {
                Ok(p) => {
                    println!("executor {}: set up registered model `{}`", self.client.name(), m.id);
                    self.provers.insert(m.id, Arc::new(p));
                    added = true;
                }
                Err(e) => eprintln!("executor {}: model `{}`: {e}", self.client.name(), m.id),
            }
        }
        added
    }

    async fn fetch(&self, id: &str) -> Result<Prover> {
        let srs = self.cfg.fetch_models.clone().ok_or_else(|| Error::Coordinator("not fetching models".into()))?;
        let a: Artifact = self.client.get_json(&format!("/v1/models/{id}/artifact")).await?;
        let zkm = hex::decode(&a.model_zkm).map_err(|e| Error::Coordinator(format!("artifact: {e}")))?;
        let dir = self.cfg.state_dir.join("models").join(id);
        let id = id.to_string();
        let msm = self.cfg.msm;
        // Keygen takes seconds to minutes of CPU: off the async workers.
        tokio::task::spawn_blocking(move || {
            let err = |source| Error::Model { model: id.clone(), source };
            zkinfer_prover::fs::atomic_write(&dir.join("model.zkm"), &zkm).map_err(err)?;
            let d = ModelDir::new(&dir);
            let compiled = d.read_compiled().map_err(err)?;
            let srs = srs.at(compiled.model.settings.k).map_err(err)?;
            let (info, _) = d.setup(&compiled, &srs, || ()).map_err(err)?;
            if info.vk_sha256 != a.model.vk_sha256 || info.model_hash != a.model.model_hash {
                return Err(Error::Coordinator(format!(
                    "model `{id}`: set up here it has vk {} and model hash {}, the coordinator's has {} and {} (another SRS?)",
                    info.vk_sha256, info.model_hash, a.model.vk_sha256, a.model.model_hash
                )));
            }
            Prover::load(&id, &dir, msm)
        })
        .await
        .map_err(|e| Error::Coordinator(format!("setup task failed: {e}")))?
    }
}
