//! Persistence: models, jobs and their lifecycle events in SQLite (a file, no setup).
//!
//! Every state change is checked against [`JobState::can_move_to`] inside one transaction
//! and recorded in `job_events`, so a job's history (with timings) survives restarts. The
//! pool has a single connection, and every transaction is `BEGIN IMMEDIATE` (it takes the
//! write lock up front), so each read-check-write sequence is atomic even when two
//! coordinator processes share the file: that is what makes claiming a job exclusive.

use std::str::FromStr;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

use crate::error::{Error, Result};
use crate::state::JobState;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    input_len INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id TEXT NOT NULL REFERENCES models(id),
    customer TEXT NOT NULL,
    input BLOB NOT NULL,
    state TEXT NOT NULL,
    executor TEXT,
    lease_until_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    deadline_ms INTEGER NOT NULL,
    proof BLOB,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, id);
CREATE TABLE IF NOT EXISTS executor_nonces (
    executor TEXT PRIMARY KEY,
    last_nonce INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS job_events (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    state TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    executor TEXT
);
"#;

/// A job as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobView {
    /// The job id.
    pub id: i64,
    /// The model.
    pub model_id: String,
    /// Its state.
    pub state: JobState,
    /// The executor holding or having held it.
    pub executor: Option<String>,
    /// How many times it was leased.
    pub attempts: i64,
    /// Every state it reached, with the time (ms since the epoch).
    pub events: Vec<(JobState, i64)>,
}

/// A leased job, as an executor receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The job id.
    pub job: i64,
    /// The model.
    pub model_id: String,
    /// The (sealed) input.
    pub input: Vec<u8>,
    /// Lease expiry (ms since the epoch): heartbeat before it.
    pub until_ms: i64,
}

