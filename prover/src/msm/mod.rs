//! Multi-scalar multiplication (MSM) over BN254 G1: one seam, several backends.
//!
//! `Σ scalars[i]·bases[i]` is most of the work of a KZG commitment. [`MsmBackend`] is the seam;
//! [`backend_by_name`] picks an implementation at run time:
//!
//! | name | what | notes |
//! |---|---|---|
//! | `halo2curves` | [`Halo2CurvesMsm`]: halo2's own `best_multiexp` | the baseline |
//! | `arkworks` | [`ArkworksMsm`]: `ark_ec::VariableBaseMSM` on converted points | |
//! | `pippenger` | [`PippengerMsm`]: our variable-base Pippenger | signed digits, batch-affine buckets |
//! | `cuda` | [`CudaMsm`]: NVRTC-compiled kernels | feature `cuda`; compile-checked and run on the CPU in tests, not yet run on a GPU |
//!
//! The fast path for fixed bases (an SRS) is [`PrecomputedBases`]: built once per SRS, it turns
//! every MSM into a single bucket pass with no doublings; on 2 cores it is 1.5-1.7x faster than
//! `halo2curves` from 2^16 to 2^20 terms (`papers/benchmarks.md`, "MSM backends"). It is bound
//! to its bases, so it is not in the by-name table; it implements [`MsmBackend`] too, checking
//! that the bases given are its own. It also sums runs of equal consecutive scalars base-first
//! (`runs`), since a proof's grand products and sorted lookup columns are full of them.
//!
//! Every backend is tested against [`NaiveMsm`] (double-and-add) on seeded random inputs with
//! zero, one and minus-one scalars, repeated and negated bases and the point at infinity.
//!
//! # In proving
//! [`crate::commit`] puts these backends inside halo2's prover and keygen: every commitment of
//! a proof but the two of the SHPLONK opening goes through the chosen backend, and each one is
//! the group element halo2's own MSM gives (checked inside real proofs by
//! [`crate::CommitParams::cross_checked`], `prover/tests/commit.rs`), so the verifier is
//! unchanged.

mod arkworks;
mod bucket;
mod cuda;
mod digits;
mod halo2curves;
mod naive;
mod pippenger;
mod precomputed;
mod reduce;
mod runs;

use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};

pub use self::arkworks::ArkworksMsm;
pub use self::cuda::CudaMsm;
pub use self::halo2curves::Halo2CurvesMsm;
pub use self::naive::NaiveMsm;
pub use self::pippenger::PippengerMsm;
pub use self::precomputed::PrecomputedBases;
use crate::error::{Error, Result};

/// An MSM implementation: `Σ scalars[i]·bases[i]` over BN254 G1.
pub trait MsmBackend: Send + Sync {
    /// The name [`backend_by_name`] knows it by.
    fn name(&self) -> &'static str;

    /// Computes `Σ scalars[i]·bases[i]`.
    ///
    /// Errors with [`Error::MsmLength`] when the slices differ in length. The point at
    /// infinity is allowed among the bases, and any scalar among the scalars.
    fn msm(&self, scalars: &[Fr], bases: &[G1Affine]) -> Result<G1>;
}

/// The backends that can be chosen by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// halo2's `best_multiexp` (halo2curves `msm_best`).
    Halo2Curves,
    /// arkworks' `VariableBaseMSM`.
    Arkworks,
    /// Our variable-base Pippenger.
    Pippenger,
    /// The CUDA kernels (feature `cuda` and a GPU).
    Cuda,
}

impl Backend {
    /// Every backend, in the order of the table above.
    pub const ALL: [Backend; 4] = [Backend::Halo2Curves, Backend::Arkworks, Backend::Pippenger, Backend::Cuda];

    /// The backend's name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Halo2Curves => "halo2curves",
            Backend::Arkworks => "arkworks",
            Backend::Pippenger => "pippenger",
            Backend::Cuda => "cuda",
        }
    }

    /// Parses a name (exact, lower case).
    pub fn from_name(name: &str) -> Result<Self> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| Error::UnknownMsmBackend { name: name.to_owned(), known: "halo2curves, arkworks, pippenger, cuda" })
    }

    /// Builds the backend. Only `Cuda` can fail ([`Error::CudaUnavailable`]): callers that want
    /// a GPU when there is one fall back to a CPU backend on that error.
    pub fn build(self) -> Result<Box<dyn MsmBackend>> {
        Ok(match self {
            Backend::Halo2Curves => Box::new(Halo2CurvesMsm),
            Backend::Arkworks => Box::new(ArkworksMsm),
            Backend::Pippenger => Box::new(PippengerMsm::default()),
            Backend::Cuda => Box::new(CudaMsm::new()?),
        })
    }
}

/// The backend called `name`: `halo2curves`, `arkworks`, `pippenger` or `cuda`.
pub fn backend_by_name(name: &str) -> Result<Box<dyn MsmBackend>> {
    Backend::from_name(name)?.build()
}

/// Hints the CPU to load `value` into cache (a no-op off x86-64).
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86-64 baseline, and a prefetch is only a hint: it never
        // faults and does not change memory.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Errors unless there are as many scalars as bases.
pub(crate) fn check_lengths(scalars: &[Fr], bases: &[G1Affine]) -> Result<()> {
    if scalars.len() == bases.len() {
        Ok(())
    } else {
        Err(Error::MsmLength { scalars: scalars.len(), bases: bases.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_error() {
        for b in Backend::ALL {
            assert_eq!(Backend::from_name(b.name()).expect("known name"), b);
        }
        assert!(matches!(backend_by_name("gpu"), Err(Error::UnknownMsmBackend { .. })));
        assert_eq!(backend_by_name("pippenger").expect("cpu backend").name(), "pippenger");
    }

    #[test]
    fn length_mismatch_is_an_error() {
        assert!(matches!(check_lengths(&[Fr::one()], &[]), Err(Error::MsmLength { scalars: 1, bases: 0 })));
    }
}
