//! The escrow as the coordinator sees it: a submitted job must be paid in ([`check_pays_for`]),
//! and the watcher ([`watch`]) reads `JobPaid` and `JobRefunded` events to mark jobs settled
//! (only when the payment event is seen on chain) or refunded.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zkinfer_protocol::{Commitment, EscrowJobId, ExecutorId};
use zkinfer_verifier_contract::escrow::{EscrowClient, EscrowJob, JobState};

use crate::error::{Error, EscrowMismatch, Result};
use crate::store::Store;

/// How the watcher reads the chain.
#[derive(Clone, Copy, Debug)]
pub struct WatchConfig {
    /// Time between reads.
    pub every: Duration,
    /// The first block to read when nothing was read before (the escrow's deployment block).
    pub from_block: u64,
    /// The most blocks one `eth_getLogs` request covers (providers cap the range).
    pub max_range: u64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig { every: Duration::from_millis(500), from_block: 0, max_range: 2_000 }
    }
}

/// Checks that escrow job `id` pays for a job: open, for the model with `model_hash`, holding
/// `commitment`, and (when restricted) payable to every executor in `sealed_to`.
pub async fn check_pays_for(
    escrow: &EscrowClient,
    id: EscrowJobId,
    model_hash: &[u8; 32],
    commitment: Commitment,
    sealed_to: &[ExecutorId],
) -> Result<EscrowJob> {
    let job = escrow.job(id).await?;
    let mismatch = |reason| Err(Error::Escrow { job: id, reason });
    if job.state != JobState::Open {
        return mismatch(EscrowMismatch::NotOpen(job.state));
    }
    if &job.model.model_hash != model_hash {
        return mismatch(EscrowMismatch::OtherModel);
    }
    if job.input_commitment != commitment.to_u256() {
        return mismatch(EscrowMismatch::OtherInput { on_chain: job.input_commitment, job: commitment });
    }
    if job.restricted {
        for &executor in sealed_to {
            if !escrow.allows(id, executor.address()).await? {
                return mismatch(EscrowMismatch::NotAllowListed(executor));
            }
        }
    }
    Ok(job)
}

/// Watches the escrow until `shutdown`: every `cfg.every`, reads new events and records them
/// (which settles proved jobs). The block cursor is stored with what was learnt, so a
/// restarted coordinator misses nothing and records nothing twice.
pub async fn watch(store: Store, escrow: EscrowClient, cfg: WatchConfig, shutdown: CancellationToken) {
    loop {
        if let Err(e) = poll_once(&store, &escrow, &cfg).await {
            tracing::warn!(error = %e, "escrow watch: reading the chain failed; retrying");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(cfg.every) => {}
        }
    }
}

/// One round of [`watch`]: reads from the cursor to the latest block in ranges of at most
/// `cfg.max_range` blocks; returns how many payments were new.
pub async fn poll_once(store: &Store, escrow: &EscrowClient, cfg: &WatchConfig) -> Result<usize> {
    let latest = escrow.block_number().await?;
    let mut from = store.chain_cursor().await?.max(cfg.from_block);
    let mut new = 0;
    while from <= latest {
        let to = latest.min(from + cfg.max_range.max(1) - 1);
        let events = escrow.events(from, to).await?;
        new += store.record_chain_events(&events, to + 1, crate::clock::now_ms()).await?;
        from = to + 1;
    }
    Ok(new)
}
