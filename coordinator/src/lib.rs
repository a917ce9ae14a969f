//! The proving market's coordinator, as a service ([`serve`]): the job store ([`store`],
//! SQLite or Postgres), the HTTP API ([`routes`], with its OpenAPI document [`openapi`]),
//! adaptive routing ([`dispatch`], [`routing`]), delivered-proof checks ([`check`],
//! [`registry`]), settlement from the escrow's events ([`chain`]), sampled re-execution of
//! optimistic results ([`audit`]) and metrics ([`metrics`]).
//!
//! The wire types, signatures and sealing are the protocol crate's
//! ([`zkinfer_protocol`]), which clients share; the escrow client is
//! `zkinfer_verifier_contract::escrow`'s.
//!
//! # Feature flags
//! None.

pub mod audit;
pub mod chain;
pub mod check;
pub mod clock;
pub mod dispatch;
mod error;
pub mod metrics;
pub mod openapi;
pub mod policy;
pub mod registry;
pub mod routes;
pub mod routing;
mod service;
pub mod store;

pub use error::{Error, EscrowMismatch, Result};
pub use policy::Policy;
pub use service::{serve, ChainConfig, Config, Service};
pub use zkinfer_protocol::JobState;
