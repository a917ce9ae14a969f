//! Integration tests of the circuits crate, compiled as one binary.

mod builder;
mod errors;
mod models;
mod ops;
mod vision;
