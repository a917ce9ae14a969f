//! Optimistic jobs on the escrow: their terms, the posted result and its dispute, and the
//! calls that move them (post, finalize, challenge, resolve with a proof, slash).

use alloy::primitives::{Address, B256, U256};
use zkinfer_protocol::EscrowJobId;

use super::client::{EscrowClient, SETUP_GAS};
use super::{InferenceEscrow, Submission};
use crate::error::{Error, Result};

/// What an optimistic job agrees to (`InferenceEscrow.OptimisticTerms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptimisticTerms {
    /// Probability, in basis points, that a validator re-executes the posted result.
    pub audit_bps: u16,
    /// Seconds after posting during which the result can be challenged.
    pub challenge_window: u32,
    /// Seconds a challenged executor has to prove its posted outputs.
    pub prove_window: u32,
    /// The bond a challenger posts (wei).
    pub challenge_bond: U256,
}

impl OptimisticTerms {
    pub(super) fn to_sol(self) -> InferenceEscrow::OptimisticTerms {
        InferenceEscrow::OptimisticTerms {
            auditBps: self.audit_bps,
            challengeWindow: self.challenge_window,
            proveWindow: self.prove_window,
            challengeBond: self.challenge_bond,
        }
    }

    fn from_sol(t: &InferenceEscrow::OptimisticTerms) -> Self {
        OptimisticTerms {
            audit_bps: t.auditBps,
            challenge_window: t.challengeWindow,
            prove_window: t.proveWindow,
            challenge_bond: t.challengeBond,
        }
    }
}

/// An optimistic job's result and dispute as the escrow holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptimisticState {
    /// Its terms.
    pub terms: OptimisticTerms,
    /// Keccak-256 of the posted outputs (zero before posting).
    pub outputs_hash: B256,
    /// When the outputs were posted (unix seconds; 0 before).
    pub posted_at: u64,
    /// The block they were posted in.
    pub posted_block: u64,
    /// When a challenged executor's time to prove ends (0 unchallenged).
    pub prove_by: u64,
    /// Who challenged (zero unchallenged).
    pub challenger: Address,
}

impl OptimisticState {
    /// Whether the job was opened as optimistic.
    pub fn is_optimistic(&self) -> bool {
        self.terms.challenge_window != 0
    }

    /// The last second at which the posted result can be challenged.
    pub fn challenge_ends(&self) -> u64 {
        self.posted_at + u64::from(self.terms.challenge_window)
    }
}

/// How a dispute ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisputeOutcome {
    /// The executor proved its posted outputs: it took the challenger's bond.
    Proved,
    /// The executor did not prove them in time: its bond was slashed.
    Slashed,
}

impl EscrowClient {
    /// Escrow job `id`'s optimistic terms and result (all zero for a ZK job).
    pub async fn optimistic(&self, id: EscrowJobId) -> Result<OptimisticState> {
        let o = self.contract("getOptimistic", self.contract.getOptimistic(id.to_u256()).call()).await?;
        Ok(OptimisticState {
            terms: OptimisticTerms::from_sol(&o.terms),
            outputs_hash: o.outputsHash,
            posted_at: o.postedAt,
            posted_block: o.postedBlock,
            prove_by: o.proveBy,
            challenger: o.challenger,
        })
    }

    /// The seed that decides whether job `id`'s posted result is audited: zero until the
    /// block after the posting block exists (and once it is more than 256 blocks old).
    pub async fn audit_seed(&self, id: EscrowJobId) -> Result<U256> {
        self.contract("auditSeed", self.contract.auditSeed(id.to_u256()).call()).await
    }

    /// The latest block's timestamp: optimistic windows run on the chain's clock.
    pub async fn chain_time(&self) -> Result<u64> {
        use alloy::providers::Provider;
        let block = self.rpc("eth_getBlockByNumber", self.provider().get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)).await?;
        block.map(|b| b.header.timestamp).ok_or_else(|| Error::Decode("the chain has no latest block".into()))
    }

    /// Sends `postResult` for job `id` with its output instances; returns the transaction's
    /// hash once the node has it (record it before waiting, [`Self::wait_receipt`]).
    pub async fn send_post_result(&self, id: EscrowJobId, outputs: Vec<U256>) -> Result<B256> {
        self.need_sender()?;
        let call = self.contract.postResult(id.to_u256(), outputs).gas(SETUP_GAS);
        Ok(*self.contract("postResult", call.send()).await?.tx_hash())
    }

    /// Pays job `id`'s posted result once its challenge window closed unchallenged. Like
    /// [`Self::challenge`] and [`Self::slash_unproven`], it is simulated first: a call the
    /// escrow would refuse fails with its reason (`WindowOpen`, `WrongState`, …) and costs nothing.
    pub async fn finalize(&self, id: EscrowJobId) -> Result<Submission> {
        self.need_sender()?;
        let call = self.contract.finalize(id.to_u256()).gas(SETUP_GAS);
        self.contract("finalize", call.call()).await?;
        let tx = *self.contract("finalize", call.send()).await?.tx_hash();
        Ok(Submission::from(&self.mined("finalize", tx).await?))
    }

    /// Challenges job `id`'s posted result, posting `bond` wei (its terms' challenge bond).
    pub async fn challenge(&self, id: EscrowJobId, bond: U256) -> Result<Submission> {
        self.need_sender()?;
        let call = self.contract.challenge(id.to_u256()).value(bond).gas(SETUP_GAS);
        self.contract("challenge", call.call()).await?;
        let tx = *self.contract("challenge", call.send()).await?.tx_hash();
        Ok(Submission::from(&self.mined("challenge", tx).await?))
    }

    /// Sends `resolveWithProof` for disputed job `id` (raw instance words and proof bytes);
    /// returns the transaction's hash once the node has it.
    pub async fn send_resolve_raw(&self, id: EscrowJobId, instances: Vec<U256>, proof: Vec<u8>, gas: u64) -> Result<B256> {
        self.need_sender()?;
        let call = self.contract.resolveWithProof(id.to_u256(), instances, proof.into()).gas(gas);
        Ok(*self.contract("resolveWithProof", call.send()).await?.tx_hash())
    }

    /// Ends job `id`'s dispute after its executor failed to prove in time (slashing it).
    pub async fn slash_unproven(&self, id: EscrowJobId) -> Result<Submission> {
        self.need_sender()?;
        let call = self.contract.slashUnproven(id.to_u256()).gas(SETUP_GAS);
        self.contract("slashUnproven", call.call()).await?;
        let tx = *self.contract("slashUnproven", call.send()).await?.tx_hash();
        Ok(Submission::from(&self.mined("slashUnproven", tx).await?))
    }
}
