//! The proving market's coordinator: the job lifecycle ([`state`]), persistence ([`store`]),
//! the HTTP API ([`api`]) and adaptive routing ([`routing`]).
//!
//! Delivered proofs are verified ([`check`]); executors sign their requests ([`auth`]);
//! inputs can be sealed to executors with HPKE ([`seal`]); jobs can be paid through the
//! on-chain escrow, and are settled when its payment event is seen ([`chain`]); models can be
//! registered over HTTP ([`registry`]). The store runs on SQLite or Postgres.
//!
//! # Feature flags
//! None.

pub mod api;
pub mod auth;
pub mod chain;
pub mod check;
mod error;
pub mod openapi;
pub mod registry;
pub mod routing;
pub mod seal;
pub mod state;
pub mod store;

pub use error::{Error, Result};
