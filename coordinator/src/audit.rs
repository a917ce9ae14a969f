//! Sampled re-execution: once the block after an optimistic result's posting exists, its
//! hash (the escrow's `auditSeed`) decides whether the result is audited, at the probability
//! the escrow job agreed to, and which validator re-executes it: the staked executor that can
//! read the input (it was sealed to it) with the lowest `keccak256(seed ‖ address)`, other
//! than the executor that posted. Neither the executor nor this coordinator can predict or
//! choose the seed when the result is posted (design.md §7).

use std::time::Duration;

use alloy::primitives::U256;
use tokio_util::sync::CancellationToken;
use zkinfer_protocol::optimistic::{is_sampled, validator_rank};
use zkinfer_protocol::ExecutorId;
use zkinfer_verifier_contract::escrow::EscrowClient;

use crate::clock::now_ms;
use crate::error::Result;
use crate::store::{AuditCandidate, Store};

/// Decides audits every `every` until `shutdown`; validators need `min_stake` of active stake.
pub async fn sample(store: Store, escrow: EscrowClient, min_stake: U256, every: Duration, shutdown: CancellationToken) {
    loop {
        if let Err(e) = sample_once(&store, &escrow, min_stake).await {
            tracing::warn!(error = %e, "audit sampling: reading the chain failed; retrying");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One round of [`sample`]: decides every posted result whose seed exists; returns how many.
pub async fn sample_once(store: &Store, escrow: &EscrowClient, min_stake: U256) -> Result<usize> {
    let mut decided = 0;
    for c in store.audit_candidates().await? {
        let seed = escrow.audit_seed(c.escrow_job).await?;
        if seed.is_zero() {
            continue; // the next block is not there yet
        }
        let sampled = is_sampled(seed, c.audit_bps);
        let validator = if sampled { pick_validator(store, escrow, &c, seed, min_stake).await? } else { None };
        store.decide_audit(c.job, seed, sampled, validator, now_ms()).await?;
        match (sampled, validator) {
            (true, Some(v)) => tracing::info!(job = %c.job, validator = %v, "optimistic result sampled for re-execution"),
            (true, None) => tracing::warn!(job = %c.job, "optimistic result sampled, but no staked validator can read its input"),
            (false, _) => tracing::info!(job = %c.job, "optimistic result not sampled"),
        }
        decided += 1;
    }
    Ok(decided)
}

/// The validator for a sampled result: among the executors that can read its input (those
/// it is sealed to; for a plain input, every registered executor serving the model), other
/// than its executor, with `min_stake` of active stake, the lowest by [`validator_rank`].
async fn pick_validator(
    store: &Store,
    escrow: &EscrowClient,
    c: &AuditCandidate,
    seed: U256,
    min_stake: U256,
) -> Result<Option<ExecutorId>> {
    let mut candidates: Vec<ExecutorId> = if c.sealed_to.is_empty() {
        store.executors().await?.into_iter().filter(|e| e.models.contains(&c.model_id)).map(|e| e.address).collect()
    } else {
        c.sealed_to.clone()
    };
    candidates.retain(|v| *v != c.executor);
    candidates.sort_by_key(|v| validator_rank(seed, v.address()));
    for v in candidates {
        if escrow.stake_of(v.address()).await?.active() >= min_stake.max(U256::from(1u64)) {
            return Ok(Some(v));
        }
    }
    Ok(None)
}
