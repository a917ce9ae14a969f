//! The CUDA backend when the crate is built without feature `cuda`: same API, always unavailable.

use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};

use crate::error::{Error, Result};
use crate::msm::MsmBackend;

/// The CUDA MSM (compiled out: build with `--features cuda`).
#[derive(Debug)]
pub struct CudaMsm {
    _private: (),
}

impl CudaMsm {
    /// Always [`Error::CudaUnavailable`]: this build has no CUDA support.
    pub fn new() -> Result<Self> {
        Err(unavailable())
    }
}

fn unavailable() -> Error {
    Error::CudaUnavailable { reason: "zkinfer-prover was built without the `cuda` feature".into() }
}

impl MsmBackend for CudaMsm {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn msm(&self, _scalars: &[Fr], _bases: &[G1Affine]) -> Result<G1> {
        Err(unavailable())
    }
}
