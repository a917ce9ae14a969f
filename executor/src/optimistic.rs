//! Optimistic jobs on the executor's side: run the model (no proof), post the output
//! instances to the escrow with a bond, claim the result at the coordinator, then follow the
//! job on chain: finalize once the challenge window closed unchallenged, or prove the posted
//! outputs when challenged. Every step is journaled first (`<state-dir>/optimistic/`), so a
//! restart finishes what a crash left: it never posts twice and never forgets a dispute.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{B256, U256};
use serde::{Deserialize, Serialize};
use zkinfer_protocol::types::{Lease, ResultClaim};
use zkinfer_protocol::{EscrowJobId, Hash32, HexBytes};
use zkinfer_prover::ProofEnvelope;
use zkinfer_verifier_contract::escrow::{instance_words, outputs_hash, EscrowClient, JobState};

use crate::prover::{ProveFailure, Prover};
use crate::settle::now_ms;
use crate::worker::Executor;
use crate::{Error, Result};

/// How long a sent transaction is waited for.
const TX_WAIT: Duration = Duration::from_secs(120);
/// Gas cap of `resolveWithProof` (the escrow gives the verifier 2M).
const RESOLVE_GAS: u64 = 3_000_000;

/// An optimistic result this executor posted (or is about to), until it is paid or lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// The lease it came with (its sealed input is opened again to prove a challenged result).
    pub lease: Lease,
    /// The escrow job.
    pub escrow_job: EscrowJobId,
    /// The quantized outputs posted.
    pub quantized: Vec<Vec<i64>>,
    /// Their output instances.
    pub words: Vec<U256>,
    /// The executor's signature of the result claim.
    pub signature: Vec<u8>,
    /// The `postResult` transaction, once sent.
    pub post_tx: Option<B256>,
    /// Whether the coordinator took the claim.
    pub claimed: bool,
    /// Failed follow-ups so far.
    #[serde(default)]
    pub tries: u32,
    /// Not followed up again before this time (ms since the epoch).
    #[serde(default)]
    pub next_try_ms: i64,
}

impl crate::journal::Entry for Posted {
    const DIR: &'static str = "optimistic";
    fn escrow_job(&self) -> EscrowJobId {
        self.escrow_job
    }
}

/// The journal of posted optimistic results.
pub type Journal = crate::journal::Journal<Posted>;

/// Marks an escrow job as being advanced until dropped.
struct Busy<'a> {
    set: &'a Mutex<HashSet<EscrowJobId>>,
    job: EscrowJobId,
}

impl<'a> Busy<'a> {
    /// `None` when another task is advancing the job.
    fn take(set: &'a Mutex<HashSet<EscrowJobId>>, job: EscrowJobId) -> Option<Self> {
        // (The guard must be gone before a `Busy` can drop: its drop locks the set.)
        let fresh = set.lock().ok()?.insert(job);
        fresh.then(|| Busy { set, job })
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.job);
        }
    }
}

/// Where a followed result stands.
enum Step {
    /// Nothing more is owed: paid, refunded, or lost.
    Done,
    /// Waiting (the window is open, or a transaction is pending).
    Wait,
}

impl Executor {
    fn chain(&self) -> Result<&EscrowClient> {
        self.escrow.as_ref().map(|(e, _)| e).ok_or(Error::Unpayable { escrow_job: EscrowJobId(0), state: JobState::None })
    }

    /// Runs an optimistic lease: evaluates the model on the opened input, posts the outputs
    /// to the escrow (bonding stake) and claims the result; the window and any dispute are
    /// followed by [`Self::follow_posted`].
    pub(crate) async fn run_optimistic(&self, lease: &Lease, prover: Arc<Prover>, payload: Vec<u8>) -> Result<()> {
        let job = lease.job;
        let (Some(escrow_job), Some(commitment)) = (lease.escrow_job, lease.input_commitment) else {
            return Err(Error::Prove {
                job,
                reason: ProveFailure::Unpayable("an optimistic job needs an escrow job and a commitment".into()),
            });
        };
        if self.escrow.is_none() {
            return Err(Error::Prove { job, reason: ProveFailure::Unpayable("this executor has no --rpc-url/--escrow to post to".into()) });
        }
        let p = prover.clone();
        let mut quantized = tokio::task::spawn_blocking(move || p.evaluate(job, &payload, commitment))
            .await
            .map_err(|_| Error::Prove { job, reason: ProveFailure::Panicked })??;
        if self.cfg.post_wrong_outputs {
            if let Some(v) = quantized.iter_mut().flatten().next() {
                *v += 1;
                tracing::warn!(executor = %self.id(), %job, "--post-wrong-outputs: posting a wrong output");
            }
        }
        let words = prover.output_words(&quantized);
        let hash = outputs_hash(&words);
        let binding = self
            .seal_context(lease)
            .map_err(|reason| Error::Prove { job, reason })?
            .escrow
            .ok_or(Error::Prove { job, reason: ProveFailure::Unpayable("an optimistic job needs an escrow job".into()) })?;
        let signature = zkinfer_protocol::optimistic::sign_result(&self.cfg.key, &binding, &commitment, &hash)?;
        let mut entry = Posted {
            lease: lease.clone(),
            escrow_job,
            quantized,
            words,
            signature,
            post_tx: None,
            claimed: false,
            tries: 0,
            next_try_ms: 0,
        };
        self.posted.put(&entry)?;
        self.advance(&mut entry).await.map(|_| ())
    }

