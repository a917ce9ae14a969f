//! Jobs: submission, claims and leases, the lifecycle, and what clients read back.

use sqlx::Row;
use zkinfer_protocol::types::{JobEvent, JobView, Lease, PaymentView};
use zkinfer_protocol::{Commitment, EscrowJobId, ExecutorId, HexBytes, JobId, JobState, ModelId, Verification};

use super::{db_executor, db_id, event, executor_id, job_id, model_id, parse_state, set_state, settle_if_paid, Store, Tx};
use crate::error::{Error, Result};

/// A job to queue.
#[derive(Clone, Debug)]
pub struct NewJob<'a> {
    /// The model.
    pub model_id: &'a ModelId,
    /// The customer's name.
    pub customer: &'a str,
    /// The input, plain or sealed.
    pub input: JobInput<'a>,
    /// The commitment to the input, when known.
    pub input_commitment: Option<Commitment>,
    /// The escrow job paying for it.
    pub escrow_job: Option<EscrowJobId>,
    /// Deadline (ms since the epoch).
    pub deadline_ms: i64,
    /// The escrow job's minimum bond in gwei (rounded up), for a paid job.
    pub min_bond_gwei: Option<i64>,
    /// An optimistic job's escrow terms (`None`: verified by a ZK proof).
    pub optimistic: Option<OptimisticJob>,
}

/// What the store keeps of an optimistic job's escrow terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptimisticJob {
    /// The probability (basis points) that its result is re-executed.
    pub audit_bps: u16,
    /// Its challenge window (seconds).
    pub challenge_window_s: u32,
}

/// A job's input as submitted.
#[derive(Clone, Debug)]
pub enum JobInput<'a> {
    /// The input payload as JSON, and how many values it holds (checked against the model).
    Plain {
        /// The JSON of an `InputPayload`.
        json: &'a [u8],
        /// How many values.
        values: usize,
    },
    /// One HPKE ciphertext per executor allowed to prove the job.
    Sealed(&'a [(ExecutorId, Vec<u8>)]),
}

impl Store {
    /// Queues a plain-input job; `values` is the number of input values (checked against the model).
    pub async fn submit(
        &self,
        model_id: &ModelId,
        customer: &str,
        input: &[u8],
        values: usize,
        deadline_ms: i64,
        now_ms: i64,
    ) -> Result<JobId> {
        let job = NewJob {
            model_id,
            customer,
            input: JobInput::Plain { json: input, values },
            input_commitment: None,
            escrow_job: None,
            deadline_ms,
            min_bond_gwei: None,
            optimistic: None,
        };
        self.submit_job(&job, now_ms).await
    }

