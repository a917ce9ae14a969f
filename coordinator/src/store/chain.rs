//! What the chain said: payments and refunds seen, and the block cursor of the watcher.

use alloy::primitives::B256;
use sqlx::Row;
use zkinfer_protocol::JobState;
use zkinfer_verifier_contract::escrow::{DisputeOutcome, EscrowEvent, Logged};

use super::{db_executor, parse_state, set_state, settle_if_paid, Store};
use crate::error::{Error, Result};

/// Block checkpoints kept for reorg detection.
const CHECKPOINTS: i64 = 64;

impl Store {
    /// The next block the escrow watcher reads (0 before the first read).
    pub async fn chain_cursor(&self) -> Result<u64> {
        let n: Option<i64> = sqlx::query_scalar("SELECT next_block FROM chain_cursor WHERE id = 1").fetch_optional(&self.pool).await?;
        Ok(n.map_or(0, |n| n.max(0) as u64))
    }

    /// The recorded block checkpoints `(number, hash)`, newest first.
    pub async fn chain_checkpoints(&self) -> Result<Vec<(u64, B256)>> {
        sqlx::query("SELECT number, hash FROM chain_checkpoints ORDER BY number DESC")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let hash: String = r.try_get(1)?;
                let hash = hash.parse().map_err(|_| Error::Internal(format!("stored block hash `{hash}`")))?;
                Ok((r.try_get::<i64, _>(0)?.max(0) as u64, hash))
            })
            .collect()
    }

    /// Forgets what the chain said from block `from_block` on (a reorg removed it): payments
    /// and refunds seen there are deleted and their jobs return to where they were
    /// (settled → proved, refunded → its state before), and the cursor goes back to `from_block`.
    pub async fn rewind_chain(&self, from_block: u64, now_ms: i64) -> Result<()> {
        let from = from_block as i64;
        let mut tx = self.begin().await?;
        let paid: Vec<i64> =
            sqlx::query_scalar("DELETE FROM payments WHERE block >= $1 RETURNING escrow_job").bind(from).fetch_all(&mut *tx).await?;
        for escrow_job in paid {
            revert(&mut tx, escrow_job, JobState::Settled, now_ms).await?;
        }
        let refunded: Vec<i64> =
            sqlx::query_scalar("DELETE FROM refunds WHERE block >= $1 RETURNING escrow_job").bind(from).fetch_all(&mut *tx).await?;
        for escrow_job in refunded {
            revert(&mut tx, escrow_job, JobState::Refunded, now_ms).await?;
            revert(&mut tx, escrow_job, JobState::Slashed, now_ms).await?;
        }
        super::optimistic::rewind(&mut tx, from, now_ms).await?;
        sqlx::query("DELETE FROM chain_checkpoints WHERE number >= $1").bind(from).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO chain_cursor (id, next_block) VALUES (1, $1) ON CONFLICT(id) DO UPDATE SET next_block = $1")
            .bind(from)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records payments and refunds seen on chain up to block `next_block - 1`, in one
    /// transaction with the cursor and the checkpoint `(number, hash)` of the read's last
    /// block; settles the proved jobs paid for and marks refunded jobs. Returns how many
    /// payments were new.
    pub async fn record_chain_events(&self, events: &[Logged], next_block: u64, checkpoint: (u64, B256), now_ms: i64) -> Result<usize> {
        let mut tx = self.begin().await?;
        let mut new = 0;
        for e in events {
            match &e.event {
                EscrowEvent::Refunded { job: escrow_job, .. } => {
                    sqlx::query("INSERT INTO refunds (escrow_job, block, seen_ms) VALUES ($1, $2, $3) ON CONFLICT(escrow_job) DO NOTHING")
                        .bind(escrow_job.0 as i64)
                        .bind(e.block as i64)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                    let job: Option<(i64, String)> = sqlx::query_as("SELECT id, state FROM jobs WHERE escrow_job = $1")
                        .bind(escrow_job.0 as i64)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some((job, state)) = job {
                        // A challenged job is refunded when its executor failed to prove: slashed.
                        let state = parse_state(&state)?;
                        let to = if state == JobState::Challenged { JobState::Slashed } else { JobState::Refunded };
                        if state.can_move_to(to) {
                            set_state(&mut tx, job, to, now_ms, None).await?;
                        }
                    }
                }
                EscrowEvent::Paid { job: escrow_job, executor, price } => {
                    let done = sqlx::query(
                        "INSERT INTO payments (escrow_job, executor, price_wei, tx, block, seen_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT(escrow_job) DO NOTHING",
                    )
                    .bind(escrow_job.0 as i64)
                    .bind(db_executor(executor))
                    .bind(price.to_string())
                    .bind(format!("{:#x}", e.tx))
                    .bind(e.block as i64)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                    new += done.rows_affected() as usize;
                    let job: Option<i64> = sqlx::query_scalar("SELECT id FROM jobs WHERE escrow_job = $1")
                        .bind(escrow_job.0 as i64)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(job) = job {
                        settle_if_paid(&mut tx, job, now_ms).await?;
                    }
                }
                EscrowEvent::Posted { job, executor, outputs_hash, .. } => {
                    super::optimistic::record_posted(&mut tx, *job, executor, *outputs_hash, e.tx, e.block, now_ms).await?;
                }
                EscrowEvent::Challenged { job, challenger, prove_by } => {
                    super::optimistic::record_challenge(&mut tx, *job, *challenger, *prove_by, e.block, now_ms).await?;
                }
                EscrowEvent::Resolved { job, outcome, .. } => {
                    let outcome = match outcome {
                        DisputeOutcome::Proved => "proved",
                        DisputeOutcome::Slashed => "slashed",
                    };
                    super::optimistic::record_resolved(&mut tx, *job, outcome, e.block).await?;
                }
            }
        }
        sqlx::query("INSERT INTO chain_cursor (id, next_block) VALUES (1, $1) ON CONFLICT(id) DO UPDATE SET next_block = $1")
            .bind(next_block as i64)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO chain_checkpoints (number, hash) VALUES ($1, $2) ON CONFLICT(number) DO UPDATE SET hash = $2")
            .bind(checkpoint.0 as i64)
            .bind(format!("{:#x}", checkpoint.1))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM chain_checkpoints WHERE number < (SELECT MIN(number) FROM (SELECT number FROM chain_checkpoints ORDER BY number DESC LIMIT $1) AS newest)")
            .bind(CHECKPOINTS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(new)
    }
}

/// Moves the job of `escrow_job` back from `from` (settled, refunded, slashed or challenged)
/// to the state it had before, when the event that moved it was removed by a reorg.
pub(super) async fn revert(tx: &mut super::Tx<'_>, escrow_job: i64, from: JobState, now_ms: i64) -> Result<()> {
    let job: Option<(i64, String)> =
        sqlx::query_as("SELECT id, state FROM jobs WHERE escrow_job = $1").bind(escrow_job).fetch_optional(&mut **tx).await?;
    let Some((job, state)) = job else { return Ok(()) };
    if parse_state(&state)? != from {
        return Ok(());
    }
    let prev = state_before(tx, job, escrow_job, from).await?;
    if !from.can_revert_to(prev) {
        return Err(Error::Internal(format!("job {job}: a reorg cannot take it from {from} back to {prev}")));
    }
    tracing::warn!(job, escrow_job, %from, to = %prev, "a reorg removed the event: the job goes back");
    set_state(tx, job, prev, now_ms, None).await
}

/// The state a job was in before the event that moved it to `from`. A dispute's steps are
/// known (slashed and challenged come from challenged and posted; an optimistic job's payment
/// from its dispute if it has one, else from posted); otherwise it is the latest recorded
/// state other than `from` (proved or expired: those flows have no loops).
async fn state_before(tx: &mut super::Tx<'_>, job: i64, escrow_job: i64, from: JobState) -> Result<JobState> {
    let optimistic: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM optimistic_jobs WHERE job_id = $1").bind(job).fetch_one(&mut **tx).await?;
    match from {
        JobState::Slashed => return Ok(JobState::Challenged),
        JobState::Challenged => return Ok(JobState::Posted),
        JobState::Settled if optimistic > 0 => {
            let disputed: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM disputes WHERE escrow_job = $1").bind(escrow_job).fetch_one(&mut **tx).await?;
            return Ok(if disputed > 0 { JobState::Challenged } else { JobState::Posted });
        }
        _ => {}
    }
    let prev: Option<String> =
        sqlx::query_scalar("SELECT state FROM job_events WHERE job_id = $1 AND state <> $2 ORDER BY seq DESC LIMIT 1")
            .bind(job)
            .bind(from.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    parse_state(&prev.ok_or_else(|| Error::Internal(format!("job {job} has no state before {from}")))?)
}
