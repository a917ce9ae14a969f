//! The escrow as the coordinator sees it: a submitted job must be paid in, on terms this
//! coordinator serves ([`check_pays_for`]); executors must have stake ([`StakeCache`]); and the
//! watcher ([`watch`]) reads `JobPaid` and `JobRefunded` events, after a number of
//! confirmations and in bounded block ranges, to mark jobs settled (only when the payment
//! event is seen on chain) or refunded, undoing what a reorg removed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use tokio_util::sync::CancellationToken;
use zkinfer_protocol::optimistic::OptimisticPolicy;
use zkinfer_protocol::{Commitment, ExecutorId};
use zkinfer_verifier_contract::escrow::{EscrowClient, EscrowJob, JobState, OptimisticState};

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
    /// Blocks on top of a block before its events count (0: at once).
    pub confirmations: u64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig { every: Duration::from_millis(500), from_block: 0, max_range: 2_000, confirmations: 2 }
    }
}

/// What a submitted job needs of its escrow job.
#[derive(Clone, Debug)]
pub struct Wanted<'a> {
    /// The model's hash.
    pub model_hash: [u8; 32],
    /// Public instances of the model's proofs.
    pub num_instances: usize,
    /// The code hash the escrow must have recorded for the model's verifier (`None`: not pinned).
    pub code_hash: Option<B256>,
    /// The job's input commitment.
    pub commitment: Commitment,
    /// The executors the input is sealed to (each must be payable).
    pub sealed_to: &'a [ExecutorId],
    /// The earliest deadline accepted (unix seconds).
    pub deadline_at_least: u64,
    /// The least price accepted.
    pub price_at_least: U256,
    /// Who signed the submission (must be the escrow job's customer).
    pub signer: Address,
    /// For an optimistic job, what its escrow terms must meet (`None`: a ZK job, which must
    /// not be optimistic on chain).
    pub optimistic: Option<&'a OptimisticPolicy>,
}

/// Why `job` does not pay for a job that needs `w`, if it does not.
fn mismatch(job: &EscrowJob, w: &Wanted<'_>) -> Option<EscrowMismatch> {
    Some(if job.state != JobState::Open {
        EscrowMismatch::NotOpen(job.state)
    } else if job.model.model_hash != w.model_hash {
        EscrowMismatch::OtherModel
    } else if w.code_hash.is_some_and(|h| h != job.model.code_hash) {
        EscrowMismatch::OtherVerifier { expected: w.code_hash.unwrap_or_default(), got: job.model.code_hash }
    } else if job.model.num_instances as usize != w.num_instances {
        EscrowMismatch::InstanceCount { expected: w.num_instances, got: job.model.num_instances }
    } else if job.input_commitment != w.commitment.to_u256() {
        EscrowMismatch::OtherInput { on_chain: job.input_commitment, job: w.commitment }
    } else if job.customer != w.signer {
        EscrowMismatch::OtherCustomer { customer: job.customer, signer: w.signer }
    } else if job.claimable {
        EscrowMismatch::Claimable
    } else if job.deadline < w.deadline_at_least {
        EscrowMismatch::ShortDeadline { deadline: job.deadline, needed: w.deadline_at_least }
    } else if job.price < w.price_at_least {
        EscrowMismatch::LowPrice { price: job.price, needed: w.price_at_least }
    } else {
        return None;
    })
}

/// Why an escrow job with optimistic state `o` and paying `price` with bond `min_bond` does
/// not meet `policy`, if it does not.
pub fn optimistic_shortfall(o: &OptimisticState, price: U256, min_bond: U256, policy: &OptimisticPolicy) -> Option<String> {
    let t = &o.terms;
    let why = match policy.min_audit_bps(price, min_bond) {
        None => format!(
            "a bond of {min_bond} wei cannot deter cheating on a price of {price} wei: bond at least {} wei",
            zkinfer_protocol::optimistic::min_bond_for(price, policy.audit_safety_bps)
        ),
        Some(need) if t.audit_bps < need => format!("audit probability {} bps, at least {need} bps for this price and bond", t.audit_bps),
        _ if t.challenge_window < policy.min_challenge_window_s => {
            format!("challenge window {} s, at least {} s", t.challenge_window, policy.min_challenge_window_s)
        }
        _ if t.prove_window < policy.min_prove_window_s => {
            format!("prove window {} s, at least {} s", t.prove_window, policy.min_prove_window_s)
        }
        _ if t.challenge_bond < policy.min_challenge_bond_wei.0 => {
            format!("challenge bond {} wei, at least {} wei", t.challenge_bond, policy.min_challenge_bond_wei)
        }
        _ => return None,
    };
    Some(why)
}