    /// Queues a job. A sealed job is stored as its ciphertexts only.
    pub async fn submit_job(&self, job: &NewJob<'_>, now_ms: i64) -> Result<JobId> {
        let expected = self.model_input_len(job.model_id).await?;
        let (plain, sealed): (&[u8], &[(ExecutorId, Vec<u8>)]) = match &job.input {
            JobInput::Plain { values, .. } if *values != expected => return Err(Error::InputLength { got: *values, expected }),
            JobInput::Plain { json, .. } => (json, &[]),
            JobInput::Sealed([]) => return Err(Error::BadRequest("a sealed job needs a ciphertext for at least one executor".into())),
            JobInput::Sealed(s) => (&[], s),
        };
        let escrow_job =
            job.escrow_job.map(|j| i64::try_from(j.0)).transpose().map_err(|_| Error::BadRequest("escrow job id too large".into()))?;
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO jobs (model_id, customer, input, state, deadline_ms, created_ms, input_commitment, escrow_job, sealed, min_bond_gwei) \
             VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(job.model_id.as_str())
        .bind(job.customer)
        .bind(plain)
        .bind(job.deadline_ms)
        .bind(now_ms)
        .bind(job.input_commitment.map(|c| c.to_string()))
        .bind(escrow_job)
        .bind(!sealed.is_empty())
        .bind(job.min_bond_gwei)
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
                .bind(db_executor(executor))
                .bind(ciphertext)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(o) = job.optimistic {
            sqlx::query("INSERT INTO optimistic_jobs (job_id, audit_bps, challenge_window_s) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(i64::from(o.audit_bps))
                .bind(i64::from(o.challenge_window_s))
                .execute(&mut *tx)
                .await?;
        }
        event(&mut tx, id, JobState::Queued, now_ms, None).await?;
        tx.commit().await?;
        Ok(job_id(id))
    }

    /// Leases the oldest queued job that `executor` can prove to it until `now + lease_ms`,
    /// after re-queueing jobs whose lease ran out. `None` when there is none. A registered
    /// executor gets only jobs for its models; a sealed job goes only to an executor it was
    /// sealed to, and a paid job only to an executor with at least its minimum bond of active
    /// stake (`stake_gwei`; `None`: not checked). Exclusive: a job is leased to one executor at a time.
    pub async fn claim(&self, executor: &ExecutorId, now_ms: i64, lease_ms: i64) -> Result<Option<Lease>> {
        self.claim_staked(executor, None, now_ms, lease_ms).await
    }

    /// [`Self::claim`] for an executor with `stake_gwei` of active stake.
    pub async fn claim_staked(&self, executor: &ExecutorId, stake_gwei: Option<i64>, now_ms: i64, lease_ms: i64) -> Result<Option<Lease>> {
        let who = db_executor(executor);
        let mut tx = self.begin().await?;
        // Callers that learn from lapsed leases call `requeue_lapsed` first; this catches the rest.
        requeue_expired_leases(&mut tx, now_ms).await?;
        let row = sqlx::query(
            "UPDATE jobs SET state = 'assigned', executor = $1, lease_until_ms = $2, attempts = attempts + 1, leased_ms = $3 \
             WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND deadline_ms > $3 \
               AND (min_bond_gwei IS NULL OR min_bond_gwei <= $4) \
               AND (NOT sealed OR EXISTS (SELECT 1 FROM sealed_inputs s WHERE s.job_id = jobs.id AND s.executor = $1)) \
               AND (NOT EXISTS (SELECT 1 FROM executor_models WHERE executor = $1) \
                    OR model_id IN (SELECT model_id FROM executor_models WHERE executor = $1)) \
               ORDER BY id LIMIT 1) \
             RETURNING id, model_id, input, CAST(CASE WHEN sealed THEN 1 ELSE 0 END AS BIGINT), input_commitment, escrow_job",
        )
        .bind(&who)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .bind(stake_gwei.unwrap_or(i64::MAX))
        .fetch_optional(&mut *tx)
        .await?;
        let lease = match row {
            Some(r) => {
                let job: i64 = r.try_get(0)?;
                let sealed = r.try_get::<i64, _>(3)? != 0;
                let input: Vec<u8> = if sealed {
                    sqlx::query_scalar("SELECT ciphertext FROM sealed_inputs WHERE job_id = $1 AND executor = $2")
                        .bind(job)
                        .bind(&who)
                        .fetch_one(&mut *tx)
                        .await?
                } else {
                    r.try_get(2)?
                };
                event(&mut tx, job, JobState::Assigned, now_ms, Some(&who)).await?;
                let optimistic: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM optimistic_jobs WHERE job_id = $1").bind(job).fetch_one(&mut *tx).await?;
                Some(Lease {
                    job: job_id(job),
                    model_id: model_id(&r.try_get::<String, _>(1)?)?,
                    input: HexBytes(input),
                    sealed,
                    input_commitment: stored_commitment(r.try_get(4)?)?,
                    escrow_job: r.try_get::<Option<i64>, _>(5)?.map(|j| EscrowJobId(j.max(0) as u64)),
                    until_ms: now_ms + lease_ms,
                    verification: if optimistic > 0 { Verification::Optimistic } else { Verification::Zk },
                })
            }
            None => None,
        };
        tx.commit().await?;
        Ok(lease)
    }

    /// Re-queues jobs whose lease ran out; returns the executors that lost them (one entry per job).
    pub async fn requeue_lapsed(&self, now_ms: i64) -> Result<Vec<ExecutorId>> {
        let mut tx = self.begin().await?;
        let lost = requeue_expired_leases(&mut tx, now_ms).await?;
        tx.commit().await?;
        Ok(lost)
    }

    /// Jobs waiting for an executor.
    pub async fn queued(&self) -> Result<usize> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetch_one(&self.pool).await?;
        Ok(n as usize)
    }

