//! What the chain said: payments and refunds seen, and the block cursor of the watcher.

use zkinfer_verifier_contract::escrow::{EscrowEvent, Logged};

use super::{db_executor, parse_state, set_state, settle_if_paid, Store};
use crate::error::Result;
use zkinfer_protocol::JobState;

impl Store {
    /// The next block the escrow watcher reads (0 before the first read).
    pub async fn chain_cursor(&self) -> Result<u64> {
        let n: Option<i64> = sqlx::query_scalar("SELECT next_block FROM chain_cursor WHERE id = 1").fetch_optional(&self.pool).await?;
        Ok(n.map_or(0, |n| n.max(0) as u64))
    }

    /// Records payments and refunds seen on chain up to block `next_block - 1`, in one
    /// transaction with the cursor; settles the proved jobs paid for and marks refunded jobs.
    /// Returns how many payments were new.
    pub async fn record_chain_events(&self, events: &[Logged], next_block: u64, now_ms: i64) -> Result<usize> {
        let mut tx = self.begin().await?;
        let mut new = 0;
        for e in events {
            match &e.event {
                EscrowEvent::Refunded { job: escrow_job, .. } => {
                    let job: Option<(i64, String)> = sqlx::query_as("SELECT id, state FROM jobs WHERE escrow_job = $1")
                        .bind(escrow_job.0 as i64)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some((job, state)) = job {
                        if parse_state(&state)?.can_move_to(JobState::Refunded) {
                            set_state(&mut tx, job, JobState::Refunded, now_ms, None).await?;
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
            }
        }
        sqlx::query("INSERT INTO chain_cursor (id, next_block) VALUES (1, $1) ON CONFLICT(id) DO UPDATE SET next_block = $1")
            .bind(next_block as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(new)
    }
}
