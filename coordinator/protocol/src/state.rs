//! The job lifecycle as an explicit state machine.
//!
//! ```text
//! queued ──claim──▶ assigned ──start──▶ proving ──proof──▶ proved ──payment seen──▶ settled
//!   ▲                  │                   │                  │
//!   └── lease expired ─┴───────────────────┘                  └─ deadline ─▶ refunded
//! queued / assigned / proving ── deadline ──▶ expired ──▶ refunded
//! proving ── executor reports failure ──▶ failed
//!
//! optimistic:  proving ──result posted──▶ posted ──window closed──▶ settled
//!                                            └──challenge──▶ challenged ──proof──▶ settled
//!                                                                └──no proof──▶ slashed
//! settled ──▶ proved / posted / challenged, refunded ──▶ expired / proved, slashed ──▶
//! challenged, challenged ──▶ posted: only when a reorg removed the event
//! ```

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for an executor.
    Queued,
    /// Leased to an executor that has not started proving.
    Assigned,
    /// The executor is proving (it renews its lease with heartbeats).
    Proving,
    /// A proof was received and verified by the coordinator.
    Proved,
    /// The escrow's payment event was seen on chain.
    Settled,
    /// Every attempt failed.
    Failed,
    /// The deadline passed before a proof.
    Expired,
    /// The customer was refunded on chain.
    Refunded,
    /// An optimistic job's outputs are posted on chain; its challenge window runs.
    Posted,
    /// An optimistic job's outputs were challenged; its executor must prove them.
    Challenged,
    /// The challenged executor did not prove its outputs: its bond was slashed and the
    /// customer refunded.
    Slashed,
}

/// Every state (the happy path first, in order).
pub const ALL_STATES: [JobState; 11] = [
    JobState::Queued,
    JobState::Assigned,
    JobState::Proving,
    JobState::Proved,
    JobState::Settled,
    JobState::Failed,
    JobState::Expired,
    JobState::Refunded,
    JobState::Posted,
    JobState::Challenged,
    JobState::Slashed,
];

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        JobState::parse(s).ok_or_else(|| crate::Error::Malformed { what: "job state", value: s.chars().take(40).collect() })
    }
}

impl JobState {
    /// The name stored in the database and shown to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Assigned => "assigned",
            JobState::Proving => "proving",
            JobState::Proved => "proved",
            JobState::Settled => "settled",
            JobState::Failed => "failed",
            JobState::Expired => "expired",
            JobState::Refunded => "refunded",
            JobState::Posted => "posted",
            JobState::Challenged => "challenged",
            JobState::Slashed => "slashed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        ALL_STATES.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the lifecycle allows `self → next`. Every state change goes through this.
    pub fn can_move_to(self, next: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, next),
            (Queued, Assigned)
                | (Assigned, Proving)
                | (Assigned | Proving, Queued) // lease expired, or a failed attempt with attempts left
                | (Proving, Proved)
                | (Proving, Failed)
                | (Proved, Settled)
                | (Queued | Assigned | Proving, Expired)
                | (Expired | Proved, Refunded)
                // Optimistic: the result is posted (by the lease holder, or seen on chain
                // after its lease or the coordinator's deadline lapsed), then paid, or
                // challenged and then proved or slashed.
                | (Queued | Assigned | Proving | Expired, Posted)
                | (Posted, Challenged)
                | (Posted | Challenged, Settled)
                | (Challenged, Slashed)
        )
    }

    /// Whether a reorg that removed the payment or refund that moved the job to `self` may
    /// move it back to `prev` (settled → proved, refunded → expired or proved). This is the
    /// only way out of a "terminal" state, and only the chain watcher takes it.
    pub fn can_revert_to(self, prev: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, prev),
            (Settled, Proved | Posted | Challenged) | (Refunded, Expired | Proved) | (Slashed, Challenged) | (Challenged, Posted)
        )
    }

    /// Whether nothing more can happen to the job.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Settled | JobState::Failed | JobState::Refunded | JobState::Slashed)
    }

    /// Whether the job is at or past `other` in the happy path (queued → assigned → proving →
    /// proved → settled); the other states are only "at" themselves.
    pub fn reached(self, other: JobState) -> bool {
        let rank = |s: JobState| ALL_STATES[..5].iter().position(|&x| x == s);
        match (rank(self), rank(other)) {
            (Some(a), Some(b)) => a >= b,
            _ => self == other,
        }
    }

    /// Whether an executor holds a lease on the job.
    pub fn is_leased(self) -> bool {
        matches!(self, JobState::Assigned | JobState::Proving)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ALL_STATES {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::parse("paid"), None);
    }

    #[test]
    fn terminal_states_go_nowhere_and_payment_needs_a_proof() {
        for from in ALL_STATES.into_iter().filter(|s| s.is_terminal()) {
            assert!(ALL_STATES.iter().all(|&to| !from.can_move_to(to)), "{from:?}");
        }
        // Payment follows a proof, or an optimistic result that was posted on chain.
        for from in ALL_STATES {
            let verified = matches!(from, JobState::Proved | JobState::Posted | JobState::Challenged);
            assert_eq!(from.can_move_to(JobState::Settled), verified, "{from:?}");
        }
        // Only a challenge leads to a slash.
        for from in ALL_STATES {
            assert_eq!(from.can_move_to(JobState::Slashed), from == JobState::Challenged, "{from:?}");
        }
        // Nothing skips proving.
        assert!(!JobState::Queued.can_move_to(JobState::Proved));
        assert!(!JobState::Assigned.can_move_to(JobState::Proved));
    }
}