    /// When the job last started proving (ms since the epoch).
    pub async fn proving_since(&self, job: JobId) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT MAX(at_ms) FROM job_events WHERE job_id = $1 AND state = 'proving'")
            .bind(db_id(job)?)
            .fetch_one(&self.pool)
            .await?)
    }

    /// The lease holder starts proving (assigned → proving); extends the lease.
    pub async fn start_proving(&self, job: JobId, executor: &ExecutorId, now_ms: i64, lease_ms: i64) -> Result<()> {
        self.move_held(job, executor, JobState::Proving, "start proving", now_ms, Some(now_ms + lease_ms), None).await
    }

    /// The lease holder is still working: extends the lease (assigned or proving only), but
    /// never past `max_lease_ms` from when the lease began, so that heartbeats alone cannot
    /// hold a job.
    pub async fn heartbeat(&self, job: JobId, executor: &ExecutorId, now_ms: i64, lease_ms: i64, max_lease_ms: i64) -> Result<()> {
        let id = db_id(job)?;
        let mut tx = self.begin().await?;
        let (state, holder) = current(&mut tx, job).await?;
        check_holder(job, state, holder.as_deref(), executor, "heartbeat")?;
        sqlx::query(
            "UPDATE jobs SET lease_until_ms = CASE WHEN $1 < COALESCE(leased_ms, $1) + $3 THEN $1 ELSE COALESCE(leased_ms, $1) + $3 END WHERE id = $2",
        )
            .bind(now_ms + lease_ms)
            .bind(id)
            .bind(max_lease_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The lease holder delivers a proof the caller has verified (proving → proved, then
    /// settled at once if the escrow's payment was already seen).
    pub async fn complete(&self, job: JobId, executor: &ExecutorId, proof: &[u8], now_ms: i64) -> Result<()> {
        self.move_held(job, executor, JobState::Proved, "deliver a proof", now_ms, None, Some(proof)).await?;
        let mut tx = self.begin().await?;
        settle_if_paid(&mut tx, db_id(job)?, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The lease holder gives up on a job it cannot prove (proving → failed), with the reason.
    pub async fn fail(&self, job: JobId, executor: &ExecutorId, reason: &str, now_ms: i64) -> Result<()> {
        self.move_held(job, executor, JobState::Failed, "report a failure", now_ms, None, None).await?;
        sqlx::query("UPDATE jobs SET failure = $1 WHERE id = $2").bind(reason).bind(db_id(job)?).execute(&self.pool).await?;
        Ok(())
    }

    /// The escrow's payment for the job was seen on chain (proved → settled).
    pub async fn settle(&self, job: JobId, now_ms: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        let (state, _) = current(&mut tx, job).await?;
        if !state.can_move_to(JobState::Settled) {
            return Err(Error::BadTransition { job, state, action: "settle" });
        }
        set_state(&mut tx, db_id(job)?, JobState::Settled, now_ms, None).await?;
        tx.commit().await?;
        Ok(())
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
    pub async fn job(&self, job: JobId) -> Result<JobView> {
        let id = db_id(job)?;
        let row = sqlx::query("SELECT model_id, state, executor, attempts, escrow_job, input_commitment, failure FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::UnknownJob(job))?;
        let events = sqlx::query("SELECT state, at_ms FROM job_events WHERE job_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(JobEvent { state: parse_state(r.try_get::<String, _>(0)?.as_str())?, at_ms: r.try_get(1)? }))
            .collect::<Result<Vec<_>>>()?;
        let escrow_job: Option<i64> = row.try_get(4)?;
        let payment = match escrow_job {
            Some(e) => sqlx::query("SELECT executor, price_wei, tx, block FROM payments WHERE escrow_job = $1")
                .bind(e)
                .fetch_optional(&self.pool)
                .await?
                .map(|p| -> Result<PaymentView> {
                    let bad = |what: &str| Error::Internal(format!("stored payment of escrow job {e}: {what}"));
                    Ok(PaymentView {
                        executor: executor_id(&p.try_get::<String, _>(0)?)?,
                        price_wei: p.try_get::<String, _>(1)?.parse().map_err(|_| bad("price"))?,
                        tx: p.try_get::<String, _>(2)?.parse().map_err(|_| bad("tx"))?,
                        block: p.try_get::<i64, _>(3)?.max(0) as u64,
                    })
                })
                .transpose()?,
            None => None,
        };
        let executor: Option<String> = row.try_get(2)?;
        let result = self.result_view(job).await?;
        let verification = if self.optimistic_terms(job).await?.is_some() { Verification::Optimistic } else { Verification::Zk };
        Ok(JobView {
            id: job,
            model_id: model_id(&row.try_get::<String, _>(0)?)?,
            state: parse_state(row.try_get::<String, _>(1)?.as_str())?,
            executor: executor.as_deref().map(executor_id).transpose()?,
            attempts: row.try_get::<i64, _>(3)?.clamp(0, u32::MAX as i64) as u32,
            events,
            escrow_job: escrow_job.map(|j| EscrowJobId(j.max(0) as u64)),
            input_commitment: stored_commitment(row.try_get(5)?)?,
            payment,
            failure: row.try_get(6)?,
            verification,
            result,
        })
    }

    /// The customer (name) a job belongs to.
    pub async fn customer_of(&self, job: JobId) -> Result<String> {
        sqlx::query_scalar("SELECT customer FROM jobs WHERE id = $1")
            .bind(db_id(job)?)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::UnknownJob(job))
    }

    /// Fails unless `executor` holds job `job`'s lease (the job is assigned or proving).
    pub async fn ensure_holder(&self, job: JobId, executor: &ExecutorId, action: &'static str) -> Result<()> {
        let mut tx = self.begin().await?;
        let (state, holder) = current(&mut tx, job).await?;
        tx.commit().await?;
        check_holder(job, state, holder.as_deref(), executor, action)
    }

    /// The job's model and the commitment its proof must bind.
    pub async fn job_commitment(&self, job: JobId) -> Result<(ModelId, Option<Commitment>)> {
        let row = sqlx::query("SELECT model_id, input_commitment FROM jobs WHERE id = $1")
            .bind(db_id(job)?)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::UnknownJob(job))?;
        Ok((model_id(&row.try_get::<String, _>(0)?)?, stored_commitment(row.try_get(1)?)?))
    }

    /// The job's proof, once proved.
    pub async fn proof(&self, job: JobId) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT proof FROM jobs WHERE id = $1")
            .bind(db_id(job)?)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::UnknownJob(job))?;
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

    #[allow(clippy::too_many_arguments)]
    async fn move_held(
        &self,
        job: JobId,
        executor: &ExecutorId,
        to: JobState,
        action: &'static str,
        now_ms: i64,
        lease_until_ms: Option<i64>,
        proof: Option<&[u8]>,
    ) -> Result<()> {
        let id = db_id(job)?;
        let mut tx = self.begin().await?;
        let (state, holder) = current(&mut tx, job).await?;
        check_holder(job, state, holder.as_deref(), executor, action)?;
        if !state.can_move_to(to) {
            return Err(Error::BadTransition { job, state, action });
        }
        sqlx::query("UPDATE jobs SET lease_until_ms = $1, proof = COALESCE($2, proof) WHERE id = $3")
            .bind(lease_until_ms)
            .bind(proof)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        set_state(&mut tx, id, to, now_ms, Some(&db_executor(executor))).await?;
        tx.commit().await?;
        Ok(())
    }
}

pub(super) fn stored_commitment(s: Option<String>) -> Result<Option<Commitment>> {
    s.map(|c| c.parse().map_err(|_| Error::Internal(format!("stored commitment `{c}` does not parse")))).transpose()
}

pub(super) fn check_holder(job: JobId, state: JobState, holder: Option<&str>, executor: &ExecutorId, action: &'static str) -> Result<()> {
    if !state.is_leased() {
        return Err(Error::BadTransition { job, state, action });
    }
    if holder != Some(db_executor(executor).as_str()) {
        return Err(Error::NotLeaseHolder { job, executor: *executor });
    }
    Ok(())
}

pub(super) async fn current(tx: &mut Tx<'_>, job: JobId) -> Result<(JobState, Option<String>)> {
    let row = sqlx::query("SELECT state, executor FROM jobs WHERE id = $1")
        .bind(db_id(job)?)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(Error::UnknownJob(job))?;
    Ok((parse_state(row.try_get::<String, _>(0)?.as_str())?, row.try_get(1)?))
}

/// Leased jobs whose lease ran out go back to the queue (their executor stopped heartbeating).
async fn requeue_expired_leases(tx: &mut Tx<'_>, now_ms: i64) -> Result<Vec<ExecutorId>> {
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
        if let Some(h) = holder {
            lost.push(executor_id(&h)?);
        }
        event(tx, id, JobState::Queued, now_ms, None).await?;
    }
    Ok(lost)
}
