//! The proving market's executor: registers with the coordinator (models, price, hardware,
//! and the HPKE key that customers seal inputs to), long-polls for a job, opens its sealed
//! input, proves it with the model's local keys while renewing its lease, delivers the proof,
//! and submits it to the on-chain escrow to be paid ([`settle`], crash-safe). An optimistic
//! job is run, not proved: its outputs are posted to the escrow with a bond and paid after
//! the challenge window, or proved if challenged. As a validator, it re-executes the sampled
//! optimistic results it is asked to audit, and challenges the ones that differ.
//!
//! It talks to the coordinator only through the protocol crate's typed client
//! ([`zkinfer_protocol::client::ExecutorClient`], every request signed with the executor's
//! Ethereum key) and to the chain only through the escrow client
//! ([`zkinfer_verifier_contract::escrow::EscrowClient`]); the same key pays for and
//! receives on-chain transactions.
//!
//! # Feature flags
//! None.

pub mod audit;
pub mod journal;
mod models;
pub mod optimistic;
mod prover;
pub mod settle;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use tokio_util::sync::CancellationToken;
use zkinfer_protocol::{EscrowJobId, JobId, ModelId};
use zkinfer_prover::MsmChoice;

pub use prover::ProveFailure;

/// Errors of the executor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model directory could not be loaded or set up.
    #[error("model `{model}`: {source}")]
    Model {
        /// The model id.
        model: String,
        /// Why.
        #[source]
        source: zkinfer_prover::Error,
    },
    /// A fetched model set up here differs from the coordinator's (another SRS?).
    #[error("model `{model}`: set up here it has vk {here} and model hash {here_model}, the coordinator's has {there} and {there_model} (another SRS?)")]
    ModelMismatch {
        /// The model id.
        model: ModelId,
        /// vk SHA-256 here.
        here: String,
        /// vk SHA-256 at the coordinator.
        there: String,
        /// Model hash here.
        here_model: String,
        /// Model hash at the coordinator.
        there_model: String,
    },
    /// The coordinator could not be reached or refused a request.
    #[error(transparent)]
    Coordinator(#[from] zkinfer_protocol::Error),
    /// A job could not be proved.
    #[error("job {job}: {reason}")]
    Prove {
        /// The job.
        job: JobId,
        /// Why.
        reason: ProveFailure,
    },
    /// The chain could not be reached, or refused a call.
    #[error(transparent)]
    Chain(#[from] zkinfer_verifier_contract::Error),
    /// The escrow job can no longer be paid for.
    #[error("escrow job {escrow_job} is {state:?}: it cannot be paid")]
    Unpayable {
        /// The escrow job.
        escrow_job: EscrowJobId,
        /// Its state.
        state: zkinfer_verifier_contract::escrow::JobState,
    },
    /// The escrow rejected the submission (it reverted, and the job is not paid).
    #[error("the escrow rejected the proof for escrow job {escrow_job} (tx {tx:#x})")]
    SubmissionReverted {
        /// The escrow job.
        escrow_job: EscrowJobId,
        /// The transaction.
        tx: alloy::primitives::B256,
    },
    /// A journaled transaction is still pending: no second one is sent beside it.
    #[error("transaction {tx:#x} still pending after {secs} s; not sending another")]
    StillPending {
        /// The transaction.
        tx: alloy::primitives::B256,
        /// How long it was waited for.
        secs: u64,
    },
    /// A challenged result's proof shows other outputs than the ones posted: it cannot
    /// settle the dispute (the executor posted wrong outputs).
    #[error("escrow job {escrow_job}: the proof's outputs are not the posted outputs; the dispute cannot be won")]
    CannotDefend {
        /// The escrow job.
        escrow_job: EscrowJobId,
    },
    /// A blocking task panicked.
    #[error("{0} panicked")]
    Panicked(&'static str),
    /// The journal of unpaid proofs could not be read or written.
    #[error("journal {path}: {reason}")]
    Journal {
        /// The entry's file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Result with the executor's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Where the escrow is.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// The escrow contract.
    pub escrow: Address,
}

/// What an executor needs to run.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// The coordinator's base URL, e.g. `http://127.0.0.1:8080`.
    pub coordinator: String,
    /// This executor's key: its address is its identity and its payee.
    pub key: PrivateKeySigner,
    /// Model id → set-up model directory.
    pub models: HashMap<ModelId, PathBuf>,
    /// How often to renew a lease while proving.
    pub heartbeat: Duration,
    /// The price it asks per job (wei), told to the coordinator's router; it does not prove
    /// an escrow job that pays less.
    pub price_wei: U256,
    /// Top its active stake in the escrow up to this much (wei) at start.
    pub stake_wei: Option<U256>,
    /// Where the journal of unpaid proofs lives.
    pub state_dir: PathBuf,
    /// The escrow to submit proofs to; `None` delivers to the coordinator only.
    pub chain: Option<ChainConfig>,
    /// Also prove the models registered with the coordinator, set up with this SRS under
    /// `state_dir/models`.
    pub fetch_models: Option<zkinfer_prover::srs::SrsChoice>,
    /// How proofs' commitments are computed (`precomputed`: the SRS's cached fixed-base tables).
    pub msm: MsmChoice,
    /// Claim jobs (run and prove them). Off: a validator only.
    pub claim_jobs: bool,
    /// Re-execute the sampled optimistic results the coordinator asks this executor to
    /// audit, and challenge the wrong ones on chain.
    pub validate: bool,
    /// For demonstrations and tests only: post wrong outputs for optimistic jobs (the first
    /// output value plus one), as a cheating executor would, to be caught and slashed.
    pub post_wrong_outputs: bool,
}

/// Runs the executor until `shutdown` is cancelled (the job in hand is finished first):
/// register, resume unpaid proofs, then claim, prove, deliver, get paid, repeat.
pub async fn run(cfg: ExecutorConfig, shutdown: CancellationToken) -> Result<()> {
    worker::Executor::start(cfg).await?.run(shutdown).await
}
