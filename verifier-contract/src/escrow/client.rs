//! [`EscrowClient`]: reads the escrow, sends its transactions, and reads its events, with a
//! timeout on every RPC call.

use std::future::IntoFuture;
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, FixedBytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use zkinfer_protocol::{Commitment, EscrowJobId, ExecutorId};
use zkinfer_prover::ProofEnvelope;

use super::InferenceEscrow::{self, InferenceEscrowErrors, InferenceEscrowInstance};
use super::{instance_words, DisputeOutcome, EscrowEvent, EscrowJob, EscrowModel, JobState, Logged, IERC20};
use crate::error::{Error, Result};

/// How long one RPC call may take by default.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(20);
/// Gas cap of setup transactions (registration, opening, claiming, refunding).
pub(super) const SETUP_GAS: u64 = 5_000_000;

/// A mined transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submission {
    /// Its hash.
    pub tx: B256,
    /// Whether it succeeded.
    pub success: bool,
    /// Gas used.
    pub gas_used: u64,
    /// Wei paid for gas.
    pub fee: U256,
    /// Its block.
    pub block: u64,
}

impl From<&TransactionReceipt> for Submission {
    fn from(r: &TransactionReceipt) -> Self {
        Submission {
            tx: r.transaction_hash,
            success: r.status(),
            gas_used: r.gas_used,
            fee: U256::from(r.gas_used) * U256::from(r.effective_gas_price),
            block: r.block_number.unwrap_or_default(),
        }
    }
}

/// A job to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenJob {
    /// The model's id in the escrow.
    pub model: u64,
    /// The commitment to the input.
    pub commitment: Commitment,
    /// Unix time after which it can be refunded.
    pub deadline: u64,
    /// Who may be paid (anyone staked when empty).
    pub allow: Vec<Address>,
    /// The token it pays in (`None`: ETH).
    pub token: Option<Address>,
    /// The payment.
    pub price: U256,
    /// The active stake (wei) an executor needs to be paid or to claim; at least 1.
    pub min_bond: U256,
    /// Whether an executor may claim it (a market job is not claimable; an optimistic one cannot be).
    pub claimable: bool,
    /// Open it as an optimistic job on these terms (`None`: a ZK job).
    pub optimistic: Option<super::OptimisticTerms>,
}

/// An executor's stake.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StakeInfo {
    /// Everything staked (wei).
    pub amount: U256,
    /// Locked by claims.
    pub locked: U256,
    /// Being unstaked.
    pub unstaking: U256,
    /// When what is being unstaked can be withdrawn.
    pub unlock_at: u64,
}

impl StakeInfo {
    /// What can back a claim or a payment now.
    pub fn active(&self) -> U256 {
        self.amount.saturating_sub(self.locked).saturating_sub(self.unstaking)
    }
}

/// A client of one escrow contract through one JSON-RPC endpoint; with a key, it can send.
#[derive(Clone, Debug)]
pub struct EscrowClient {
    provider: DynProvider,
    pub(super) contract: InferenceEscrowInstance<DynProvider>,
    sender: Option<Address>,
    timeout: Duration,
}

/// The message of a failed RPC call, with the escrow's custom error decoded when it reverted.
fn describe(e: &alloy::contract::Error) -> (bool, String) {
    if let Some(decoded) = e.as_decoded_interface_error::<InferenceEscrowErrors>() {
        return (true, format!("{decoded:?}"));
    }
    let reverted = e.as_revert_data().is_some() || e.to_string().contains("revert");
    (reverted, e.to_string())
}

impl EscrowClient {
    /// The escrow at `address` through `rpc_url`; with `key`, transactions are signed and paid by it.
    pub fn connect(rpc_url: &str, address: Address, key: Option<PrivateKeySigner>) -> Result<Self> {
        let url = rpc_url.parse().map_err(|e| Error::Rpc { call: "connect", message: format!("RPC URL `{rpc_url}`: {e}") })?;
        let sender = key.as_ref().map(|k| k.address());
        let provider = match key {
            Some(k) => ProviderBuilder::new().wallet(EthereumWallet::from(k)).connect_http(url).erased(),
            None => ProviderBuilder::new().connect_http(url).erased(),
        };
        let contract = InferenceEscrow::new(address, provider.clone());
        Ok(EscrowClient { provider, contract, sender, timeout: RPC_TIMEOUT })
    }

