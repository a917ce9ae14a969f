//! The escrow on chain, as the coordinator sees it: it checks that a submitted job is paid in
//! (open, for this model and this input commitment), and it watches `JobPaid` events to mark
//! jobs settled (a job is settled only when its payment event is seen on chain) and
//! `JobRefunded` events to mark expired or unpaid jobs refunded.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::sol_types::{SolCall, SolEvent};
use zkinfer_verifier_contract::escrow::{job_state, InferenceEscrow};

use crate::error::{Error, Result};
use crate::store::Store;

/// An escrow job, as `jobs(id)` and `models(modelId)` return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscrowJob {
    /// `InferenceEscrow.State` (see [`job_state`]).
    pub state: u8,
    /// The zkinfer model hash the job's model was registered with.
    pub model_hash: [u8; 32],
    /// The Poseidon commitment to the customer's input.
    pub input_commitment: U256,
    /// The payment held (wei).
    pub price: U256,
    /// Whether only allow-listed executors may be paid.
    pub restricted: bool,
}

/// A `JobPaid` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// The escrow's job id.
    pub escrow_job: u64,
    /// Who was paid (lowercase 0x-hex).
    pub executor: String,
    /// Wei paid.
    pub price: U256,
    /// The transaction.
    pub tx: B256,
    /// Its block.
    pub block: u64,
}

/// A read-only client of one escrow contract.
#[derive(Clone)]
pub struct Escrow {
    provider: DynProvider,
    /// The escrow's address.
    pub address: Address,
}

fn chain_err(e: impl std::fmt::Display) -> Error {
    Error::Chain(e.to_string())
}

impl Escrow {
    /// A client of the escrow at `address` through the JSON-RPC endpoint `rpc_url`.
    pub fn connect(rpc_url: &str, address: Address) -> Result<Self> {
        let url = rpc_url.parse().map_err(|e| Error::Chain(format!("RPC URL `{rpc_url}`: {e}")))?;
        Ok(Escrow { provider: ProviderBuilder::new().connect_http(url).erased(), address })
    }

    async fn call<C: SolCall>(&self, call: C) -> Result<C::Return> {
        let tx = TransactionRequest::default().to(self.address).input(call.abi_encode().into());
        let out = self.provider.call(tx).await.map_err(chain_err)?;
        C::abi_decode_returns(&out).map_err(chain_err)
    }

    /// Escrow job `id` with its model's hash.
    pub async fn job(&self, id: u64) -> Result<EscrowJob> {
        let j = self.call(InferenceEscrow::jobsCall { jobId: U256::from(id) }).await?;
        let m = self.call(InferenceEscrow::modelsCall { modelId: U256::from(j.modelId) }).await?;
        Ok(EscrowJob {
            state: j.state,
            model_hash: m.modelHash.0,
            input_commitment: j.inputCommitment,
            price: j.price,
            restricted: j.restricted,
        })
    }

    /// Whether `executor` may be paid for escrow job `id`.
    pub async fn allows(&self, id: u64, executor: Address) -> Result<bool> {
        self.call(InferenceEscrow::allowedExecutorCall { jobId: U256::from(id), executor }).await
    }

    /// `JobPaid` events from block `from` to the latest; returns them and the next block to read.
    pub async fn payments_since(&self, from: u64) -> Result<(Vec<Payment>, u64)> {
        let (payments, _, next) = self.events_since(from).await?;
        Ok((payments, next))
    }

    /// `JobPaid` and `JobRefunded` (escrow job ids) events from block `from` to the latest,
    /// and the next block to read.
    pub async fn events_since(&self, from: u64) -> Result<(Vec<Payment>, Vec<u64>, u64)> {
        let latest = self.provider.get_block_number().await.map_err(chain_err)?;
        if latest < from {
            return Ok((Vec::new(), Vec::new(), from));
        }
        let refunds_filter = Filter::new()
            .address(self.address)
            .event_signature(InferenceEscrow::JobRefunded::SIGNATURE_HASH)
            .from_block(from)
            .to_block(latest);
        let mut refunds = Vec::new();
        for log in self.provider.get_logs(&refunds_filter).await.map_err(chain_err)? {
            let e = log.log_decode::<InferenceEscrow::JobRefunded>().map_err(chain_err)?.inner.data;
            refunds.push(u64::try_from(e.jobId).map_err(|_| Error::Chain(format!("escrow job id {} out of range", e.jobId)))?);
        }
        let filter =
            Filter::new().address(self.address).event_signature(InferenceEscrow::JobPaid::SIGNATURE_HASH).from_block(from).to_block(latest);
        let mut out = Vec::new();
        for log in self.provider.get_logs(&filter).await.map_err(chain_err)? {
            let (tx, block) = (log.transaction_hash.unwrap_or_default(), log.block_number.unwrap_or(latest));
            let e = log.log_decode::<InferenceEscrow::JobPaid>().map_err(chain_err)?.inner.data;
            let escrow_job = u64::try_from(e.jobId).map_err(|_| Error::Chain(format!("escrow job id {} out of range", e.jobId)))?;
            out.push(Payment { escrow_job, executor: crate::auth::address_string(e.executor), price: e.price, tx, block });
        }
        Ok((out, refunds, latest + 1))
    }

    /// Checks that escrow job `id` pays for this job: open, for the model with `model_hash`,
    /// holding the commitment to this job's input.
    pub async fn check_open(&self, id: u64, model_hash: &[u8; 32], commitment: U256) -> Result<EscrowJob> {
        let job = self.job(id).await?;
        let bad = |why: String| Err(Error::Escrow { job: id, reason: why });
        if job.state != job_state::OPEN {
            return bad(format!("it is in state {} on chain, not open", job.state));
        }
        if &job.model_hash != model_hash {
            return bad("its model is not this model (model hashes differ)".into());
        }
        if job.input_commitment != commitment {
            return bad(format!("it commits to input {:#x}, this job's input commits to {commitment:#x}", job.input_commitment));
        }
        Ok(job)
    }
}

/// Watches the escrow for payments until the process stops: every `every`, reads new
/// `JobPaid` events and records them (which settles proved jobs). The block cursor is stored
/// with the payments, so a restarted coordinator misses none and records none twice.
pub async fn watch(store: Store, escrow: Escrow, every: Duration) {
    loop {
        if let Err(e) = poll_once(&store, &escrow).await {
            eprintln!("coordinator: escrow watch: {e}");
        }
        tokio::time::sleep(every).await;
    }
}

/// One round of [`watch`]; returns how many payments were new.
pub async fn poll_once(store: &Store, escrow: &Escrow) -> Result<usize> {
    let from = store.chain_cursor().await?;
    let (payments, refunds, next) = escrow.events_since(from).await?;
    store.record_chain_events(&payments, &refunds, next, crate::api::now_ms()).await
}
