//! Models registered with the coordinator over HTTP: an executor started with
//! `--fetch-models` downloads each one's compiled circuit, sets it up with its own SRS, and
//! proves it only if its verifying key is the coordinator's (same circuit, same SRS).

use zkinfer_protocol::{Hash32, ModelId};
use zkinfer_prover::srs::SrsChoice;
use zkinfer_prover::ModelDir;

use crate::prover::Prover;
use crate::worker::Executor;
use crate::{Error, Result};

impl Executor {
    /// Sets up models registered since the last look; returns whether any was added. Failures
    /// are logged and retried at the next look (the executor keeps serving what it has).
    pub(crate) async fn sync_models(&self) -> bool {
        let Some(srs) = self.cfg.fetch_models.clone() else { return false };
        let listed = match self.client.public().models().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(executor = %self.id(), error = %e, "listing models failed");
                return false;
            }
        };
        let mut added = false;
        let new: Vec<_> = listed.into_iter().filter(|m| !self.has_model(&m.id)).collect();
        for m in new {
            match self.fetch(&m.id, srs.clone()).await {
                Ok(p) => {
                    tracing::info!(executor = %self.id(), model = %m.id, "set up a registered model");
                    self.add_prover(m.id, p);
                    added = true;
                }
                Err(e) => tracing::warn!(executor = %self.id(), model = %m.id, error = %e, "setting up a registered model failed"),
            }
        }
        added
    }

    async fn fetch(&self, id: &ModelId, srs: SrsChoice) -> Result<Prover> {
        let a = self.client.public().model_artifact(id).await?;
        // The id is path-safe by construction (ModelId).
        let dir = self.cfg.state_dir.join("models").join(id.as_str());
        let (id, msm) = (id.clone(), self.cfg.msm);
        // Keygen takes seconds to minutes of CPU: off the async workers.
        tokio::task::spawn_blocking(move || {
            let err = |source| Error::Model { model: id.to_string(), source };
            zkinfer_prover::fs::atomic_write(&dir.join("model.zkm"), &a.model_zkm.0).map_err(err)?;
            let d = ModelDir::new(&dir);
            let compiled = d.read_compiled().map_err(err)?;
            let srs = srs.at(compiled.model.settings.k).map_err(err)?;
            let (info, _) = d.setup(&compiled, &srs, || ()).map_err(err)?;
            let (here, here_model) = (info.vk_sha256.parse::<Hash32>().ok(), info.model_hash.parse::<Hash32>().ok());
            if here != Some(a.model.vk_sha256) || here_model != Some(a.model.model_hash) {
                return Err(Error::ModelMismatch {
                    model: id,
                    here: info.vk_sha256,
                    there: a.model.vk_sha256.to_string(),
                    here_model: info.model_hash,
                    there_model: a.model.model_hash.to_string(),
                });
            }
            Prover::load(id.as_str(), &dir, msm)
        })
        .await
        .map_err(|_| Error::Panicked("setting up a fetched model"))?
    }
}
