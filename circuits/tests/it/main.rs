//! Integration tests of the circuits crate, compiled as one binary.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

mod bitexact;
mod builder;
mod decoder_ops;
mod errors;
mod masks;
mod models;
mod ops;
mod vision;