    /// Follows every journaled optimistic result that is due; one entry's failure waits
    /// longer and does not hold up the others.
    pub(crate) async fn follow_posted(&self) {
        let entries = match self.posted.entries() {
            Ok(e) => e,
            Err(e) => return tracing::warn!(executor = %self.id(), error = %e, "reading the optimistic journal failed"),
        };
        let now = now_ms();
        for mut entry in entries.into_iter().filter(|e| e.next_try_ms <= now) {
            if let Err(e) = self.advance(&mut entry).await {
                entry.tries = entry.tries.saturating_add(1);
                entry.next_try_ms = now_ms() + 1000 * (1i64 << entry.tries.min(8));
                tracing::warn!(executor = %self.id(), escrow_job = %entry.escrow_job, error = %e, "optimistic result: retrying later");
                if let Err(e) = self.posted.put_if_present(&entry) {
                    tracing::warn!(executor = %self.id(), error = %e, "recording the retry failed");
                }
            }
        }
    }

    /// Moves one posted result on as far as it goes now: post, claim, then finalize or defend.
    /// One task at a time per escrow job (the lease's and the follower's would race).
    async fn advance(&self, entry: &mut Posted) -> Result<()> {
        let Some(_busy) = Busy::take(&self.busy, entry.escrow_job) else { return Ok(()) };
        // What another task did before it let go is on disk.
        match self.posted.get(entry.escrow_job)? {
            Some(fresh) => *entry = fresh,
            None => return Ok(()),
        }
        let escrow = self.chain()?;
        let me = self.id().address();
        let on_chain = escrow.job(entry.escrow_job).await?;
        if entry.post_tx.is_none() {
            if on_chain.state != JobState::Open {
                // Posted by this executor before a crash, or gone to someone else: the chain says.
                if on_chain.executor != me {
                    self.posted.done(entry.escrow_job)?;
                    return Err(Error::Unpayable { escrow_job: entry.escrow_job, state: on_chain.state });
                }
            } else {
                let tx = escrow.send_post_result(entry.escrow_job, entry.words.clone()).await?;
                entry.post_tx = Some(tx);
                self.posted.put(entry)?;
                let r = escrow.wait_receipt(tx, TX_WAIT).await?.ok_or(Error::StillPending { tx, secs: TX_WAIT.as_secs() })?;
                if !r.status() {
                    self.posted.done(entry.escrow_job)?;
                    return Err(Error::SubmissionReverted { escrow_job: entry.escrow_job, tx });
                }
                tracing::info!(executor = %self.id(), job = %entry.lease.job, escrow_job = %entry.escrow_job, %tx, "outputs posted on chain");
            }
        }
        if !entry.claimed {
            self.claim(entry).await?;
        }
        match self.settle_posted(escrow, entry).await? {
            Step::Done => self.posted.done(entry.escrow_job),
            Step::Wait => Ok(()),
        }
    }

    /// Claims the result at the coordinator (which checks it against the chain).
    async fn claim(&self, entry: &mut Posted) -> Result<()> {
        let post_tx = entry.post_tx.unwrap_or_default();
        let claim = ResultClaim {
            quantized_outputs: entry.quantized.clone(),
            outputs_hash: Hash32(outputs_hash(&entry.words).0),
            post_tx: Hash32(post_tx.0),
            signature: HexBytes(entry.signature.clone()),
        };
        match self.client.post_result(entry.lease.job, &claim).await {
            Ok(()) => tracing::info!(executor = %self.id(), job = %entry.lease.job, "result claimed at the coordinator"),
            Err(e) if e.is_transient() => return Err(e.into()),
            // The chain is what pays: a refused claim (the coordinator learnt the result from
            // the chain first, say) is logged, not retried.
            Err(e) => tracing::warn!(executor = %self.id(), job = %entry.lease.job, error = %e, "the coordinator refused the result claim"),
        }
        entry.claimed = true;
        self.posted.put(entry)
    }

