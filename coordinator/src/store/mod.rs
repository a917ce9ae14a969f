//! Persistence: models, jobs and their lifecycle events, executors, nonces and what the chain
//! said, in SQLite (a file, no setup: the default) or Postgres (for several coordinators on
//! several hosts), chosen by the URL.
//!
//! Every state change is checked against [`JobState::can_move_to`] inside one transaction
//! and recorded in `job_events`, so a job's history (with timings) survives restarts. Every
//! write transaction takes the store's write lock up front (SQLite: `BEGIN IMMEDIATE` on a
//! single-connection pool; Postgres: an exclusive lock on `jobs`), so each read-check-write
//! sequence is atomic even when several coordinators share the database: that is what makes
//! claiming a job exclusive. The SQL is shared by both (with `$N` parameters); only the
//! schema's types and the lock differ ([`schema`]).
//!
//! The protocol's newtypes are converted to and from columns here and nowhere else: job ids
//! are `BIGINT`s, executors lowercase 0x-hex, commitments 0x-hex.

mod chain;
mod executors;
mod jobs;
mod optimistic;
mod schema;

use sqlx::{AnyPool, Row};
use zkinfer_protocol::{ExecutorId, JobId, JobState, ModelId};

pub use jobs::{JobInput, NewJob, OptimisticJob};
pub use optimistic::{AuditCandidate, ClaimedResult};
pub use schema::Backend;

use crate::error::{Error, Result};

/// The coordinator's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

impl Store {
    /// Opens (creating if missing) the database at `url`: a SQLite file (`sqlite:coordinator.db`,
    /// or `sqlite::memory:`), or a Postgres database (`postgres://user@host/db`), which several
    /// coordinators on several hosts can share.
    pub async fn open(url: &str) -> Result<Self> {
        let (backend, pool) = schema::connect(url).await?;
        Ok(Store { pool, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A write transaction that holds the store's write lock from its start, so each
    /// read-check-write sequence is atomic across coordinators sharing the database.
    async fn begin(&self) -> Result<Tx<'_>> {
        schema::begin_exclusive(&self.pool, self.backend).await
    }

    /// Registers (or re-registers) a model that takes `input_len` values.
    pub async fn register_model(&self, id: &ModelId, input_len: usize, now_ms: i64) -> Result<()> {
        sqlx::query("INSERT INTO models (id, input_len, created_ms) VALUES ($1, $2, $3) ON CONFLICT(id) DO UPDATE SET input_len = $2")
            .bind(id.as_str())
            .bind(input_len as i64)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Registered models and how many input values each takes.
    pub async fn models(&self) -> Result<Vec<(ModelId, usize)>> {
        sqlx::query("SELECT id, input_len FROM models ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((model_id(&r.try_get::<String, _>(0)?)?, r.try_get::<i64, _>(1)? as usize)))
            .collect()
    }

    /// The number of input values a model takes.
    pub async fn model_input_len(&self, id: &ModelId) -> Result<usize> {
        let row = sqlx::query("SELECT input_len FROM models WHERE id = $1").bind(id.as_str()).fetch_optional(&self.pool).await?;
        let len: i64 = row.ok_or_else(|| Error::UnknownModel(id.to_string()))?.try_get(0)?;
        Ok(len as usize)
    }

    /// Closes the pool (tests reopen the file to simulate a restart).
    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// A job id as its column: ids that do not fit are unknown jobs.
fn db_id(id: JobId) -> Result<i64> {
    i64::try_from(id.0).map_err(|_| Error::UnknownJob(id))
}

/// A job id from its column.
fn job_id(v: i64) -> JobId {
    JobId(v.max(0) as u64)
}

/// An executor as its column.
fn db_executor(e: &ExecutorId) -> String {
    e.to_string()
}

/// An executor from its column (written by [`db_executor`]).
fn executor_id(s: &str) -> Result<ExecutorId> {
    s.parse().map_err(|_| Error::Internal(format!("stored executor `{s}` is not an address")))
}

fn model_id(s: &str) -> Result<ModelId> {
    ModelId::new(s).map_err(|_| Error::Internal(format!("stored model id `{s}` is not a model id")))
}

fn parse_state(s: &str) -> Result<JobState> {
    JobState::parse(s).ok_or_else(|| Error::Internal(format!("unknown stored state `{s}`")))
}

async fn set_state(tx: &mut Tx<'_>, job: i64, to: JobState, now_ms: i64, executor: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE jobs SET state = $1 WHERE id = $2").bind(to.as_str()).bind(job).execute(&mut **tx).await?;
    event(tx, job, to, now_ms, executor).await
}

async fn event(tx: &mut Tx<'_>, job: i64, state: JobState, now_ms: i64, executor: Option<&str>) -> Result<()> {
    sqlx::query("INSERT INTO job_events (job_id, state, at_ms, executor) VALUES ($1, $2, $3, $4)")
        .bind(job)
        .bind(state.as_str())
        .bind(now_ms)
        .bind(executor)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Proved (or an optimistic job's posted or challenged result) → settled when the job's
/// escrow payment is recorded.
async fn settle_if_paid(tx: &mut Tx<'_>, job: i64, now_ms: i64) -> Result<()> {
    let paid: Option<String> = sqlx::query_scalar(
        "SELECT p.executor FROM jobs j JOIN payments p ON p.escrow_job = j.escrow_job \
         WHERE j.id = $1 AND j.state IN ('proved', 'posted', 'challenged')",
    )
    .bind(job)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(executor) = paid {
        set_state(tx, job, JobState::Settled, now_ms, Some(&executor)).await?;
    }
    Ok(())
}
