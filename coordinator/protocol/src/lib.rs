//! The proving market's protocol, shared by the coordinator, executors and customers: the
//! typed request and response bodies ([`types`]), the newtypes that cross the wire
//! ([`Commitment`], [`JobId`], [`EscrowJobId`], [`ExecutorId`], [`ModelId`], [`Wei`],
//! [`HexBytes`]), the job lifecycle ([`JobState`]), executor request signatures ([`auth`]),
//! sealed inputs ([`seal`]), optimistic verification's rules ([`optimistic`]) and one typed HTTP client with a customer half and an executor
//! half ([`client`]).
//!
//! It depends on no server crate: the coordinator and every client depend on it, never on
//! each other.
//!
//! # Feature flags
//! None.

pub mod auth;
mod binding;
pub mod client;
mod commitment;
mod error;
mod hexbytes;
mod ids;
pub mod optimistic;
pub mod seal;
mod state;
pub mod types;

pub use binding::{Binding, Salt};
pub use commitment::Commitment;
pub use error::{Error, ErrorBody, ErrorCode, ErrorDetail, Result};
pub use hexbytes::{to_hex, Hash32, HexBytes};
pub use ids::{EscrowJobId, ExecutorId, JobId, ModelId, Wei};
pub use optimistic::Verification;
pub use state::{JobState, ALL_STATES};