    /// Finalizes after an unchallenged window, or proves the posted outputs when challenged.
    async fn settle_posted(&self, escrow: &EscrowClient, entry: &Posted) -> Result<Step> {
        let job = escrow.job(entry.escrow_job).await?;
        match job.state {
            JobState::Posted => {
                let o = escrow.optimistic(entry.escrow_job).await?;
                if escrow.chain_time().await? <= o.challenge_ends() {
                    return Ok(Step::Wait);
                }
                let s = escrow.finalize(entry.escrow_job).await?;
                tracing::info!(executor = %self.id(), escrow_job = %entry.escrow_job, tx = %s.tx, "paid after the challenge window");
                Ok(Step::Done)
            }
            JobState::Disputed => self.defend(escrow, entry).await,
            JobState::Paid => Ok(Step::Done),
            // The post is not mined yet.
            JobState::Open => Ok(Step::Wait),
            state => {
                tracing::warn!(executor = %self.id(), escrow_job = %entry.escrow_job, ?state, "the optimistic job ended without paying this executor");
                Ok(Step::Done)
            }
        }
    }

    /// Proves a challenged result and submits the proof, which pays the price and the
    /// challenger's bond; a proof that shows other outputs than the posted ones cannot win.
    async fn defend(&self, escrow: &EscrowClient, entry: &Posted) -> Result<Step> {
        let lease = &entry.lease;
        tracing::warn!(executor = %self.id(), job = %lease.job, escrow_job = %entry.escrow_job, "the posted result is challenged: proving it");
        let prover = self.prover(&lease.model_id).ok_or_else(|| Error::Prove {
            job: lease.job,
            reason: ProveFailure::Input(format!("model `{}` is no longer loaded", lease.model_id)),
        })?;
        let payload = self.open_input(lease).map_err(|reason| Error::Prove { job: lease.job, reason })?;
        let (job, binding) = (lease.job, self.binding(lease));
        let commitment = lease.input_commitment.ok_or(Error::Prove { job, reason: ProveFailure::NoCommitment })?;
        let proof = tokio::task::spawn_blocking(move || prover.prove(job, &payload, commitment, &binding))
            .await
            .map_err(|_| Error::Prove { job, reason: ProveFailure::Panicked })??;
        let env = ProofEnvelope::from_bytes(&proof).map_err(|e| Error::Prove { job, reason: ProveFailure::Prover(e) })?;
        let instances = instance_words(&env);
        let offset = instances.len().saturating_sub(entry.words.len());
        if instances[offset..] != entry.words[..] {
            tracing::error!(executor = %self.id(), escrow_job = %entry.escrow_job, "the proof's outputs are not the posted ones: the dispute is lost");
            self.posted.done(entry.escrow_job)?;
            return Err(Error::CannotDefend { escrow_job: entry.escrow_job });
        }
        let tx = escrow.send_resolve_raw(entry.escrow_job, instances, env.proof, RESOLVE_GAS).await?;
        let r = escrow.wait_receipt(tx, TX_WAIT).await?.ok_or(Error::StillPending { tx, secs: TX_WAIT.as_secs() })?;
        if !r.status() {
            return Err(Error::SubmissionReverted { escrow_job: entry.escrow_job, tx });
        }
        tracing::info!(executor = %self.id(), escrow_job = %entry.escrow_job, %tx, "dispute won with a proof: paid the price and the challenger's bond");
        Ok(Step::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_task_at_a_time_advances_a_result_and_a_refused_take_leaves_the_holder_alone() {
        let set = Mutex::new(HashSet::new());
        let first = Busy::take(&set, EscrowJobId(1)).expect("free");
        // A second take is refused (and must neither deadlock nor free the job).
        assert!(Busy::take(&set, EscrowJobId(1)).is_none());
        assert!(Busy::take(&set, EscrowJobId(1)).is_none(), "still held by the first");
        assert!(Busy::take(&set, EscrowJobId(2)).is_some(), "other jobs are free");
        drop(first);
        assert!(Busy::take(&set, EscrowJobId(1)).is_some(), "free again once dropped");
    }
}
