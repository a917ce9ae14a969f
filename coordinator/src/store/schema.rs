//! The two databases the store runs on: their schemas (the same tables; types differ) and how
//! a write transaction takes the store's lock.

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use crate::error::{Error, Result};

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file: no setup; coordinators on one host can share it.
    Sqlite,
    /// Postgres: coordinators on several hosts can share it.
    Postgres,
}

/// Columns and their SQL types, per backend: `{int}` 64-bit integers, `{bytes}` blobs,
/// `{bool}` booleans, `{serial}` an auto-increment key.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    input_len {int} NOT NULL,
    created_ms {int} NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id {serial},
    model_id TEXT NOT NULL REFERENCES models(id),
    customer TEXT NOT NULL,
    input {bytes} NOT NULL,
    state TEXT NOT NULL,
    executor TEXT,
    lease_until_ms {int},
    attempts {int} NOT NULL DEFAULT 0,
    deadline_ms {int} NOT NULL,
    proof {bytes},
    created_ms {int} NOT NULL,
    -- 0x-hex Poseidon commitment to the input: the proof's first public value.
    input_commitment TEXT,
    -- The escrow's job id that pays for this job, when the market runs on chain.
    escrow_job {int} UNIQUE,
    -- True when the input is sealed: `input` is empty and the ciphertexts are in sealed_inputs.
    sealed {bool} NOT NULL DEFAULT FALSE,
    failure TEXT,
    -- The escrow job's minimum bond, in gwei (rounded up): only executors with that much
    -- active stake are leased it. NULL off chain.
    min_bond_gwei {int},
    -- When the current lease began: heartbeats extend it up to a cap from here.
    leased_ms {int}
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, id);
CREATE TABLE IF NOT EXISTS sealed_inputs (
    job_id {int} NOT NULL REFERENCES jobs(id),
    executor TEXT NOT NULL,
    ciphertext {bytes} NOT NULL,
    PRIMARY KEY (job_id, executor)
);
CREATE TABLE IF NOT EXISTS executors (
    address TEXT PRIMARY KEY,
    hpke_public_key {bytes} NOT NULL,
    hpke_key_signature {bytes} NOT NULL,
    price_wei TEXT NOT NULL,
    gpu {bool} NOT NULL,
    registered_ms {int} NOT NULL
);
CREATE TABLE IF NOT EXISTS executor_models (
    executor TEXT NOT NULL,
    model_id TEXT NOT NULL,
    PRIMARY KEY (executor, model_id)
);
CREATE TABLE IF NOT EXISTS payments (
    escrow_job {int} PRIMARY KEY,
    executor TEXT NOT NULL,
    price_wei TEXT NOT NULL,
    tx TEXT NOT NULL,
    block {int} NOT NULL,
    seen_ms {int} NOT NULL
);
CREATE TABLE IF NOT EXISTS refunds (
    escrow_job {int} PRIMARY KEY,
    block {int} NOT NULL,
    seen_ms {int} NOT NULL
);
-- The hash of the last block of each read, to notice a reorg (the newest few are kept).
CREATE TABLE IF NOT EXISTS chain_checkpoints (
    number {int} PRIMARY KEY,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_cursor (
    id {int} PRIMARY KEY CHECK (id = 1),
    next_block {int} NOT NULL
);
CREATE TABLE IF NOT EXISTS executor_nonces (
    executor TEXT PRIMARY KEY,
    last_nonce {int} NOT NULL
);
-- Optimistic jobs (a job not listed here is verified by a ZK proof).
CREATE TABLE IF NOT EXISTS optimistic_jobs (
    job_id {int} PRIMARY KEY REFERENCES jobs(id),
    -- The escrow terms' audit probability (basis points) and challenge window (seconds).
    audit_bps {int} NOT NULL,
    challenge_window_s {int} NOT NULL
);
-- An optimistic job's posted result: seen on chain (ResultPosted) or claimed by its executor,
-- who adds the quantized outputs and its signature.
CREATE TABLE IF NOT EXISTS results (
    job_id {int} PRIMARY KEY REFERENCES jobs(id),
    executor TEXT NOT NULL,
    outputs_hash TEXT NOT NULL,
    post_tx TEXT NOT NULL,
    block {int} NOT NULL,
    -- The last second (chain time) it can be challenged, once known.
    challenge_ends_s {int},
    -- JSON: quantized and dequantized outputs; NULL until claimed.
    quantized_outputs TEXT,
    outputs TEXT,
    signature {bytes}
);
-- Whether an optimistic job's result is re-executed, by whom, and what the validator found
-- (agreed: 1 or 0, NULL until it reports).
CREATE TABLE IF NOT EXISTS audits (
    job_id {int} PRIMARY KEY REFERENCES jobs(id),
    seed TEXT NOT NULL,
    sampled {int} NOT NULL,
    validator TEXT,
    agreed {int},
    challenge_tx TEXT,
    decided_ms {int} NOT NULL
);
-- Challenges seen on chain, and how they ended (outcome: proved or slashed).
CREATE TABLE IF NOT EXISTS disputes (
    escrow_job {int} PRIMARY KEY,
    challenger TEXT NOT NULL,
    prove_by_s {int} NOT NULL,
    block {int} NOT NULL,
    outcome TEXT,
    outcome_block {int}
);
CREATE TABLE IF NOT EXISTS job_events (
    seq {serial},
    job_id {int} NOT NULL REFERENCES jobs(id),
    state TEXT NOT NULL,
    at_ms {int} NOT NULL,
    executor TEXT
);
"#;

impl Backend {
    fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::BadRequest(format!("database URL `{url}`: use sqlite:FILE or postgres://USER@HOST/DB")))
        }
    }

    fn schema(self) -> String {
        let (int, bytes, boolean, serial) = match self {
            Backend::Sqlite => ("INTEGER", "BLOB", "BOOLEAN", "INTEGER PRIMARY KEY AUTOINCREMENT"),
            Backend::Postgres => ("BIGINT", "BYTEA", "BOOLEAN", "BIGSERIAL PRIMARY KEY"),
        };
        SCHEMA.replace("{int}", int).replace("{bytes}", bytes).replace("{bool}", boolean).replace("{serial}", serial)
    }
}

