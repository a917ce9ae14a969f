//! The proving market's coordinator: the job lifecycle ([`state`]), persistence ([`store`]),
//! the HTTP API ([`api`]) and adaptive routing ([`routing`]).
//!
//! Status: a first slice of issue #5. Delivered proofs are verified ([`check`]); model
//! registration over HTTP, sealed inputs, executor signatures and on-chain settlement are
//! not built yet (see the README).
//!
//! # Feature flags
//! None.

pub mod api;
pub mod auth;
pub mod check;
mod error;
pub mod routing;
pub mod state;
pub mod store;

pub use error::{Error, Result};