/// The coordinator's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if missing) the database at a `sqlite:` URL, e.g. `sqlite:coordinator.db`
    /// or `sqlite::memory:`.
    pub async fn open(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?.create_if_missing(true).journal_mode(SqliteJournalMode::Wal).foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Store { pool })
    }

    /// Registers (or re-registers) a model that takes `input_len` values.
    pub async fn register_model(&self, id: &str, input_len: usize, now_ms: i64) -> Result<()> {
        sqlx::query("INSERT INTO models (id, input_len, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET input_len = ?2")
            .bind(id)
            .bind(input_len as i64)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The number of input values a model takes.
    pub async fn model_input_len(&self, id: &str) -> Result<usize> {
        let row = sqlx::query("SELECT input_len FROM models WHERE id = ?1").bind(id).fetch_optional(&self.pool).await?;
        let len: i64 = row.ok_or_else(|| Error::UnknownModel(id.to_string()))?.try_get(0)?;
        Ok(len as usize)
    }

    /// Queues a job; `values` is the number of input values (checked against the model).
    pub async fn submit(&self, model_id: &str, customer: &str, input: &[u8], values: usize, deadline_ms: i64, now_ms: i64) -> Result<i64> {
        let expected = self.model_input_len(model_id).await?;
        if values != expected {
            return Err(Error::InputLength { got: values, expected });
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id: i64 = sqlx::query(
            "INSERT INTO jobs (model_id, customer, input, state, deadline_ms, created_ms) VALUES (?1, ?2, ?3, 'queued', ?4, ?5) RETURNING id",
        )
        .bind(model_id)
        .bind(customer)
        .bind(input)
        .bind(deadline_ms)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        event(&mut tx, id, JobState::Queued, now_ms, None).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Leases the oldest queued job to `executor` until `now + lease_ms`, after re-queueing
    /// jobs whose lease ran out. `None` when nothing is queued. Exclusive: a job is leased to
    /// one executor at a time.
    pub async fn claim(&self, executor: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Lease>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // Callers that learn from lapsed leases call `requeue_lapsed` first; this catches the rest.
        requeue_expired_leases(&mut tx, now_ms).await?;
        let row = sqlx::query(
            "UPDATE jobs SET state = 'assigned', executor = ?1, lease_until_ms = ?2, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND deadline_ms > ?3 ORDER BY id LIMIT 1) \
             RETURNING id, model_id, input",
        )
        .bind(executor)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let lease = match row {
            Some(r) => {
                let job: i64 = r.try_get(0)?;
                event(&mut tx, job, JobState::Assigned, now_ms, Some(executor)).await?;
                Some(Lease { job, model_id: r.try_get(1)?, input: r.try_get(2)?, until_ms: now_ms + lease_ms })
            }
            None => None,
        };
        tx.commit().await?;
        Ok(lease)
    }

    /// Re-queues jobs whose lease ran out; returns the executors that lost them (one entry per job).
    pub async fn requeue_lapsed(&self, now_ms: i64) -> Result<Vec<String>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let lost = requeue_expired_leases(&mut tx, now_ms).await?;
        tx.commit().await?;
        Ok(lost)
    }

    /// Accepts `nonce` for `executor` only if it is above every nonce it used before.
    pub async fn accept_nonce(&self, executor: &str, nonce: u64) -> Result<()> {
        let n = i64::try_from(nonce).map_err(|_| Error::BadSignature("nonce too large".into()))?;
        let done = sqlx::query(
            "INSERT INTO executor_nonces (executor, last_nonce) VALUES (?1, ?2) \
             ON CONFLICT(executor) DO UPDATE SET last_nonce = ?2 WHERE last_nonce < ?2",
        )
        .bind(executor)
        .bind(n)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Replayed { executor: executor.to_string(), nonce });
        }
        Ok(())
    }

    /// Jobs waiting for an executor.
    pub async fn queued(&self) -> Result<usize> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetch_one(&self.pool).await?;
        Ok(n as usize)
    }

    /// When the job was last assigned (ms since the epoch).
    pub async fn assigned_at(&self, job: i64) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT MAX(at_ms) FROM job_events WHERE job_id = ?1 AND state = 'assigned'")
            .bind(job)
            .fetch_one(&self.pool)
            .await?)
    }

    /// The lease holder starts proving (assigned → proving); extends the lease.
    pub async fn start_proving(&self, job: i64, executor: &str, now_ms: i64, lease_ms: i64) -> Result<()> {
        self.move_held(job, executor, JobState::Proving, "start proving", now_ms, Some(now_ms + lease_ms), None).await
    }

    /// The lease holder is still working: extends the lease (assigned or proving only).
    pub async fn heartbeat(&self, job: i64, executor: &str, now_ms: i64, lease_ms: i64) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let (state, holder) = current(&mut tx, job).await?;
        check_holder(job, state, holder.as_deref(), executor, "heartbeat")?;
        sqlx::query("UPDATE jobs SET lease_until_ms = ?1 WHERE id = ?2").bind(now_ms + lease_ms).bind(job).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The lease holder delivers a proof the caller has verified (proving → proved).
    pub async fn complete(&self, job: i64, executor: &str, proof: &[u8], now_ms: i64) -> Result<()> {
        self.move_held(job, executor, JobState::Proved, "deliver a proof", now_ms, None, Some(proof)).await
    }

    /// The escrow's payment for the job was seen on chain (proved → settled).
    pub async fn settle(&self, job: i64, now_ms: i64) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let (state, _) = current(&mut tx, job).await?;
        if !state.can_move_to(JobState::Settled) {
            return Err(Error::BadTransition { job, state: state.as_str(), action: "settle" });
        }
        set_state(&mut tx, job, JobState::Settled, now_ms, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks queued or leased jobs past their deadline as expired; returns how many.
    pub async fn expire(&self, now_ms: i64) -> Result<usize> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE jobs SET state = 'expired', lease_until_ms = NULL WHERE state IN ('queued', 'assigned', 'proving') AND deadline_ms <= ?1 RETURNING id",
        )
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        for &id in &ids {
            event(&mut tx, id, JobState::Expired, now_ms, None).await?;
        }
        tx.commit().await?;
        Ok(ids.len())
    }

    /// A job with its history.
    pub async fn job(&self, id: i64) -> Result<JobView> {
        let row = sqlx::query("SELECT model_id, state, executor, attempts FROM jobs WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::UnknownJob(id))?;
        let events = sqlx::query("SELECT state, at_ms FROM job_events WHERE job_id = ?1 ORDER BY rowid")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((parse_state(r.try_get::<String, _>(0)?.as_str())?, r.try_get(1)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(JobView {
            id,
            model_id: row.try_get(0)?,
            state: parse_state(row.try_get::<String, _>(1)?.as_str())?,
            executor: row.try_get(2)?,
            attempts: row.try_get(3)?,
            events,
        })
    }

    /// Fails unless `executor` holds job `job`'s lease (the job is assigned or proving).
    pub async fn ensure_holder(&self, job: i64, executor: &str, action: &'static str) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let (state, holder) = current(&mut tx, job).await?;
        tx.commit().await?;
        check_holder(job, state, holder.as_deref(), executor, action)
    }

    /// The job's model and (sealed) input.
    pub async fn job_input(&self, id: i64) -> Result<(String, Vec<u8>)> {
        let row = sqlx::query("SELECT model_id, input FROM jobs WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::UnknownJob(id))?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// The job's proof, once proved.
    pub async fn proof(&self, id: i64) -> Result<Option<Vec<u8>>> {
        let row =
            sqlx::query("SELECT proof FROM jobs WHERE id = ?1").bind(id).fetch_optional(&self.pool).await?.ok_or(Error::UnknownJob(id))?;
        Ok(row.try_get(0)?)
    }

    /// Number of jobs in each state.
    pub async fn counts(&self) -> Result<Vec<(JobState, i64)>> {
        sqlx::query("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((parse_state(r.try_get::<String, _>(0)?.as_str())?, r.try_get(1)?)))
            .collect()
    }

    /// Closes the pool (tests reopen the file to simulate a restart).
    pub async fn close(self) {
        self.pool.close().await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn move_held(
        &self,
        job: i64,
        executor: &str,
        to: JobState,
        action: &'static str,
        now_ms: i64,
        lease_until_ms: Option<i64>,
        proof: Option<&[u8]>,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let (state, holder) = current(&mut tx, job).await?;
        check_holder(job, state, holder.as_deref(), executor, action)?;
        if !state.can_move_to(to) {
            return Err(Error::BadTransition { job, state: state.as_str(), action });
        }
        sqlx::query("UPDATE jobs SET lease_until_ms = ?1, proof = COALESCE(?2, proof) WHERE id = ?3")
            .bind(lease_until_ms)
            .bind(proof)
            .bind(job)
            .execute(&mut *tx)
            .await?;
        set_state(&mut tx, job, to, now_ms, Some(executor)).await?;
        tx.commit().await?;
        Ok(())
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;

fn parse_state(s: &str) -> Result<JobState> {
    JobState::parse(s).ok_or_else(|| Error::BadRequest(format!("unknown stored state `{s}`")))
}

fn check_holder(job: i64, state: JobState, holder: Option<&str>, executor: &str, action: &'static str) -> Result<()> {
    if !state.is_leased() {
        return Err(Error::BadTransition { job, state: state.as_str(), action });
    }
    if holder != Some(executor) {
        return Err(Error::NotLeaseHolder { job, executor: executor.to_string() });
    }
    Ok(())
}

async fn current(tx: &mut Tx<'_>, job: i64) -> Result<(JobState, Option<String>)> {
    let row = sqlx::query("SELECT state, executor FROM jobs WHERE id = ?1")
        .bind(job)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(Error::UnknownJob(job))?;
    Ok((parse_state(row.try_get::<String, _>(0)?.as_str())?, row.try_get(1)?))
}

async fn set_state(tx: &mut Tx<'_>, job: i64, to: JobState, now_ms: i64, executor: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE jobs SET state = ?1 WHERE id = ?2").bind(to.as_str()).bind(job).execute(&mut **tx).await?;
    event(tx, job, to, now_ms, executor).await
}

async fn event(tx: &mut Tx<'_>, job: i64, state: JobState, now_ms: i64, executor: Option<&str>) -> Result<()> {
    sqlx::query("INSERT INTO job_events (job_id, state, at_ms, executor) VALUES (?1, ?2, ?3, ?4)")
        .bind(job)
        .bind(state.as_str())
        .bind(now_ms)
        .bind(executor)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Leased jobs whose lease ran out go back to the queue (their executor stopped heartbeating).
async fn requeue_expired_leases(tx: &mut Tx<'_>, now_ms: i64) -> Result<Vec<String>> {
    // Write first: a deferred transaction that reads before it writes can hit SQLITE_BUSY
    // when another connection writes at the same time (the lock upgrade is refused).
    let ids: Vec<i64> = sqlx::query_scalar(
        "UPDATE jobs SET state = 'queued', executor = NULL, lease_until_ms = NULL \
         WHERE state IN ('assigned', 'proving') AND lease_until_ms < ?1 AND deadline_ms > ?1 RETURNING id",
    )
    .bind(now_ms)
    .fetch_all(&mut **tx)
    .await?;
    let mut lost = Vec::with_capacity(ids.len());
    for id in ids {
        // Who held it: the executor of its latest assignment.
        let holder: Option<String> =
            sqlx::query_scalar("SELECT executor FROM job_events WHERE job_id = ?1 AND state = 'assigned' ORDER BY rowid DESC LIMIT 1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
                .flatten();
        lost.extend(holder);
        event(tx, id, JobState::Queued, now_ms, None).await?;
    }
    Ok(lost)
}
