//! Optimistic jobs: posted results (claimed by their executor or seen on chain), audit
//! decisions and validators' findings, and disputes seen on chain.

use alloy::primitives::{Address, B256, U256};
use sqlx::Row;
use zkinfer_protocol::types::{AuditTask, AuditView, DisputeView, ResultView};
use zkinfer_protocol::{Commitment, EscrowJobId, ExecutorId, Hash32, HexBytes, JobId, JobState, ModelId};

use super::jobs::{check_holder, current, stored_commitment, OptimisticJob};
use super::{db_executor, db_id, executor_id, job_id, model_id, parse_state, set_state, Store, Tx};
use crate::error::{Error, Result};

/// A result its executor claims, checked against the chain by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedResult {
    /// The quantized outputs.
    pub quantized: Vec<Vec<i64>>,
    /// The same, dequantized.
    pub outputs: Vec<Vec<f64>>,
    /// Keccak-256 of the output instances, as the escrow holds it.
    pub outputs_hash: B256,
    /// The `postResult` transaction.
    pub post_tx: B256,
    /// Its block.
    pub block: u64,
    /// The last second (chain time) it can be challenged.
    pub challenge_ends_s: u64,
    /// The executor's signature of the claim.
    pub signature: Vec<u8>,
}

/// A posted result whose audit is not decided yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCandidate {
    /// The job.
    pub job: JobId,
    /// Its escrow job.
    pub escrow_job: EscrowJobId,
    /// Its model.
    pub model_id: ModelId,
    /// Who posted the result.
    pub executor: ExecutorId,
    /// The executors its input is sealed to (empty for a plain job: any executor can read it).
    pub sealed_to: Vec<ExecutorId>,
    /// The probability (basis points) that it is audited.
    pub audit_bps: u16,
}

fn hash_col(h: &B256) -> String {
    format!("{h:#x}")
}

fn stored_hash(s: &str) -> Result<Hash32> {
    s.parse().map_err(|_| Error::Internal(format!("stored hash `{s}` does not parse")))
}

