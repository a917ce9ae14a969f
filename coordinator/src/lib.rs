//! The proving market's coordinator: the job lifecycle ([`state`]), persistence ([`store`]),
//! and adaptive routing ([`routing`]).
//!
//! Status: a first slice of issue #5. The HTTP API, executors, sealed inputs, signatures
//! and on-chain settlement are not built yet (see the README).
//!
//! # Feature flags
//! None.

mod error;
pub mod routing;
pub mod state;
pub mod store;

pub use error::{Error, Result};