    /// The same client with another per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The escrow's address.
    pub fn address(&self) -> Address {
        *self.contract.address()
    }

    /// The sending account, when the client has a key.
    pub fn sender(&self) -> Option<Address> {
        self.sender
    }

    /// The provider, for calls the escrow does not cover (balances, blocks).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// Runs one RPC future under the timeout.
    pub(super) async fn rpc<T, E: std::fmt::Display>(
        &self,
        call: &'static str,
        fut: impl IntoFuture<Output = std::result::Result<T, E>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, fut.into_future()).await {
            Ok(r) => r.map_err(|e| Error::Rpc { call, message: e.to_string() }),
            Err(_) => Err(Error::Timeout { call, secs: self.timeout.as_secs() }),
        }
    }

    /// Runs one contract call under the timeout, decoding a revert into the escrow's error.
    pub(super) async fn contract<T>(&self, call: &'static str, fut: impl IntoFuture<Output = alloy::contract::Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, fut.into_future()).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let (reverted, message) = describe(&e);
                Err(if reverted { Error::Reverted(format!("{call}: {message}")) } else { Error::Rpc { call, message } })
            }
            Err(_) => Err(Error::Timeout { call, secs: self.timeout.as_secs() }),
        }
    }

    /// The chain's id.
    pub async fn chain_id(&self) -> Result<u64> {
        self.rpc("eth_chainId", self.provider.get_chain_id()).await
    }

    /// The latest block's number.
    pub async fn block_number(&self) -> Result<u64> {
        self.rpc("eth_blockNumber", self.provider.get_block_number()).await
    }

    /// Registered model `id`.
    pub async fn model(&self, id: u64) -> Result<EscrowModel> {
        let m = self.contract("getModel", self.contract.getModel(U256::from(id)).call()).await?;
        Ok(EscrowModel {
            id,
            verifier: m.verifier,
            model_hash: m.modelHash.0,
            num_instances: m.numInstances,
            owner: m.owner,
            code_hash: m.codeHash,
            parts: m.parts,
        })
    }

    /// How many models are registered (ids run from 1).
    pub async fn model_count(&self) -> Result<u64> {
        let n = self.contract("modelCount", self.contract.modelCount().call()).await?;
        u64::try_from(n).map_err(|_| Error::Decode(format!("model count {n} out of range")))
    }

    /// The newest registered model with this model hash, if any.
    pub async fn find_model(&self, model_hash: &[u8; 32]) -> Result<Option<EscrowModel>> {
        for id in (1..=self.model_count().await?).rev() {
            let m = self.model(id).await?;
            if &m.model_hash == model_hash {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// Escrow job `id`, with its model.
    pub async fn job(&self, id: EscrowJobId) -> Result<EscrowJob> {
        let j = self.contract("getJob", self.contract.getJob(id.to_u256()).call()).await?;
        let model = self.model(j.modelId).await?;
        Ok(EscrowJob {
            id,
            customer: j.customer,
            model,
            deadline: j.deadline,
            state: JobState::try_from(j.state)?,
            executor: j.executor,
            input_commitment: j.inputCommitment,
            token: j.token,
            price: j.price,
            min_bond: j.minBond,
            outputs_hash: j.outputsHash,
            restricted: j.restricted,
            claimable: j.claimable,
        })
    }

    /// An executor's stake.
    pub async fn stake_of(&self, executor: Address) -> Result<StakeInfo> {
        let s = self.contract("stakes", self.contract.stakes(executor).call()).await?;
        Ok(StakeInfo { amount: s.amount, locked: s.locked, unstaking: s.unstaking, unlock_at: s.unlockAt })
    }

    /// ETH credited to `who` because a push to it failed.
    pub async fn credit_of(&self, who: Address) -> Result<U256> {
        self.contract("credit", self.contract.credit(who).call()).await
    }

    /// Tokens of `token` credited to `who` because a transfer to it failed.
    pub async fn token_credit_of(&self, token: Address, who: Address) -> Result<U256> {
        self.contract("tokenCredit", self.contract.tokenCredit(token, who).call()).await
    }

    /// Withdraws the tokens of `token` credited to the sender, to `to`.
    pub async fn withdraw_token_credit(&self, token: Address, to: Address) -> Result<Submission> {
        self.need_sender()?;
        let call = self.contract.withdrawTokenCredit(token, to).gas(SETUP_GAS);
        let tx = *self.contract("withdrawTokenCredit", call.send()).await?.tx_hash();
        Ok(Submission::from(&self.mined("withdrawTokenCredit", tx).await?))
    }

    /// The escrow's unstake delay (seconds) and slash share (basis points).
    pub async fn terms(&self) -> Result<(u64, u16)> {
        Ok((
            self.contract("unstakeDelay", self.contract.unstakeDelay().call()).await?,
            self.contract("slashBps", self.contract.slashBps().call()).await?,
        ))
    }

    /// `who`'s balance of `token` (`None`: ETH).
    pub async fn balance(&self, token: Option<Address>, who: Address) -> Result<U256> {
        match token {
            None => self.rpc("eth_getBalance", self.provider.get_balance(who)).await,
            Some(t) => self.contract("balanceOf", IERC20::new(t, self.provider.clone()).balanceOf(who).call()).await,
        }
    }

    /// Whether `executor` may be paid for job `id`.
    pub async fn allows(&self, id: EscrowJobId, executor: Address) -> Result<bool> {
        self.contract("allowedExecutor", self.contract.allowedExecutor(id.to_u256(), executor).call()).await
    }

    /// The escrow's job events (`JobPaid`, `JobRefunded`, `ResultPosted`, `Challenged`,
    /// `DisputeResolved`) in blocks `from..=to`, in chain order.
    pub async fn events(&self, from: u64, to: u64) -> Result<Vec<Logged>> {
        use InferenceEscrow::{Challenged, DisputeResolved, JobPaid, JobRefunded, ResultPosted};
        let filter = Filter::new()
            .address(self.address())
            .event_signature(vec![
                JobPaid::SIGNATURE_HASH,
                JobRefunded::SIGNATURE_HASH,
                ResultPosted::SIGNATURE_HASH,
                Challenged::SIGNATURE_HASH,
                DisputeResolved::SIGNATURE_HASH,
            ])
            .from_block(from)
            .to_block(to);
        let logs = self.rpc("eth_getLogs", self.provider.get_logs(&filter)).await?;
        let mut out = Vec::with_capacity(logs.len());
        for log in logs {
            let Some(event) = decode_event(&log)? else { continue };
            let missing = || Error::Decode("a log without its block or transaction (pending?)".into());
            out.push(Logged {
                event,
                tx: log.transaction_hash.ok_or_else(missing)?,
                block: log.block_number.ok_or_else(missing)?,
                block_hash: log.block_hash.ok_or_else(missing)?,
                log_index: log.log_index.ok_or_else(missing)?,
            });
        }
        Ok(out)
    }

    pub(super) fn need_sender(&self) -> Result<Address> {
        self.sender.ok_or(Error::NoSigner)
    }

    /// Waits for a sent transaction to be mined; a revert is an error naming `call`.
    pub(super) async fn mined(&self, call: &'static str, tx: B256) -> Result<TransactionReceipt> {
        let r = self.wait_receipt(tx, Duration::from_secs(120)).await?.ok_or(Error::Timeout { call, secs: 120 })?;
        if !r.status() {
            return Err(Error::Reverted(format!("{call} (tx {tx:#x})")));
        }
        Ok(r)
    }

    /// Registers a model's verifier (with the parts a split verifier calls), model hash and
    /// instance count; returns its escrow model id.
    pub async fn register_model(&self, verifier: Address, parts: &[Address], model_hash: [u8; 32], num_instances: u32) -> Result<u64> {
        self.need_sender()?;
        let call = self.contract.registerModel(verifier, parts.to_vec(), FixedBytes(model_hash), num_instances).gas(SETUP_GAS);
        let tx = *self.contract("registerModel", call.send()).await?.tx_hash();
        let r = self.mined("registerModel", tx).await?;
        let e = r.decoded_log::<InferenceEscrow::ModelRegistered>().ok_or_else(|| Error::Decode("no ModelRegistered event".into()))?;
        u64::try_from(e.data.modelId).map_err(|_| Error::Decode("model id out of range".into()))
    }

    /// Opens (and pays for) a job; returns its id. A token payment is approved first.
    pub async fn open_job(&self, job: &OpenJob) -> Result<EscrowJobId> {
        Ok(self.open_job_mined(job).await?.0)
    }

    /// [`Self::open_job`], with the `openJob` transaction's outcome (gas, fee).
    pub async fn open_job_mined(&self, job: &OpenJob) -> Result<(EscrowJobId, Submission)> {
        self.need_sender()?;
        if let Some(token) = job.token {
            let erc20 = IERC20::new(token, self.provider.clone());
            let approve = erc20.approve(self.address(), job.price).gas(SETUP_GAS);
            let tx = *self.contract("approve", approve.send()).await?.tx_hash();
            self.mined("approve", tx).await?;
        }
        let value = if job.token.is_none() { job.price } else { U256::ZERO };
        let (model, commitment, allow, token) =
            (U256::from(job.model), job.commitment.to_u256(), job.allow.clone(), job.token.unwrap_or_default());
        let pending = match &job.optimistic {
            None => {
                let call = self
                    .contract
                    .openJob(model, commitment, job.deadline, allow, token, job.price, job.min_bond, job.claimable)
                    .value(value)
                    .gas(SETUP_GAS);
                self.contract("openJob", call.send()).await?
            }
            Some(terms) => {
                let call = self
                    .contract
                    .openOptimisticJob(model, commitment, job.deadline, allow, token, job.price, job.min_bond, terms.to_sol())
                    .value(value)
                    .gas(SETUP_GAS);
                self.contract("openOptimisticJob", call.send()).await?
            }
        };
        let r = self.mined("openJob", *pending.tx_hash()).await?;
        let e = r.decoded_log::<InferenceEscrow::JobOpened>().ok_or_else(|| Error::Decode("no JobOpened event".into()))?;
        Ok((EscrowJobId::try_from(e.data.jobId)?, Submission::from(&r)))
    }

    /// Adds `amount` wei to the sender's stake.
    pub async fn stake(&self, amount: U256) -> Result<Submission> {
        self.need_sender()?;
        let tx = *self.contract("stake", self.contract.stake().value(amount).gas(SETUP_GAS).send()).await?.tx_hash();
        Ok(Submission::from(&self.mined("stake", tx).await?))
    }

    /// Starts unstaking `amount` wei of the sender's active stake.
    pub async fn request_unstake(&self, amount: U256) -> Result<Submission> {
        self.need_sender()?;
        let tx = *self.contract("requestUnstake", self.contract.requestUnstake(amount).gas(SETUP_GAS).send()).await?.tx_hash();
        Ok(Submission::from(&self.mined("requestUnstake", tx).await?))
    }

    /// Withdraws what the sender is unstaking, once its delay is over.
    pub async fn withdraw_stake(&self) -> Result<Submission> {
        self.need_sender()?;
        let tx = *self.contract("withdrawStake", self.contract.withdrawStake().gas(SETUP_GAS).send()).await?.tx_hash();
        Ok(Submission::from(&self.mined("withdrawStake", tx).await?))
    }

    /// Claims job `id` for the sender (locking its bond).
    pub async fn claim(&self, id: EscrowJobId) -> Result<Submission> {
        self.need_sender()?;
        let tx = *self.contract("claimJob", self.contract.claimJob(id.to_u256()).gas(SETUP_GAS).send()).await?.tx_hash();
        Ok(Submission::from(&self.mined("claimJob", tx).await?))
    }

    /// Refunds job `id` to its customer (after its deadline; slashes a failed claimant).
    pub async fn refund(&self, id: EscrowJobId) -> Result<Submission> {
        self.need_sender()?;
        let tx = *self.contract("refund", self.contract.refund(id.to_u256()).gas(SETUP_GAS).send()).await?.tx_hash();
        Ok(Submission::from(&self.mined("refund", tx).await?))
    }

    /// Sends `submitProof` with raw instance words and proof bytes (which need not be a valid
    /// proof: tests send tampered ones); returns the hash once the node has it.
    pub async fn send_submit_raw(&self, id: EscrowJobId, instances: Vec<U256>, proof: Vec<u8>, gas: u64) -> Result<B256> {
        self.need_sender()?;
        let call = self.contract.submitProof(id.to_u256(), instances, proof.into()).gas(gas);
        Ok(*self.contract("submitProof", call.send()).await?.tx_hash())
    }

    /// Sends `submitProof` for job `id` with a gas cap (a rejected proof burns what it is
    /// given); returns the transaction's hash as soon as the node has it, so that the caller
    /// can record it before waiting ([`Self::wait_receipt`]).
    pub async fn send_submit_proof(&self, id: EscrowJobId, env: &ProofEnvelope, gas: u64) -> Result<B256> {
        self.send_submit_raw(id, instance_words(env), env.proof.clone(), gas).await
    }

    /// The receipt of a mined transaction, `None` while it is not mined.
    pub async fn receipt(&self, tx: B256) -> Result<Option<TransactionReceipt>> {
        self.rpc("eth_getTransactionReceipt", self.provider.get_transaction_receipt(tx)).await
    }

    /// Whether the node knows the transaction (mined or pending).
    pub async fn known(&self, tx: B256) -> Result<bool> {
        Ok(self.rpc("eth_getTransactionByHash", self.provider.get_transaction_by_hash(tx)).await?.is_some())
    }

    /// Polls for the receipt of `tx` for up to `limit`; `None` if it was not mined by then.
    pub async fn wait_receipt(&self, tx: B256, limit: Duration) -> Result<Option<TransactionReceipt>> {
        let start = std::time::Instant::now();
        loop {
            if let Some(r) = self.receipt(tx).await? {
                return Ok(Some(r));
            }
            if start.elapsed() >= limit {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// One of the escrow's job events, decoded (`None` for another event).
fn decode_event(log: &alloy::rpc::types::Log) -> Result<Option<EscrowEvent>> {
    use InferenceEscrow::{Challenged, DisputeResolved, JobPaid, JobRefunded, ResultPosted};
    fn data<E: SolEvent>(log: &alloy::rpc::types::Log) -> Result<E> {
        Ok(log.log_decode::<E>().map_err(|e| Error::Decode(e.to_string()))?.inner.data)
    }
    let Some(topic) = log.topic0() else { return Ok(None) };
    Ok(Some(match *topic {
        JobPaid::SIGNATURE_HASH => {
            let e: JobPaid = data(log)?;
            EscrowEvent::Paid { job: EscrowJobId::try_from(e.jobId)?, executor: ExecutorId(e.executor), price: e.price }
        }
        JobRefunded::SIGNATURE_HASH => {
            let e: JobRefunded = data(log)?;
            EscrowEvent::Refunded { job: EscrowJobId::try_from(e.jobId)?, amount: e.amount, slashed: e.slashed }
        }
        ResultPosted::SIGNATURE_HASH => {
            let e: ResultPosted = data(log)?;
            EscrowEvent::Posted {
                job: EscrowJobId::try_from(e.jobId)?,
                executor: ExecutorId(e.executor),
                outputs_hash: e.outputsHash,
                outputs: e.outputs,
            }
        }
        Challenged::SIGNATURE_HASH => {
            let e: Challenged = data(log)?;
            EscrowEvent::Challenged { job: EscrowJobId::try_from(e.jobId)?, challenger: e.challenger, prove_by: e.proveBy }
        }
        DisputeResolved::SIGNATURE_HASH => {
            let e: DisputeResolved = data(log)?;
            let outcome = if e.executorProved { DisputeOutcome::Proved } else { DisputeOutcome::Slashed };
            EscrowEvent::Resolved { job: EscrowJobId::try_from(e.jobId)?, winner: e.winner, outcome, reward: e.reward }
        }
        _ => return Ok(None),
    }))
}