/// SQLite creates a missing file only when asked (`mode=rwc`).
fn sqlite_url(url: &str) -> String {
    if url.contains(":memory:") || url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Connects and creates the tables if missing.
pub(super) async fn connect(url: &str) -> Result<(Backend, AnyPool)> {
    sqlx::any::install_default_drivers();
    let backend = Backend::from_url(url)?;
    let pool = match backend {
        // One connection: SQLite has one writer anyway, and `BEGIN IMMEDIATE` then never
        // waits on this process's own connections.
        Backend::Sqlite => {
            AnyPoolOptions::new()
                .max_connections(1)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;").await?;
                        Ok(())
                    })
                })
                .connect(&sqlite_url(url))
                .await?
        }
        Backend::Postgres => AnyPoolOptions::new().max_connections(8).connect(url).await?,
    };
    // Two coordinators starting at once must not race on creating the tables.
    let mut tx = begin_exclusive_schema(&pool, backend).await?;
    sqlx::raw_sql(&backend.schema()).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok((backend, pool))
}

async fn begin_exclusive_schema(pool: &AnyPool, backend: Backend) -> Result<sqlx::Transaction<'_, sqlx::Any>> {
    match backend {
        Backend::Sqlite => Ok(pool.begin_with("BEGIN IMMEDIATE").await?),
        Backend::Postgres => {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT CAST(1 AS BIGINT) FROM (SELECT pg_advisory_xact_lock(7142010)) AS locked").fetch_all(&mut *tx).await?;
            Ok(tx)
        }
    }
}

/// A transaction holding the store's write lock from its start.
pub(super) async fn begin_exclusive(pool: &AnyPool, backend: Backend) -> Result<sqlx::Transaction<'_, sqlx::Any>> {
    match backend {
        Backend::Sqlite => Ok(pool.begin_with("BEGIN IMMEDIATE").await?),
        Backend::Postgres => {
            let mut tx = pool.begin().await?;
            // Readers go on; writers queue here, as SQLite's single writer does.
            sqlx::query("LOCK TABLE jobs IN EXCLUSIVE MODE").execute(&mut *tx).await?;
            Ok(tx)
        }
    }
}
