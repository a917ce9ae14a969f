//! The baseline: halo2's `best_multiexp`, which is halo2curves-axiom's `msm_best` (Booth-encoded
//! windows, batch-affine buckets, one rayon task per window). It is what every commitment
//! inside a halo2-axiom proof uses.

use halo2_proofs::arithmetic::best_multiexp;
use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};
use halo2_proofs::halo2curves::group::Group;

use super::pippenger::drop_infinity;
use super::{check_lengths, MsmBackend};
use crate::error::Result;

/// halo2's own MSM, behind the [`MsmBackend`] seam.
#[derive(Clone, Copy, Debug, Default)]
pub struct Halo2CurvesMsm;

impl MsmBackend for Halo2CurvesMsm {
    fn name(&self) -> &'static str {
        "halo2curves"
    }

    fn msm(&self, scalars: &[Fr], bases: &[G1Affine]) -> Result<G1> {
        check_lengths(scalars, bases)?;
        // msm_best's batch-affine path (taken from about 8k terms on) panics on a base at
        // infinity (an unwrapped CtOption in halo2curves-axiom 0.7.3). Such terms add nothing,
        // so they are dropped first (a copy only when there is one).
        let (scalars, bases) = drop_infinity(scalars, bases);
        if scalars.is_empty() {
            return Ok(G1::identity());
        }
        Ok(best_multiexp(&scalars, &bases))
    }
}