fn json_col<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(format!("encoding outputs: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(s: Option<String>) -> Result<Option<T>> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| Error::Internal(format!("stored outputs: {e}")))).transpose()
}

impl Store {
    /// An optimistic job's terms, or `None` for a ZK job.
    pub async fn optimistic_terms(&self, job: JobId) -> Result<Option<OptimisticJob>> {
        let row = sqlx::query("SELECT audit_bps, challenge_window_s FROM optimistic_jobs WHERE job_id = $1")
            .bind(db_id(job)?)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(OptimisticJob {
                audit_bps: r.try_get::<i64, _>(0)?.clamp(0, 10_000) as u16,
                challenge_window_s: r.try_get::<i64, _>(1)?.clamp(0, u32::MAX as i64) as u32,
            })
        })
        .transpose()
    }

    /// Records an executor's claim of an optimistic job's result, which the caller checked
    /// against the chain (the escrow holds this outputs hash, posted by this executor). The
    /// job moves to posted unless the chain watcher moved it there (or on) first; a lease
    /// holder's claim ends its lease, and so does one by the poster after its lease lapsed.
    pub async fn claim_result(&self, job: JobId, executor: &ExecutorId, r: &ClaimedResult, now_ms: i64) -> Result<()> {
        let id = db_id(job)?;
        let mut tx = self.begin().await?;
        let (state, holder) = current(&mut tx, job).await?;
        if state.is_leased() {
            check_holder(job, state, holder.as_deref(), executor, "claim a result")?;
        }
        let known: Option<String> =
            sqlx::query_scalar("SELECT outputs_hash FROM results WHERE job_id = $1").bind(id).fetch_optional(&mut *tx).await?;
        if known.as_deref().is_some_and(|h| h != hash_col(&r.outputs_hash)) {
            return Err(Error::BadRequest(format!(
                "job {job}'s posted outputs hash is {}, not {:#x}",
                known.unwrap_or_default(),
                r.outputs_hash
            )));
        }
        sqlx::query(
            "INSERT INTO results (job_id, executor, outputs_hash, post_tx, block, challenge_ends_s, quantized_outputs, outputs, signature) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT(job_id) DO UPDATE SET \
             challenge_ends_s = $6, quantized_outputs = $7, outputs = $8, signature = $9",
        )
        .bind(id)
        .bind(db_executor(executor))
        .bind(hash_col(&r.outputs_hash))
        .bind(hash_col(&r.post_tx))
        .bind(r.block as i64)
        .bind(r.challenge_ends_s as i64)
        .bind(json_col(&r.quantized)?)
        .bind(json_col(&r.outputs)?)
        .bind(&r.signature)
        .execute(&mut *tx)
        .await?;
        if state.can_move_to(JobState::Posted) {
            sqlx::query("UPDATE jobs SET executor = $1, lease_until_ms = NULL WHERE id = $2")
                .bind(db_executor(executor))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            set_state(&mut tx, id, JobState::Posted, now_ms, Some(&db_executor(executor))).await?;
        } else if !matches!(state, JobState::Posted | JobState::Challenged | JobState::Settled | JobState::Slashed) {
            return Err(Error::BadTransition { job, state, action: "claim a result" });
        }
        tx.commit().await?;
        Ok(())
    }

    /// The job's posted result, with its audit and dispute, if it has one.
    pub(super) async fn result_view(&self, job: JobId) -> Result<Option<ResultView>> {
        let id = db_id(job)?;
        let Some(r) = sqlx::query(
            "SELECT r.executor, r.quantized_outputs, r.outputs, r.outputs_hash, r.signature, r.post_tx, r.challenge_ends_s, j.escrow_job \
             FROM results r JOIN jobs j ON j.id = r.job_id WHERE r.job_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let audit = sqlx::query("SELECT seed, sampled, validator, agreed FROM audits WHERE job_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|a| -> Result<AuditView> {
                Ok(AuditView {
                    seed: stored_hash(&a.try_get::<String, _>(0)?)?,
                    sampled: a.try_get::<i64, _>(1)? != 0,
                    validator: a.try_get::<Option<String>, _>(2)?.as_deref().map(executor_id).transpose()?,
                    agreed: a.try_get::<Option<i64>, _>(3)?.map(|v| v != 0),
                })
            })
            .transpose()?;
        let escrow_job: Option<i64> = r.try_get(7)?;
        let dispute = match escrow_job {
            Some(e) => sqlx::query("SELECT challenger, prove_by_s, outcome FROM disputes WHERE escrow_job = $1")
                .bind(e)
                .fetch_optional(&self.pool)
                .await?
                .map(|d| -> Result<DisputeView> {
                    Ok(DisputeView {
                        challenger: executor_id(&d.try_get::<String, _>(0)?)?,
                        prove_by_s: d.try_get::<i64, _>(1)?.max(0) as u64,
                        outcome: d.try_get(2)?,
                    })
                })
                .transpose()?,
            None => None,
        };
        Ok(Some(ResultView {
            executor: executor_id(&r.try_get::<String, _>(0)?)?,
            quantized_outputs: from_json(r.try_get(1)?)?.unwrap_or_default(),
            outputs: from_json(r.try_get(2)?)?.unwrap_or_default(),
            outputs_hash: stored_hash(&r.try_get::<String, _>(3)?)?,
            signature: HexBytes(r.try_get::<Option<Vec<u8>>, _>(4)?.unwrap_or_default()),
            post_tx: stored_hash(&r.try_get::<String, _>(5)?)?,
            challenge_ends_s: r.try_get::<Option<i64>, _>(6)?.map_or(0, |v| v.max(0) as u64),
            audit,
            dispute,
        }))
    }

    /// Posted results whose audit is not decided yet, oldest first.
    pub async fn audit_candidates(&self) -> Result<Vec<AuditCandidate>> {
        let rows = sqlx::query(
            "SELECT j.id, j.escrow_job, j.model_id, r.executor, o.audit_bps FROM jobs j \
             JOIN results r ON r.job_id = j.id JOIN optimistic_jobs o ON o.job_id = j.id \
             WHERE j.state = 'posted' AND j.escrow_job IS NOT NULL AND NOT EXISTS (SELECT 1 FROM audits a WHERE a.job_id = j.id) \
             ORDER BY j.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get(0)?;
            let sealed: Vec<String> = sqlx::query_scalar("SELECT executor FROM sealed_inputs WHERE job_id = $1 ORDER BY executor")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
            out.push(AuditCandidate {
                job: job_id(id),
                escrow_job: EscrowJobId(r.try_get::<i64, _>(1)?.max(0) as u64),
                model_id: model_id(&r.try_get::<String, _>(2)?)?,
                executor: executor_id(&r.try_get::<String, _>(3)?)?,
                sealed_to: sealed.iter().map(|e| executor_id(e)).collect::<Result<_>>()?,
                audit_bps: r.try_get::<i64, _>(4)?.clamp(0, 10_000) as u16,
            });
        }
        Ok(out)
    }

    /// Records the audit decision for a posted result: the seed, whether it sampled the job,
    /// and the validator asked to re-execute it. A decision is taken once.
    pub async fn decide_audit(&self, job: JobId, seed: U256, sampled: bool, validator: Option<ExecutorId>, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO audits (job_id, seed, sampled, validator, decided_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT(job_id) DO NOTHING",
        )
        .bind(db_id(job)?)
        .bind(hash_col(&B256::from(seed)))
        .bind(i64::from(sampled))
        .bind(validator.as_ref().map(db_executor))
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The sampled jobs `validator` is asked to re-execute and has not reported on (their
    /// result still posted, unchallenged).
    pub async fn audit_tasks(&self, validator: &ExecutorId) -> Result<Vec<AuditTask>> {
        let who = db_executor(validator);
        let rows = sqlx::query(
            "SELECT j.id, j.model_id, j.input, CAST(CASE WHEN j.sealed THEN 1 ELSE 0 END AS BIGINT), j.input_commitment, j.escrow_job, \
             r.executor, r.quantized_outputs FROM audits a JOIN jobs j ON j.id = a.job_id JOIN results r ON r.job_id = j.id \
             WHERE a.validator = $1 AND a.agreed IS NULL AND j.state = 'posted' ORDER BY j.id",
        )
        .bind(&who)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get(0)?;
            let sealed = r.try_get::<i64, _>(3)? != 0;
            let input: Vec<u8> = if sealed {
                sqlx::query_scalar("SELECT ciphertext FROM sealed_inputs WHERE job_id = $1 AND executor = $2")
                    .bind(id)
                    .bind(&who)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| Error::Internal(format!("job {id}: its validator {who} has no ciphertext")))?
            } else {
                r.try_get(2)?
            };
            let commitment: Option<Commitment> = stored_commitment(r.try_get(4)?)?;
            out.push(AuditTask {
                job: job_id(id),
                model_id: model_id(&r.try_get::<String, _>(1)?)?,
                input: HexBytes(input),
                sealed,
                input_commitment: commitment.ok_or_else(|| Error::Internal(format!("job {id} has no input commitment")))?,
                escrow_job: EscrowJobId(r.try_get::<Option<i64>, _>(5)?.unwrap_or_default().max(0) as u64),
                executor: executor_id(&r.try_get::<String, _>(6)?)?,
                quantized_outputs: from_json(r.try_get(7)?)?.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Records what the job's validator found; only the validator asked may report, once.
    pub async fn report_audit(&self, job: JobId, validator: &ExecutorId, agrees: bool, challenge_tx: Option<B256>) -> Result<()> {
        let done = sqlx::query("UPDATE audits SET agreed = $1, challenge_tx = $2 WHERE job_id = $3 AND validator = $4 AND agreed IS NULL")
            .bind(i64::from(agrees))
            .bind(challenge_tx.as_ref().map(hash_col))
            .bind(db_id(job)?)
            .bind(db_executor(validator))
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Forbidden(format!("{validator} is not asked to audit job {job}, or already reported")));
        }
        Ok(())
    }
}

/// `ResultPosted` seen on chain: records the result (unclaimed) and moves the job to posted
/// if it was not already (its executor posted and then went silent, say).
pub(super) async fn record_posted(
    tx: &mut Tx<'_>,
    escrow_job: EscrowJobId,
    executor: &ExecutorId,
    outputs_hash: B256,
    post_tx: B256,
    block: u64,
    now_ms: i64,
) -> Result<()> {
    let Some((id, state)) = job_of(tx, escrow_job).await? else { return Ok(()) };
    sqlx::query(
        "INSERT INTO results (job_id, executor, outputs_hash, post_tx, block) VALUES ($1, $2, $3, $4, $5) ON CONFLICT(job_id) DO NOTHING",
    )
    .bind(id)
    .bind(db_executor(executor))
    .bind(hash_col(&outputs_hash))
    .bind(hash_col(&post_tx))
    .bind(block as i64)
    .execute(&mut **tx)
    .await?;
    if state.can_move_to(JobState::Posted) {
        sqlx::query("UPDATE jobs SET executor = $1, lease_until_ms = NULL WHERE id = $2")
            .bind(db_executor(executor))
            .bind(id)
            .execute(&mut **tx)
            .await?;
        set_state(tx, id, JobState::Posted, now_ms, Some(&db_executor(executor))).await?;
    }
    Ok(())
}

/// `Challenged` seen on chain: records the dispute; posted → challenged.
pub(super) async fn record_challenge(
    tx: &mut Tx<'_>,
    escrow_job: EscrowJobId,
    challenger: Address,
    prove_by: u64,
    block: u64,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO disputes (escrow_job, challenger, prove_by_s, block) VALUES ($1, $2, $3, $4) ON CONFLICT(escrow_job) DO NOTHING",
    )
    .bind(escrow_job.0 as i64)
    .bind(db_executor(&ExecutorId(challenger)))
    .bind(prove_by as i64)
    .bind(block as i64)
    .execute(&mut **tx)
    .await?;
    if let Some((id, state)) = job_of(tx, escrow_job).await? {
        if state.can_move_to(JobState::Challenged) {
            set_state(tx, id, JobState::Challenged, now_ms, None).await?;
        }
    }
    Ok(())
}

