//! Getting paid: submitting a delivered proof to the on-chain escrow, crash-safe.
//!
//! Before anything leaves the executor, the proof is written to a journal entry
//! (`<state-dir>/pending/<escrow job>.json`, atomically). The entry records the transaction
//! hash as soon as the transaction is sent, and is removed once the payment is final. A
//! restarted executor resumes every entry: it waits for a recorded transaction instead of
//! sending another, and it never submits for a job the escrow has already paid. So a crash
//! at any point neither loses the payment nor double-submits.

use std::path::{Path, PathBuf};

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use serde::{Deserialize, Serialize};
use zkinfer_prover::ProofEnvelope;
use zkinfer_verifier_contract::escrow::{job_state, InferenceEscrow};

use crate::{Error, Result};

/// Seconds a restarted executor waits for a journaled transaction that is still pending.
const PENDING_WAIT_S: u32 = 300;

/// Gas cap of a proof submission: a rejected proof burns what it is given (the escrow gives
/// the verifier 2M).
const SUBMIT_GAS: u64 = 3_000_000;

/// A proof waiting to be paid for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The coordinator's job id.
    pub job: i64,
    /// The escrow's job id.
    pub escrow_job: u64,
    /// The proof file's bytes (hex).
    pub proof: String,
    /// Whether the coordinator accepted the proof.
    pub delivered: bool,
    /// The submission transaction, once sent.
    pub tx: Option<B256>,
}

/// The journal of proofs not yet paid for.
#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// The journal under `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Journal { dir: state_dir.join("pending") }
    }

    fn path(&self, escrow_job: u64) -> PathBuf {
        self.dir.join(format!("{escrow_job}.json"))
    }

    /// Writes (replaces) an entry atomically.
    pub fn put(&self, p: &Pending) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(p).map_err(|e| Error::Journal(e.to_string()))?;
        zkinfer_prover::fs::atomic_write(&self.path(p.escrow_job), &bytes).map_err(|e| Error::Journal(e.to_string()))
    }

    /// Removes an entry (the payment is final).
    pub fn done(&self, escrow_job: u64) -> Result<()> {
        match std::fs::remove_file(self.path(escrow_job)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Journal(e.to_string())),
            _ => Ok(()),
        }
    }

    /// Every entry, oldest escrow job first.
    pub fn entries(&self) -> Result<Vec<Pending>> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for f in dir.flatten().filter(|f| f.path().extension().is_some_and(|e| e == "json")) {
            let bytes = std::fs::read(f.path()).map_err(|e| Error::Journal(format!("{}: {e}", f.path().display())))?;
            out.push(serde_json::from_slice(&bytes).map_err(|e| Error::Journal(format!("{}: {e}", f.path().display())))?);
        }
        out.sort_by_key(|p: &Pending| p.escrow_job);
        Ok(out)
    }
}

/// How a submission ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The escrow paid this executor in this transaction.
    Paid(B256),
    /// The escrow had already paid (this executor in an earlier run, or another one).
    AlreadyPaid {
        /// Who was paid.
        to: Address,
    },
}

/// Submits proofs to the escrow as this executor.
#[derive(Clone)]
pub struct Escrow {
    provider: DynProvider,
    address: Address,
}

fn chain_err(e: impl std::fmt::Display) -> Error {
    Error::Chain(e.to_string())
}

impl Escrow {
    /// The escrow at `address` through `rpc_url`, sending as `key`.
    pub fn connect(rpc_url: &str, address: Address, key: &PrivateKeySigner) -> Result<Self> {
        let url = rpc_url.parse().map_err(|e| Error::Chain(format!("RPC URL `{rpc_url}`: {e}")))?;
        let provider = ProviderBuilder::new().wallet(EthereumWallet::from(key.clone())).connect_http(url).erased();
        Ok(Escrow { provider, address })
    }

    async fn job(&self, id: u64) -> Result<InferenceEscrow::jobsReturn> {
        let call = InferenceEscrow::jobsCall { jobId: U256::from(id) };
        let tx = TransactionRequest::default().with_to(self.address).with_input(call.abi_encode());
        let out = self.provider.call(tx).await.map_err(chain_err)?;
        InferenceEscrow::jobsCall::abi_decode_returns(&out).map_err(chain_err)
    }

    /// Whether a journaled transaction paid. One still pending (known to the node, not yet
    /// mined) is waited for, so that a restart never sends a second submission beside it; one
    /// that reverted or was dropped did not pay.
    async fn journaled_tx_paid(&self, tx: B256) -> Result<bool> {
        for _ in 0..PENDING_WAIT_S {
            if let Some(r) = self.provider.get_transaction_receipt(tx).await.map_err(chain_err)? {
                return Ok(r.status());
            }
            if self.provider.get_transaction_by_hash(tx).await.map_err(chain_err)?.is_none() {
                return Ok(false);
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        Err(Error::Chain(format!("transaction {tx:#x} still pending after {PENDING_WAIT_S} s; not sending another")))
    }

    /// Gets the entry's proof paid for: waits for its recorded transaction if there is one,
    /// else submits unless the escrow already paid. Records the transaction in `journal`
    /// before waiting for it.
    pub async fn settle(&self, journal: &Journal, entry: &mut Pending) -> Result<Settled> {
        if let Some(tx) = entry.tx {
            if self.journaled_tx_paid(tx).await? {
                return Ok(Settled::Paid(tx));
            }
        }
        let job = self.job(entry.escrow_job).await?;
        match job.state {
            job_state::PAID => return Ok(Settled::AlreadyPaid { to: job.executor }),
            job_state::OPEN | job_state::CLAIMED => {}
            s => return Err(Error::Chain(format!("escrow job {} is in state {s}, it cannot be paid", entry.escrow_job))),
        }
        let proof = hex::decode(&entry.proof).map_err(|e| Error::Journal(e.to_string()))?;
        let env = ProofEnvelope::from_bytes(&proof).map_err(|e| Error::Journal(e.to_string()))?;
        let call = InferenceEscrow::submitProofCall {
            jobId: U256::from(entry.escrow_job),
            instances: env.instances.iter().map(|b| U256::from_le_bytes(*b)).collect(),
            proof: env.proof.clone().into(),
        };
        let tx = TransactionRequest::default().with_to(self.address).with_input(call.abi_encode()).with_gas_limit(SUBMIT_GAS);
        let pending = self.provider.send_transaction(tx).await.map_err(chain_err)?;
        entry.tx = Some(*pending.tx_hash());
        journal.put(entry)?;
        let r = pending.get_receipt().await.map_err(chain_err)?;
        if r.status() {
            Ok(Settled::Paid(r.transaction_hash))
        } else {
            let after = self.job(entry.escrow_job).await?;
            match after.state {
                job_state::PAID => Ok(Settled::AlreadyPaid { to: after.executor }),
                _ => Err(Error::Chain(format!(
                    "the escrow rejected the proof for escrow job {} (tx {:#x})",
                    entry.escrow_job, r.transaction_hash
                ))),
            }
        }
    }
}
