//! The `InferenceEscrow` contract (`contracts/InferenceEscrow.sol`): bindings generated from
//! its ABI by alloy's `sol!` (`abi/InferenceEscrow.abi.json`, checked against the source by a
//! test), its job states as an enum, and the one client everyone uses ([`EscrowClient`]).

mod batch;
mod client;

use alloy::primitives::{Address, B256, U256};
use zkinfer_protocol::{EscrowJobId, ExecutorId};

pub use batch::EscrowBatchVerifier;
pub use client::{EscrowClient, OpenJob, StakeInfo, Submission, RPC_TIMEOUT};
pub use optimistic::{DisputeOutcome, OptimisticState, OptimisticTerms};

mod optimistic;

/// The generated bindings (their items are documented by the contract's NatSpec, not here;
/// their functions take as many arguments as the contract's).
#[allow(missing_docs, clippy::too_many_arguments)]
mod bindings {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug, PartialEq, Eq)]
        InferenceEscrow,
        "abi/InferenceEscrow.abi.json"
    );

    alloy::sol! {
        /// The ERC-20 calls the market makes (and the test token's mint).
        #[sol(rpc)]
        interface IERC20 {
            function approve(address spender, uint256 amount) external returns (bool);
            function balanceOf(address owner) external view returns (uint256);
            function mint(address to, uint256 amount) external;
            function setBlocked(address who, bool isBlocked) external;
            function setGasBurner(bool burns) external;
        }
    }
}

pub use bindings::{InferenceEscrow, IERC20};

/// An escrow job's state (`InferenceEscrow.State`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// No such job.
    None,
    /// Paid in, not yet claimed.
    Open,
    /// Claimed by one executor.
    Claimed,
    /// Paid out to an executor.
    Paid,
    /// Returned to the customer.
    Refunded,
    /// An optimistic job's outputs are posted; its challenge window runs.
    Posted,
    /// An optimistic job's posted outputs are challenged; its executor must prove them.
    Disputed,
}

impl TryFrom<u8> for JobState {
    type Error = crate::Error;
    fn try_from(v: u8) -> crate::Result<Self> {
        Ok(match v {
            0 => JobState::None,
            1 => JobState::Open,
            2 => JobState::Claimed,
            3 => JobState::Paid,
            4 => JobState::Refunded,
            5 => JobState::Posted,
            6 => JobState::Disputed,
            other => return Err(crate::Error::Decode(format!("escrow job state {other} is not one the contract defines"))),
        })
    }
}

impl JobState {
    /// Whether a valid proof can still be paid for (by `submitProof`).
    pub fn is_payable(self) -> bool {
        matches!(self, JobState::Open | JobState::Claimed)
    }
}

impl EscrowEvent {
    /// The escrow job the event is about.
    pub fn job(&self) -> EscrowJobId {
        match self {
            EscrowEvent::Paid { job, .. }
            | EscrowEvent::Posted { job, .. }
            | EscrowEvent::Challenged { job, .. }
            | EscrowEvent::Resolved { job, .. }
            | EscrowEvent::Refunded { job, .. } => *job,
        }
    }
}

/// Keccak-256 of output instances as the escrow hashes them (`keccak256(abi.encodePacked(outputs))`).
pub fn outputs_hash(outputs: &[U256]) -> B256 {
    let mut packed = Vec::with_capacity(outputs.len() * 32);
    for o in outputs {
        packed.extend_from_slice(&o.to_be_bytes::<32>());
    }
    alloy::primitives::keccak256(packed)
}

/// A model registered in the escrow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscrowModel {
    /// Its id in the escrow.
    pub id: u64,
    /// The verifier contract proofs are checked with.
    pub verifier: Address,
    /// The zkinfer model hash it was registered with.
    pub model_hash: [u8; 32],
    /// How many public instances its proofs have.
    pub num_instances: u32,
    /// Who registered it.
    pub owner: Address,
    /// keccak-256 of the code hashes of the verifier and its parts, as recorded at registration.
    pub code_hash: B256,
    /// The parts a split verifier calls, in order (empty for one contract).
    pub parts: Vec<Address>,
}

/// An escrow job, with its model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscrowJob {
    /// The job.
    pub id: EscrowJobId,
    /// Who paid.
    pub customer: Address,
    /// Its model.
    pub model: EscrowModel,
    /// The unix time after which it can be refunded.
    pub deadline: u64,
    /// Its state.
    pub state: JobState,
    /// The claimant, or once paid, the payee.
    pub executor: Address,
    /// The commitment to the input its proof must bind, as stored.
    pub input_commitment: U256,
    /// The token it pays in (zero: ETH).
    pub token: Address,
    /// The payment held (wei, or the token's smallest unit).
    pub price: U256,
    /// The active stake an executor needs to be paid or to claim (wei).
    pub min_bond: U256,
    /// Keccak-256 of the outputs it was paid for.
    pub outputs_hash: B256,
    /// Whether only allow-listed executors may be paid.
    pub restricted: bool,
    /// Whether an executor may claim (lock) it.
    pub claimable: bool,
}

/// What the escrow did, as its events say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EscrowEvent {
    /// `JobPaid`: a valid proof paid an executor.
    Paid {
        /// The job.
        job: EscrowJobId,
        /// The payee.
        executor: ExecutorId,
        /// The amount paid.
        price: U256,
    },
    /// `ResultPosted`: an optimistic job's executor posted its outputs (bonding its stake).
    Posted {
        /// The job.
        job: EscrowJobId,
        /// The executor.
        executor: ExecutorId,
        /// Keccak-256 of the outputs (their 32-byte words, packed).
        outputs_hash: B256,
        /// The output instances posted.
        outputs: Vec<U256>,
    },
    /// `Challenged`: somebody disputed the posted outputs, with a bond.
    Challenged {
        /// The job.
        job: EscrowJobId,
        /// Who challenged.
        challenger: Address,
        /// The unix time by which the executor must prove its outputs.
        prove_by: u64,
    },
    /// `DisputeResolved`: a dispute ended.
    Resolved {
        /// The job.
        job: EscrowJobId,
        /// Who won it.
        winner: Address,
        /// How.
        outcome: DisputeOutcome,
        /// What the winner got besides its own bond or payment (wei).
        reward: U256,
    },
    /// `JobRefunded`: the customer got the payment back (and a failed claimant's slashed bond).
    Refunded {
        /// The job.
        job: EscrowJobId,
        /// The payment returned.
        amount: U256,
        /// The bond slashed to the customer (wei).
        slashed: U256,
    },
}

/// An event with where it was logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// The event.
    pub event: EscrowEvent,
    /// Its transaction.
    pub tx: B256,
    /// Its block.
    pub block: u64,
    /// Its block's hash (a reorg changes it).
    pub block_hash: B256,
    /// Its index in the block.
    pub log_index: u64,
}

/// The escrow job a proof submission needs: 32-byte big-endian words of the proof's
/// instances, as `submitProof` and the verifier take them.
pub fn instance_words(env: &zkinfer_prover::ProofEnvelope) -> Vec<U256> {
    env.instances.iter().map(|b| U256::from_le_bytes(*b)).collect()
}
