//! Getting paid: submitting a delivered proof to the on-chain escrow, crash-safe.
//!
//! Before anything leaves the executor, the proof is written to a journal entry
//! (`<state-dir>/pending/<escrow job>.json`, atomically). The entry records the transaction
//! hash as soon as the transaction is sent, and is removed once the payment is final. A
//! restarted executor resumes every entry: it waits for a recorded transaction instead of
//! sending another, and it never submits for a job the escrow has already paid. So a crash
//! at any point neither loses the payment nor double-submits.

use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use zkinfer_protocol::{EscrowJobId, JobId};
use zkinfer_prover::ProofEnvelope;
use zkinfer_verifier_contract::escrow::{EscrowClient, JobState};

use crate::{Error, Result};

/// How long a restarted executor waits for a journaled transaction that is still pending.
const PENDING_WAIT: Duration = Duration::from_secs(300);

/// Gas cap of a proof submission: a rejected proof burns what it is given (the escrow gives
/// the verifier 2M).
const SUBMIT_GAS: u64 = 3_000_000;

/// A proof waiting to be paid for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The coordinator's job id.
    pub job: JobId,
    /// The escrow's job id.
    pub escrow_job: EscrowJobId,
    /// The proof file's bytes (hex).
    pub proof: String,
    /// Whether the coordinator accepted the proof.
    pub delivered: bool,
    /// The submission transaction, once sent.
    pub tx: Option<B256>,
    /// Failed tries so far.
    #[serde(default)]
    pub tries: u32,
    /// Not tried again before this time (ms since the epoch).
    #[serde(default)]
    pub next_try_ms: i64,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Pending {
    /// A fresh entry for a proof of job `job`, paid by `escrow_job`.
    pub fn new(job: JobId, escrow_job: EscrowJobId, proof: &[u8]) -> Self {
        Pending { job, escrow_job, proof: hex::encode(proof), delivered: false, tx: None, tries: 0, next_try_ms: 0 }
    }

    /// One more failed try: the next waits twice as long (2 s, 4 s, … up to 10 minutes).
    pub fn backoff(&mut self) {
        self.tries = self.tries.saturating_add(1);
        self.next_try_ms = now_ms() + 1000 * self.retry_in_s() as i64;
    }

    /// Seconds until the next try.
    pub fn retry_in_s(&self) -> u64 {
        (1u64 << self.tries.min(10)).min(600)
    }

    /// The proof file's bytes.
    pub fn proof_bytes(&self) -> Result<Vec<u8>> {
        hex::decode(&self.proof)
            .map_err(|e| Error::Journal { path: PathBuf::from(format!("escrow job {}", self.escrow_job)), reason: e.to_string() })
    }
}

/// The journal of proofs not yet paid for (`<state-dir>/pending/`).
pub type Journal = crate::journal::Journal<Pending>;

impl crate::journal::Entry for Pending {
    const DIR: &'static str = "pending";
    fn escrow_job(&self) -> EscrowJobId {
        self.escrow_job
    }
}

/// How a submission ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The escrow paid in this transaction.
    Paid(B256),
    /// The escrow had already paid (this executor in an earlier run, or another one).
    AlreadyPaid {
        /// Who was paid.
        to: Address,
    },
}

/// Whether a journaled transaction paid. One still pending (known to the node, not yet
/// mined) is waited for, so that a restart never sends a second submission beside it; one
/// that reverted or was dropped did not pay.
async fn journaled_tx_paid(escrow: &EscrowClient, tx: B256) -> Result<bool> {
    if let Some(r) = escrow.receipt(tx).await? {
        return Ok(r.status());
    }
    if !escrow.known(tx).await? {
        return Ok(false);
    }
    match escrow.wait_receipt(tx, PENDING_WAIT).await? {
        Some(r) => Ok(r.status()),
        None => Err(Error::StillPending { tx, secs: PENDING_WAIT.as_secs() }),
    }
}

/// Gets the entry's proof paid for: waits for its recorded transaction if there is one,
/// else submits unless the escrow already paid or cannot pay. Records the transaction in
/// `journal` before waiting for it. An entry gets at most one transaction: one that reverted
/// is not sent again.
pub async fn settle(escrow: &EscrowClient, journal: &Journal, entry: &mut Pending) -> Result<Settled> {
    if let Some(tx) = entry.tx {
        if journaled_tx_paid(escrow, tx).await? {
            return Ok(Settled::Paid(tx));
        }
        let after = escrow.job(entry.escrow_job).await?;
        if after.state == JobState::Paid {
            return Ok(Settled::AlreadyPaid { to: after.executor });
        }
        if escrow.known(tx).await? {
            return Err(Error::SubmissionReverted { escrow_job: entry.escrow_job, tx });
        }
        // Dropped before it was mined (never in a block): it cost nothing; send it again.
    }
    let job = escrow.job(entry.escrow_job).await?;
    let now = (now_ms() / 1000) as u64;
    match job.state {
        JobState::Paid => return Ok(Settled::AlreadyPaid { to: job.executor }),
        state if !state.is_payable() || job.deadline < now => return Err(Error::Unpayable { escrow_job: entry.escrow_job, state }),
        _ => {}
    }
    let env = ProofEnvelope::from_bytes(&entry.proof_bytes()?)
        .map_err(|e| Error::Journal { path: journal.path(entry.escrow_job), reason: e.to_string() })?;
    let tx = escrow.send_submit_proof(entry.escrow_job, &env, SUBMIT_GAS).await?;
    entry.tx = Some(tx);
    journal.put(entry)?;
    let r = escrow.wait_receipt(tx, PENDING_WAIT).await?.ok_or(Error::StillPending { tx, secs: PENDING_WAIT.as_secs() })?;
    if r.status() {
        return Ok(Settled::Paid(tx));
    }
    let after = escrow.job(entry.escrow_job).await?;
    match after.state {
        JobState::Paid => Ok(Settled::AlreadyPaid { to: after.executor }),
        _ => Err(Error::SubmissionReverted { escrow_job: entry.escrow_job, tx }),
    }
}
