//! Crash-safe journals: one JSON file per escrow job under the state directory, written
//! atomically, removed once nothing more is owed. Proofs waiting to be paid
//! ([`crate::settle::Pending`]), optimistic results waiting out their window or a dispute
//! ([`crate::optimistic::Posted`]) and a validator's challenges ([`crate::audit::Challenge`])
//! each have one.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use zkinfer_protocol::EscrowJobId;

use crate::{Error, Result};

/// What a journal holds: one entry per escrow job.
pub trait Entry: Serialize + DeserializeOwned {
    /// The journal's directory under the state directory.
    const DIR: &'static str;
    /// The escrow job the entry is about (its file name).
    fn escrow_job(&self) -> EscrowJobId;
}

/// A journal of entries of type `T`.
#[derive(Debug)]
pub struct Journal<T> {
    dir: PathBuf,
    entries: PhantomData<fn() -> T>,
}

impl<T> Clone for Journal<T> {
    fn clone(&self) -> Self {
        Journal { dir: self.dir.clone(), entries: PhantomData }
    }
}

impl<T: Entry> Journal<T> {
    /// The journal under `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Journal { dir: state_dir.join(T::DIR), entries: PhantomData }
    }

    /// The file of an escrow job's entry.
    pub fn path(&self, escrow_job: EscrowJobId) -> PathBuf {
        self.dir.join(format!("{escrow_job}.json"))
    }

    /// Writes (replaces) an entry atomically.
    pub fn put(&self, p: &T) -> Result<()> {
        let path = self.path(p.escrow_job());
        let bytes = serde_json::to_vec_pretty(p).map_err(|e| Error::Journal { path: path.clone(), reason: e.to_string() })?;
        zkinfer_prover::fs::atomic_write(&path, &bytes).map_err(|e| Error::Journal { path, reason: e.to_string() })
    }

    /// Rewrites an entry that is still there (another path may have finished it meanwhile).
    pub fn put_if_present(&self, p: &T) -> Result<()> {
        if self.path(p.escrow_job()).exists() {
            self.put(p)?;
        }
        Ok(())
    }

    /// The entry of an escrow job, as it is on disk now (`None` once done).
    pub fn get(&self, escrow_job: EscrowJobId) -> Result<Option<T>> {
        let path = self.path(escrow_job);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::Journal { path, reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Journal { path, reason: e.to_string() }),
        }
    }

    /// Removes an entry (nothing more is owed).
    pub fn done(&self, escrow_job: EscrowJobId) -> Result<()> {
        let path = self.path(escrow_job);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Journal { path, reason: e.to_string() }),
            _ => Ok(()),
        }
    }

    /// Every readable entry, oldest escrow job first. An unreadable entry is logged and
    /// skipped, so it never blocks the others.
    pub fn entries(&self) -> Result<Vec<T>> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for f in dir.flatten().filter(|f| f.path().extension().is_some_and(|e| e == "json")) {
            match std::fs::read(f.path())
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<T>(&b).map_err(|e| e.to_string()))
            {
                Ok(p) => out.push(p),
                Err(reason) => tracing::warn!(path = %f.path().display(), %reason, "skipping an unreadable journal entry"),
            }
        }
        out.sort_by_key(|p| p.escrow_job());
        Ok(out)
    }
}