/// Checks that escrow job `job` (as read from `escrow`) pays for a job that needs `w`; a
/// restricted job must allow every executor the input is sealed to. Returns the job's
/// optimistic state (all zero for a ZK job).
pub async fn check_pays_for(escrow: &EscrowClient, job: &EscrowJob, w: &Wanted<'_>) -> Result<OptimisticState> {
    if let Some(reason) = mismatch(job, w) {
        return Err(Error::Escrow { job: job.id, reason });
    }
    let o = escrow.optimistic(job.id).await?;
    let name = |optimistic: bool| if optimistic { "optimistic" } else { "zk" };
    if o.is_optimistic() != w.optimistic.is_some() {
        let reason = EscrowMismatch::OtherVerification { on_chain: name(o.is_optimistic()), asked: name(w.optimistic.is_some()) };
        return Err(Error::Escrow { job: job.id, reason });
    }
    if let Some(why) = w.optimistic.and_then(|p| optimistic_shortfall(&o, job.price, job.min_bond, p)) {
        return Err(Error::Escrow { job: job.id, reason: EscrowMismatch::OptimisticTerms(why) });
    }
    if job.restricted {
        for &executor in w.sealed_to {
            if !escrow.allows(job.id, executor.address()).await? {
                return Err(Error::Escrow { job: job.id, reason: EscrowMismatch::NotAllowListed(executor) });
            }
        }
    }
    Ok(o)
}

/// Executors' active stake, read from the escrow and kept for a while.
pub struct StakeCache {
    ttl: Duration,
    seen: Mutex<HashMap<ExecutorId, (U256, Instant)>>,
}

impl StakeCache {
    /// A cache whose readings last `ttl`.
    pub fn new(ttl: Duration) -> Self {
        StakeCache { ttl, seen: Mutex::new(HashMap::new()) }
    }

    /// `executor`'s active stake (wei), read again once the last reading is older than the ttl.
    pub async fn active(&self, escrow: &EscrowClient, executor: ExecutorId) -> Result<U256> {
        let fresh = self.seen.lock().ok().and_then(|m| m.get(&executor).copied()).filter(|(_, at)| at.elapsed() < self.ttl);
        if let Some((stake, _)) = fresh {
            return Ok(stake);
        }
        let stake = escrow.stake_of(executor.address()).await?.active();
        if let Ok(mut m) = self.seen.lock() {
            m.insert(executor, (stake, Instant::now()));
        }
        Ok(stake)
    }
}

/// Wei in whole gwei, rounded up (bonds) or down (stakes), capped to the store's integers.
pub fn gwei(wei: U256, round_up: bool) -> i64 {
    let g = U256::from(1_000_000_000u64);
    let q = if round_up { wei.div_ceil(g) } else { wei / g };
    i64::try_from(q).unwrap_or(i64::MAX)
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

/// The hash of block `n` on the chain now.
async fn block_hash(escrow: &EscrowClient, n: u64) -> Result<Option<B256>> {
    use alloy::providers::Provider;
    let block = escrow
        .provider()
        .get_block_by_number(n.into())
        .await
        .map_err(|e| zkinfer_verifier_contract::Error::Rpc { call: "eth_getBlockByNumber", message: e.to_string() })?;
    Ok(block.map(|b| b.header.hash))
}

/// Undoes what a reorg removed: finds the newest recorded block the chain still has and
/// rolls the store back to it (payments and refunds seen after it are forgotten; their jobs
/// return to where they were). Returns the block to read from.
async fn rewind_if_reorged(store: &Store, escrow: &EscrowClient, cfg: &WatchConfig) -> Result<u64> {
    let cursor = store.chain_cursor().await?.max(cfg.from_block);
    let mut reorged = false;
    for (number, hash) in store.chain_checkpoints().await? {
        if block_hash(escrow, number).await? == Some(hash) {
            if reorged {
                tracing::warn!(block = number, "chain reorganised: rolling back to the last block it still has");
                store.rewind_chain(number + 1, crate::clock::now_ms()).await?;
                return Ok(number + 1);
            }
            return Ok(cursor);
        }
        reorged = true;
    }
    if reorged {
        tracing::warn!(block = cfg.from_block, "chain reorganised below every recorded block: reading again from the start");
        store.rewind_chain(cfg.from_block, crate::clock::now_ms()).await?;
        return Ok(cfg.from_block);
    }
    Ok(cursor)
}

/// One round of [`watch`]: checks for a reorg, then reads from the cursor to the latest block
/// with `cfg.confirmations` on top, in ranges of at most `cfg.max_range` blocks; returns how
/// many payments were new.
pub async fn poll_once(store: &Store, escrow: &EscrowClient, cfg: &WatchConfig) -> Result<usize> {
    let latest = escrow.block_number().await?;
    let Some(head) = latest.checked_sub(cfg.confirmations) else { return Ok(0) };
    let mut from = rewind_if_reorged(store, escrow, cfg).await?;
    let mut new = 0;
    while from <= head {
        let to = head.min(from + cfg.max_range.max(1) - 1);
        let events = escrow.events(from, to).await?;
        let tip = block_hash(escrow, to).await?.unwrap_or_default();
        new += store.record_chain_events(&events, to + 1, (to, tip), crate::clock::now_ms()).await?;
        from = to + 1;
    }
    Ok(new)
}
