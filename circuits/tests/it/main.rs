//! Integration tests of the circuits crate, compiled as one binary.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

mod bitexact;
mod builder;
mod errors;
mod models;
mod ops;
mod vision;
