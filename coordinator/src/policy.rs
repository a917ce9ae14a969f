//! What the coordinator accepts: the terms an escrow job must meet, what executors need to
//! get work, who may register models, and what optimistic jobs need.

use std::collections::HashSet;
use std::time::Duration;

use alloy::primitives::U256;
use zkinfer_protocol::optimistic::OptimisticPolicy;

/// The coordinator's terms.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The least time an escrow job must have left at submission (proving, delivery and the
    /// payment all fit before it).
    pub min_deadline: Duration,
    /// The least active stake (wei) an executor needs to be leased jobs (on chain).
    pub min_stake: U256,
    /// The least price (wei) a paid job must offer, besides what its executors ask.
    pub min_price: U256,
    /// The longest heartbeats can keep one lease alive.
    pub max_lease: Duration,
    /// How long a model registration (compile and keygen) may take.
    pub register_timeout: Duration,
    /// API keys that may register models (`POST /v1/models`).
    pub admin_keys: HashSet<String>,
    /// What an optimistic job's escrow terms must meet.
    pub optimistic: OptimisticPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_deadline: Duration::from_secs(300),
            min_stake: U256::from(1u64),
            min_price: U256::ZERO,
            max_lease: Duration::from_secs(3_600),
            register_timeout: Duration::from_secs(1_800),
            admin_keys: HashSet::new(),
            optimistic: OptimisticPolicy::default(),
        }
    }
}
