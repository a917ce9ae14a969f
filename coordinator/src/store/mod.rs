//! Persistence: models, jobs and their lifecycle events, in SQLite (a file, no setup: the
//! default) or Postgres (for several coordinators on several hosts), chosen by the URL.
//!
//! Every state change is checked against [`JobState::can_move_to`] inside one transaction
//! and recorded in `job_events`, so a job's history (with timings) survives restarts. Every
//! write transaction takes the store's write lock up front (SQLite: `BEGIN IMMEDIATE` on a
//! single-connection pool; Postgres: an exclusive lock on `jobs`), so each read-check-write
//! sequence is atomic even when several coordinators share the database: that is what makes
//! claiming a job exclusive. The SQL is shared by both (with `$N` parameters); only the
//! schema's types and the lock differ ([`schema`]).

mod schema;

use serde::Serialize;
use sqlx::{AnyPool, Row};

pub use schema::Backend;

use crate::error::{Error, Result};
use crate::state::JobState;

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
    /// The escrow job that pays for it, if any.
    pub escrow_job: Option<i64>,
    /// The commitment to its input (0x-hex).
    pub input_commitment: Option<String>,
    /// The on-chain payment, once seen.
    pub payment: Option<PaymentView>,
    /// Why it failed, if it did.
    pub failure: Option<String>,
}

/// A payment seen on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaymentView {
    /// Who was paid.
    pub executor: String,
    /// Wei paid (decimal).
    pub price_wei: String,
    /// The paying transaction.
    pub tx: String,
    /// Its block.
    pub block: i64,
}

/// A job to queue.
#[derive(Clone, Debug)]
pub struct NewJob<'a> {
    /// The model.
    pub model_id: &'a str,
    /// The customer's name.
    pub customer: &'a str,
    /// The input, plain or sealed.
    pub input: JobInput<'a>,
    /// The commitment to the input (0x-hex), when known.
    pub input_commitment: Option<&'a str>,
    /// The escrow job paying for it.
    pub escrow_job: Option<u64>,
    /// Deadline (ms since the epoch).
    pub deadline_ms: i64,
}

/// A job's input as submitted.
#[derive(Clone, Debug)]
pub enum JobInput<'a> {
    /// The input values as JSON, and how many there are (checked against the model).
    Plain {
        /// JSON list of numbers.
        json: &'a [u8],
        /// How many values.
        values: usize,
    },
    /// One HPKE ciphertext per executor allowed to prove the job: `(address, ciphertext)`.
    Sealed(&'a [(String, Vec<u8>)]),
}

/// An executor's registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ExecutorInfo {
    /// Its address (lowercase 0x-hex).
    #[serde(default)]
    pub address: String,
    /// Its HPKE public key (hex), to seal inputs to.
    pub hpke_public_key: String,
    /// Its price per job in wei (decimal).
    pub price_wei: String,
    /// Whether it proves on a GPU.
    pub gpu: bool,
    /// The models it has loaded.
    pub models: Vec<String>,
}

/// A leased job, as an executor receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The job id.
    pub job: i64,
    /// The model.
    pub model_id: String,
    /// The input: JSON numbers, or when `sealed`, the HPKE ciphertext for this executor.
    pub input: Vec<u8>,
    /// Whether `input` is sealed.
    pub sealed: bool,
    /// The commitment the proof must bind (0x-hex).
    pub input_commitment: Option<String>,
    /// The escrow job to submit the proof to.
    pub escrow_job: Option<i64>,
    /// Lease expiry (ms since the epoch): heartbeat before it.
    pub until_ms: i64,
}

