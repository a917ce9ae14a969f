//! The validator's side of optimistic verification: re-execute the sampled results the
//! coordinator asks this executor to audit (with the ciphertext the customer sealed to it),
//! compare the output instances' hash with what the escrow holds, and challenge on chain when
//! they differ; then, once the challenged executor's time to prove is over, end the dispute
//! (`slashUnproven`) to collect the reward. Challenges are journaled
//! (`<state-dir>/challenges/`), so a restart still collects.

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};
use zkinfer_protocol::seal::{EscrowBinding, SealContext};
use zkinfer_protocol::types::{AuditReport, AuditTask};
use zkinfer_protocol::{EscrowJobId, Hash32, JobId};
use zkinfer_verifier_contract::escrow::{outputs_hash, JobState};

use crate::prover::ProveFailure;
use crate::worker::Executor;
use crate::{Error, Result};

/// A challenge this validator made, until its dispute ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The coordinator's job.
    pub job: JobId,
    /// The escrow job.
    pub escrow_job: EscrowJobId,
    /// The `challenge` transaction.
    pub tx: B256,
    /// Whether the coordinator has the report.
    pub reported: bool,
}

impl crate::journal::Entry for Challenge {
    const DIR: &'static str = "challenges";
    fn escrow_job(&self) -> EscrowJobId {
        self.escrow_job
    }
}

/// The journal of open challenges.
pub type Journal = crate::journal::Journal<Challenge>;

impl Executor {
    fn unjudgeable(&self, job: JobId) -> bool {
        self.unjudgeable.lock().is_ok_and(|s| s.contains(&job))
    }

    /// Remembers an audit this validator cannot judge (it does not serve the model, or the
    /// input does not open), so that it is not tried again in this run.
    fn mark_unjudgeable(&self, job: JobId) {
        if let Ok(mut s) = self.unjudgeable.lock() {
            s.insert(job);
        }
    }

    /// Fetches the audits asked of this validator and does each.
    pub(crate) async fn audit_round(&self) {
        let tasks = match self.client.audits().await {
            Ok(t) => t,
            Err(e) => return tracing::warn!(validator = %self.id(), error = %e, "fetching audits failed"),
        };
        for t in tasks.iter().filter(|t| !self.unjudgeable(t.job)) {
            if let Err(e) = self.audit(t).await {
                tracing::warn!(validator = %self.id(), job = %t.job, error = %e, "audit failed; retrying next round");
            }
        }
    }

    /// Re-executes one sampled result; reports agreement, or challenges and reports.
    async fn audit(&self, t: &AuditTask) -> Result<()> {
        let Some((escrow, chain_id)) = &self.escrow else { return Ok(()) };
        if let Some(c) = self.challenges.entries()?.into_iter().find(|c| c.escrow_job == t.escrow_job) {
            return self.report_challenge(c).await;
        }
        let Some(prover) = self.prover(&t.model_id) else {
            tracing::warn!(validator = %self.id(), job = %t.job, model = %t.model_id, "asked to audit a model not loaded here");
            self.mark_unjudgeable(t.job);
            return Ok(());
        };
        let payload = if t.sealed {
            let ctx = SealContext {
                model_id: &t.model_id,
                input_commitment: t.input_commitment,
                escrow: Some(EscrowBinding { chain_id: *chain_id, escrow: escrow.address(), job: t.escrow_job }),
            };
            self.seal.open(&ctx, &t.input.0).map_err(|e| Error::Prove { job: t.job, reason: ProveFailure::Open(e) })
        } else {
            Ok(t.input.0.clone())
        };
        let (job, commitment, p) = (t.job, t.input_commitment, prover.clone());
        let evaluated = match payload {
            Ok(payload) => tokio::task::spawn_blocking(move || p.evaluate(job, &payload, commitment))
                .await
                .map_err(|_| Error::Prove { job, reason: ProveFailure::Panicked })?,
            Err(e) => Err(e),
        };
        let quantized = match evaluated {
            Ok(q) => q,
            Err(e @ Error::Prove { .. }) => {
                // An input that does not open to its commitment cannot be judged (nor could it
                // be run honestly): the executor's posted outputs stand or fall by a challenge
                // from the customer.
                tracing::warn!(validator = %self.id(), job = %t.job, error = %e, "cannot re-execute the sampled job");
                self.mark_unjudgeable(t.job);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let hash = outputs_hash(&prover.output_words(&quantized));
        let on_chain = escrow.job(t.escrow_job).await?;
        let o = escrow.optimistic(t.escrow_job).await?;
        if on_chain.state != JobState::Posted {
            return Ok(()); // challenged by someone else, or paid: nothing to add
        }
        if o.outputs_hash == hash {
            tracing::info!(validator = %self.id(), job = %t.job, "audit: the posted outputs are right");
            return Ok(self.client.report_audit(t.job, &AuditReport { agrees: true, challenge_tx: None }).await?);
        }
        if escrow.chain_time().await? > o.challenge_ends() {
            tracing::warn!(validator = %self.id(), job = %t.job, "audit: the posted outputs are wrong, but the window has closed");
            return Ok(self.client.report_audit(t.job, &AuditReport { agrees: false, challenge_tx: None }).await?);
        }
        tracing::warn!(validator = %self.id(), job = %t.job, executor = %t.executor, "audit: the posted outputs are wrong: challenging");
        let s = escrow.challenge(t.escrow_job, o.terms.challenge_bond).await?;
        let c = Challenge { job: t.job, escrow_job: t.escrow_job, tx: s.tx, reported: false };
        self.challenges.put(&c)?;
        self.report_challenge(c).await
    }

    async fn report_challenge(&self, mut c: Challenge) -> Result<()> {
        if c.reported {
            return Ok(());
        }
        let report = AuditReport { agrees: false, challenge_tx: Some(Hash32(c.tx.0)) };
        match self.client.report_audit(c.job, &report).await {
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => tracing::warn!(validator = %self.id(), job = %c.job, error = %e, "the coordinator refused the audit report"),
            Ok(()) => {}
        }
        c.reported = true;
        self.challenges.put_if_present(&c)
    }

    /// Ends the disputes this validator opened once their executor's time to prove is over.
    pub(crate) async fn follow_challenges(&self) {
        let Some((escrow, _)) = &self.escrow else { return };
        let entries = match self.challenges.entries() {
            Ok(e) => e,
            Err(e) => return tracing::warn!(validator = %self.id(), error = %e, "reading the challenge journal failed"),
        };
        for c in entries {
            let step = async {
                let job = escrow.job(c.escrow_job).await?;
                match job.state {
                    JobState::Disputed => {
                        let o = escrow.optimistic(c.escrow_job).await?;
                        if escrow.chain_time().await? <= o.prove_by {
                            return Ok::<bool, Error>(false);
                        }
                        let s = escrow.slash_unproven(c.escrow_job).await?;
                        tracing::info!(validator = %self.id(), escrow_job = %c.escrow_job, tx = %s.tx, "the executor did not prove its outputs: slashed");
                    }
                    JobState::Paid => {
                        tracing::warn!(validator = %self.id(), escrow_job = %c.escrow_job, "the executor proved its outputs: the challenge bond went to it")
                    }
                    _ => {}
                }
                Ok(true)
            };
            match step.await {
                Ok(true) => {
                    if let Err(e) = self.challenges.done(c.escrow_job) {
                        tracing::warn!(validator = %self.id(), error = %e, "clearing a challenge failed");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(validator = %self.id(), escrow_job = %c.escrow_job, error = %e, "following a challenge failed"),
            }
        }
    }
}