/// `DisputeResolved` seen on chain: records how the dispute ended (the payment or refund
/// that comes with it moves the job).
pub(super) async fn record_resolved(tx: &mut Tx<'_>, escrow_job: EscrowJobId, outcome: &str, block: u64) -> Result<()> {
    sqlx::query("UPDATE disputes SET outcome = $1, outcome_block = $2 WHERE escrow_job = $3")
        .bind(outcome)
        .bind(block as i64)
        .bind(escrow_job.0 as i64)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Forgets disputes and their outcomes seen from block `from` on (a reorg removed them):
/// challenged jobs go back to posted.
pub(super) async fn rewind(tx: &mut Tx<'_>, from: i64, now_ms: i64) -> Result<()> {
    sqlx::query("UPDATE disputes SET outcome = NULL, outcome_block = NULL WHERE outcome_block >= $1").bind(from).execute(&mut **tx).await?;
    let gone: Vec<i64> =
        sqlx::query_scalar("DELETE FROM disputes WHERE block >= $1 RETURNING escrow_job").bind(from).fetch_all(&mut **tx).await?;
    for e in gone {
        super::chain::revert(tx, e, JobState::Challenged, now_ms).await?;
    }
    Ok(())
}

/// The coordinator's job for an escrow job, with its state.
pub(super) async fn job_of(tx: &mut Tx<'_>, escrow_job: EscrowJobId) -> Result<Option<(i64, JobState)>> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT id, state FROM jobs WHERE escrow_job = $1").bind(escrow_job.0 as i64).fetch_optional(&mut **tx).await?;
    row.map(|(id, s)| Ok((id, parse_state(&s)?))).transpose()
}