/// The coordinator's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

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
    pub async fn register_model(&self, id: &str, input_len: usize, now_ms: i64) -> Result<()> {
        sqlx::query("INSERT INTO models (id, input_len, created_ms) VALUES ($1, $2, $3) ON CONFLICT(id) DO UPDATE SET input_len = $2")
            .bind(id)
            .bind(input_len as i64)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Registered models and how many input values each takes.
    pub async fn models(&self) -> Result<Vec<(String, usize)>> {
        sqlx::query("SELECT id, input_len FROM models ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<i64, _>(1)? as usize)))
            .collect()
    }

    /// The number of input values a model takes.
    pub async fn model_input_len(&self, id: &str) -> Result<usize> {
        let row = sqlx::query("SELECT input_len FROM models WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        let len: i64 = row.ok_or_else(|| Error::UnknownModel(id.to_string()))?.try_get(0)?;
        Ok(len as usize)
    }

    /// Queues a plain-input job; `values` is the number of input values (checked against the model).
    pub async fn submit(&self, model_id: &str, customer: &str, input: &[u8], values: usize, deadline_ms: i64, now_ms: i64) -> Result<i64> {
        let job = NewJob {
            model_id,
            customer,
            input: JobInput::Plain { json: input, values },
            input_commitment: None,
            escrow_job: None,
            deadline_ms,
        };
        self.submit_job(&job, now_ms).await
    }

    /// Queues a job. A sealed job is stored as its ciphertexts only.
    pub async fn submit_job(&self, job: &NewJob<'_>, now_ms: i64) -> Result<i64> {
        let expected = self.model_input_len(job.model_id).await?;
        let (plain, sealed): (&[u8], &[(String, Vec<u8>)]) = match &job.input {
            JobInput::Plain { values, .. } if *values != expected => return Err(Error::InputLength { got: *values, expected }),
            JobInput::Plain { json, .. } => (json, &[]),
            JobInput::Sealed([]) => return Err(Error::BadRequest("a sealed job needs a ciphertext for at least one executor".into())),
            JobInput::Sealed(s) => (&[], s),
        };
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO jobs (model_id, customer, input, state, deadline_ms, created_ms, input_commitment, escrow_job, sealed) \
             VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(job.model_id)
        .bind(job.customer)
        .bind(plain)
        .bind(job.deadline_ms)
        .bind(now_ms)
        .bind(job.input_commitment)
        .bind(job.escrow_job.map(|j| j as i64))
        .bind(!sealed.is_empty())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Error::BadRequest("this escrow job is already submitted".into()),
            e => e.into(),
        })?
        .try_get(0)?;
        for (executor, ciphertext) in sealed {
            sqlx::query("INSERT INTO sealed_inputs (job_id, executor, ciphertext) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(executor.to_lowercase())
                .bind(ciphertext)
                .execute(&mut *tx)
                .await?;
        }
        event(&mut tx, id, JobState::Queued, now_ms, None).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Leases the oldest queued job that `executor` can prove to it until `now + lease_ms`,
    /// after re-queueing jobs whose lease ran out. `None` when there is none. A registered
    /// executor gets only jobs for its models; a sealed job goes only to an executor it was
    /// sealed to. Exclusive: a job is leased to one executor at a time.
    pub async fn claim(&self, executor: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Lease>> {
        let mut tx = self.begin().await?;
        // Callers that learn from lapsed leases call `requeue_lapsed` first; this catches the rest.
        requeue_expired_leases(&mut tx, now_ms).await?;
        let row = sqlx::query(
            "UPDATE jobs SET state = 'assigned', executor = $1, lease_until_ms = $2, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND deadline_ms > $3 \
               AND (NOT sealed OR EXISTS (SELECT 1 FROM sealed_inputs s WHERE s.job_id = jobs.id AND s.executor = $1)) \
               AND (NOT EXISTS (SELECT 1 FROM executor_models WHERE executor = $1) \
                    OR model_id IN (SELECT model_id FROM executor_models WHERE executor = $1)) \
               ORDER BY id LIMIT 1) \
             RETURNING id, model_id, input, CAST(CASE WHEN sealed THEN 1 ELSE 0 END AS BIGINT), input_commitment, escrow_job",
        )
        .bind(executor)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let lease = match row {
            Some(r) => {
                let job: i64 = r.try_get(0)?;
                let sealed = r.try_get::<i64, _>(3)? != 0;
                let input: Vec<u8> = if sealed {
                    sqlx::query_scalar("SELECT ciphertext FROM sealed_inputs WHERE job_id = $1 AND executor = $2")
                        .bind(job)
                        .bind(executor)
                        .fetch_one(&mut *tx)
                        .await?
                } else {
                    r.try_get(2)?
                };
                event(&mut tx, job, JobState::Assigned, now_ms, Some(executor)).await?;
                Some(Lease {
                    job,
                    model_id: r.try_get(1)?,
                    input,
                    sealed,
                    input_commitment: r.try_get(4)?,
                    escrow_job: r.try_get(5)?,
                    until_ms: now_ms + lease_ms,
                })
            }
            None => None,
        };
        tx.commit().await?;
        Ok(lease)
    }

    /// Registers (or updates) an executor: its HPKE key, price, hardware and models.
    pub async fn register_executor(&self, info: &ExecutorInfo, now_ms: i64) -> Result<()> {
        let key = hex::decode(info.hpke_public_key.trim_start_matches("0x"))
            .map_err(|_| Error::BadRequest("hpke_public_key is not hex".into()))?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO executors (address, hpke_public_key, price_wei, gpu, registered_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT(address) DO UPDATE SET hpke_public_key = $2, price_wei = $3, gpu = $4, registered_ms = $5",
        )
        .bind(&info.address)
        .bind(key)
        .bind(&info.price_wei)
        .bind(info.gpu)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM executor_models WHERE executor = $1").bind(&info.address).execute(&mut *tx).await?;
        for m in &info.models {
            sqlx::query("INSERT INTO executor_models (executor, model_id) VALUES ($1, $2)")
                .bind(&info.address)
                .bind(m)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Registered executors, with their models.
    pub async fn executors(&self) -> Result<Vec<ExecutorInfo>> {
        let rows = sqlx::query(
            "SELECT address, hpke_public_key, price_wei, CAST(CASE WHEN gpu THEN 1 ELSE 0 END AS BIGINT) FROM executors ORDER BY address",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let address: String = r.try_get(0)?;
            let models = sqlx::query_scalar("SELECT model_id FROM executor_models WHERE executor = $1 ORDER BY model_id")
                .bind(&address)
                .fetch_all(&self.pool)
                .await?;
            let key: Vec<u8> = r.try_get(1)?;
            out.push(ExecutorInfo {
                address,
                hpke_public_key: hex::encode(key),
                price_wei: r.try_get(2)?,
                gpu: r.try_get::<i64, _>(3)? != 0,
                models,
            });
        }
        Ok(out)
    }

    /// Re-queues jobs whose lease ran out; returns the executors that lost them (one entry per job).
    pub async fn requeue_lapsed(&self, now_ms: i64) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let lost = requeue_expired_leases(&mut tx, now_ms).await?;
        tx.commit().await?;
        Ok(lost)
    }

    /// Accepts `nonce` for `executor` only if it is above every nonce it used before.
    pub async fn accept_nonce(&self, executor: &str, nonce: u64) -> Result<()> {
        let n = i64::try_from(nonce).map_err(|_| Error::BadSignature("nonce too large".into()))?;
        let done = sqlx::query(
            "INSERT INTO executor_nonces (executor, last_nonce) VALUES ($1, $2) \
             ON CONFLICT(executor) DO UPDATE SET last_nonce = $2 WHERE executor_nonces.last_nonce < $2",
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
        Ok(sqlx::query_scalar("SELECT MAX(at_ms) FROM job_events WHERE job_id = $1 AND state = 'assigned'")
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
        let mut tx = self.begin().await?;
        let (state, holder) = current(&mut tx, job).await?;
        check_holder(job, state, holder.as_deref(), executor, "heartbeat")?;
        sqlx::query("UPDATE jobs SET lease_until_ms = $1 WHERE id = $2").bind(now_ms + lease_ms).bind(job).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The lease holder delivers a proof the caller has verified (proving → proved, then
    /// settled at once if the escrow's payment was already seen).
    pub async fn complete(&self, job: i64, executor: &str, proof: &[u8], now_ms: i64) -> Result<()> {
        self.move_held(job, executor, JobState::Proved, "deliver a proof", now_ms, None, Some(proof)).await?;
        let mut tx = self.begin().await?;
        settle_if_paid(&mut tx, job, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The lease holder gives up on a job it cannot prove (proving → failed), with the reason.
    pub async fn fail(&self, job: i64, executor: &str, reason: &str, now_ms: i64) -> Result<()> {
        self.move_held(job, executor, JobState::Failed, "report a failure", now_ms, None, None).await?;
        sqlx::query("UPDATE jobs SET failure = $1 WHERE id = $2").bind(reason).bind(job).execute(&self.pool).await?;
        Ok(())
    }

    /// The escrow's payment for the job was seen on chain (proved → settled).
    pub async fn settle(&self, job: i64, now_ms: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        let (state, _) = current(&mut tx, job).await?;
        if !state.can_move_to(JobState::Settled) {
            return Err(Error::BadTransition { job, state: state.as_str(), action: "settle" });
        }
        set_state(&mut tx, job, JobState::Settled, now_ms, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The next block the escrow watcher reads (0 at first).
    pub async fn chain_cursor(&self) -> Result<u64> {
        let n: Option<i64> = sqlx::query_scalar("SELECT next_block FROM chain_cursor WHERE id = 1").fetch_optional(&self.pool).await?;
        Ok(n.unwrap_or(0) as u64)
    }

    /// Records payments and refunds seen on chain up to block `next_block - 1`, in one
    /// transaction with the cursor; settles the proved jobs paid for and marks refunded jobs.
    /// Returns how many payments were new.
    pub async fn record_chain_events(
        &self,
        payments: &[crate::chain::Payment],
        refunds: &[u64],
        next_block: u64,
        now_ms: i64,
    ) -> Result<usize> {
        let mut tx = self.begin().await?;
        for &escrow_job in refunds {
            let job: Option<(i64, String)> =
                sqlx::query_as("SELECT id, state FROM jobs WHERE escrow_job = $1").bind(escrow_job as i64).fetch_optional(&mut *tx).await?;
            if let Some((job, state)) = job {
                if parse_state(&state)?.can_move_to(JobState::Refunded) {
                    set_state(&mut tx, job, JobState::Refunded, now_ms, None).await?;
                }
            }
        }
        let mut new = 0;
        for p in payments {
            let done = sqlx::query(
                "INSERT INTO payments (escrow_job, executor, price_wei, tx, block, seen_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT(escrow_job) DO NOTHING",
            )
            .bind(p.escrow_job as i64)
            .bind(&p.executor)
            .bind(p.price.to_string())
            .bind(format!("{:#x}", p.tx))
            .bind(p.block as i64)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            new += done.rows_affected() as usize;
            let job: Option<i64> =
                sqlx::query_scalar("SELECT id FROM jobs WHERE escrow_job = $1").bind(p.escrow_job as i64).fetch_optional(&mut *tx).await?;
            if let Some(job) = job {
                settle_if_paid(&mut tx, job, now_ms).await?;
            }
        }
        sqlx::query("INSERT INTO chain_cursor (id, next_block) VALUES (1, $1) ON CONFLICT(id) DO UPDATE SET next_block = $1")
            .bind(next_block as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Marks queued or leased jobs past their deadline as expired; returns how many.
    pub async fn expire(&self, now_ms: i64) -> Result<usize> {
        let mut tx = self.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE jobs SET state = 'expired', lease_until_ms = NULL WHERE state IN ('queued', 'assigned', 'proving') AND deadline_ms <= $1 RETURNING id",
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
        let row = sqlx::query("SELECT model_id, state, executor, attempts, escrow_job, input_commitment, failure FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::UnknownJob(id))?;
        let events = sqlx::query("SELECT state, at_ms FROM job_events WHERE job_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((parse_state(r.try_get::<String, _>(0)?.as_str())?, r.try_get(1)?)))
            .collect::<Result<Vec<_>>>()?;
        let escrow_job: Option<i64> = row.try_get(4)?;
        let payment = match escrow_job {
            Some(e) => sqlx::query("SELECT executor, price_wei, tx, block FROM payments WHERE escrow_job = $1")
                .bind(e)
                .fetch_optional(&self.pool)
                .await?
                .map(|p| -> Result<PaymentView> {
                    Ok(PaymentView { executor: p.try_get(0)?, price_wei: p.try_get(1)?, tx: p.try_get(2)?, block: p.try_get(3)? })
                })
                .transpose()?,
            None => None,
        };
        Ok(JobView {
            id,
            model_id: row.try_get(0)?,
            state: parse_state(row.try_get::<String, _>(1)?.as_str())?,
            executor: row.try_get(2)?,
            attempts: row.try_get(3)?,
            events,
            escrow_job,
            input_commitment: row.try_get(5)?,
            payment,
            failure: row.try_get(6)?,
        })
    }

    /// Fails unless `executor` holds job `job`'s lease (the job is assigned or proving).
    pub async fn ensure_holder(&self, job: i64, executor: &str, action: &'static str) -> Result<()> {
        let mut tx = self.begin().await?;
        let (state, holder) = current(&mut tx, job).await?;
        tx.commit().await?;
        check_holder(job, state, holder.as_deref(), executor, action)
    }

    /// The job's model and the commitment its proof must bind.
    pub async fn job_commitment(&self, id: i64) -> Result<(String, Option<String>)> {
        let row = sqlx::query("SELECT model_id, input_commitment FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::UnknownJob(id))?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// The job's proof, once proved.
    pub async fn proof(&self, id: i64) -> Result<Option<Vec<u8>>> {
        let row =
            sqlx::query("SELECT proof FROM jobs WHERE id = $1").bind(id).fetch_optional(&self.pool).await?.ok_or(Error::UnknownJob(id))?;
        Ok(row.try_get(0)?)
    }

    /// Proofs delivered and the seconds spent proving them (from each delivery back to the
    /// start of that attempt), for the prove-time summary metric.
    pub async fn prove_seconds(&self) -> Result<(i64, f64)> {
        let row = sqlx::query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(p.at_ms - (SELECT MAX(s.at_ms) FROM job_events s \
               WHERE s.job_id = p.job_id AND s.state = 'proving' AND s.seq < p.seq)), 0) AS BIGINT) \
             FROM job_events p WHERE p.state = 'proved'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get::<i64, _>(1)? as f64 / 1e3))
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
        let mut tx = self.begin().await?;
        let (state, holder) = current(&mut tx, job).await?;
        check_holder(job, state, holder.as_deref(), executor, action)?;
        if !state.can_move_to(to) {
            return Err(Error::BadTransition { job, state: state.as_str(), action });
        }
        sqlx::query("UPDATE jobs SET lease_until_ms = $1, proof = COALESCE($2, proof) WHERE id = $3")
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

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

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
    let row = sqlx::query("SELECT state, executor FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(Error::UnknownJob(job))?;
    Ok((parse_state(row.try_get::<String, _>(0)?.as_str())?, row.try_get(1)?))
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

/// Proved → settled when the job's escrow payment is recorded.
async fn settle_if_paid(tx: &mut Tx<'_>, job: i64, now_ms: i64) -> Result<()> {
    let paid: Option<String> = sqlx::query_scalar(
        "SELECT p.executor FROM jobs j JOIN payments p ON p.escrow_job = j.escrow_job WHERE j.id = $1 AND j.state = 'proved'",
    )
    .bind(job)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(executor) = paid {
        set_state(tx, job, JobState::Settled, now_ms, Some(&executor)).await?;
    }
    Ok(())
}

/// Leased jobs whose lease ran out go back to the queue (their executor stopped heartbeating).
async fn requeue_expired_leases(tx: &mut Tx<'_>, now_ms: i64) -> Result<Vec<String>> {
    // Write first: a deferred transaction that reads before it writes can hit SQLITE_BUSY
    // when another connection writes at the same time (the lock upgrade is refused).
    let ids: Vec<i64> = sqlx::query_scalar(
        "UPDATE jobs SET state = 'queued', executor = NULL, lease_until_ms = NULL \
         WHERE state IN ('assigned', 'proving') AND lease_until_ms < $1 AND deadline_ms > $1 RETURNING id",
    )
    .bind(now_ms)
    .fetch_all(&mut **tx)
    .await?;
    let mut lost = Vec::with_capacity(ids.len());
    for id in ids {
        // Who held it: the executor of its latest assignment.
        let holder: Option<String> =
            sqlx::query_scalar("SELECT executor FROM job_events WHERE job_id = $1 AND state = 'assigned' ORDER BY seq DESC LIMIT 1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
                .flatten();
        lost.extend(holder);
        event(tx, id, JobState::Queued, now_ms, None).await?;
    }
    Ok(lost)
}
