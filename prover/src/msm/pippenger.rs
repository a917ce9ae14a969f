//! Our variable-base Pippenger: signed `c`-bit digits, `2^(c-1)` batch-affine buckets per
//! window, one rayon task per window, windows combined with `c` doublings each.
//!
//! For bases that do not change (an SRS), [`super::PrecomputedBases`] is the faster path.

use std::borrow::Cow;

use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};
use halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_proofs::halo2curves::group::Group;
use rayon::prelude::*;

use super::bucket::Buckets;
use super::digits::{bucket_of, num_windows, scalar_digits, MAX_WINDOW, MIN_WINDOW};
use super::{check_lengths, MsmBackend};
use crate::error::{Error, Result};

/// Variable-base Pippenger MSM. The window is chosen from the input size unless fixed.
#[derive(Clone, Copy, Debug, Default)]
pub struct PippengerMsm {
    window: Option<usize>,
}

impl PippengerMsm {
    /// A Pippenger MSM that always uses `c`-bit windows.
    pub fn with_window(c: usize) -> Result<Self> {
        check_window(c)?;
        Ok(PippengerMsm { window: Some(c) })
    }

    /// The window used for `n` terms.
    pub fn window_for(&self, n: usize) -> usize {
        self.window.unwrap_or_else(|| best_window(n))
    }
}

impl MsmBackend for PippengerMsm {
    fn name(&self) -> &'static str {
        "pippenger"
    }

    fn msm(&self, scalars: &[Fr], bases: &[G1Affine]) -> Result<G1> {
        check_lengths(scalars, bases)?;
        let (scalars, bases) = drop_infinity(scalars, bases);
        if scalars.is_empty() {
            return Ok(G1::identity());
        }
        let c = self.window_for(scalars.len());
        let w = num_windows(c);
        let mut digits = vec![0i32; scalars.len() * w];
        digits.par_chunks_mut(w).zip(scalars.par_iter()).for_each(|(d, s)| scalar_digits(s, c, d));
        let windows: Vec<G1> = (0..w)
            .into_par_iter()
            .map(|j| {
                let mut buckets = Buckets::new(1 << (c - 1), batch_capacity(c));
                for (i, base) in bases.iter().enumerate() {
                    if let Some((b, negate)) = bucket_of(digits[i * w + j]) {
                        buckets.add(b, base, negate);
                    }
                }
                buckets.finish().0
            })
            .collect();
        // Horner from the top window: acc = acc·2^c + window_j.
        Ok(windows.iter().rev().fold(G1::identity(), |acc, win| (0..c).fold(acc, |a, _| a.double()) + win))
    }
}

/// Errors unless `c` is a supported window size.
pub(crate) fn check_window(c: usize) -> Result<()> {
    if (MIN_WINDOW..=MAX_WINDOW).contains(&c) {
        Ok(())
    } else {
        Err(Error::MsmWindow { c, min: MIN_WINDOW, max: MAX_WINDOW })
    }
}

/// Batch size for `2^(c-1)` buckets: large enough to amortise the inversion (a few µs),
/// small enough that few points collide with a bucket already in the batch.
pub(crate) fn batch_capacity(c: usize) -> usize {
    ((1usize << (c - 1)) / 16).clamp(4, 512)
}

/// The window minimising the work model `W(c)·(n + 2^c)`: per window, one bucket addition per
/// term and about `2^c` addition-equivalents to reduce `2^(c-1)` buckets (two projective
/// additions each, each about twice a batch-affine one).
fn best_window(n: usize) -> usize {
    (MIN_WINDOW..=20).min_by_key(|&c| num_windows(c) * (n + (1usize << c))).unwrap_or(MIN_WINDOW)
}

/// The terms whose base is not the point at infinity (those add nothing). Borrows when all are.
pub(crate) fn drop_infinity<'a>(scalars: &'a [Fr], bases: &'a [G1Affine]) -> (Cow<'a, [Fr]>, Cow<'a, [G1Affine]>) {
    if !bases.iter().any(|b| bool::from(b.is_identity())) {
        return (Cow::Borrowed(scalars), Cow::Borrowed(bases));
    }
    let (s, b): (Vec<Fr>, Vec<G1Affine>) =
        scalars.iter().zip(bases).filter(|(_, b)| !bool::from(b.is_identity())).map(|(s, b)| (*s, *b)).unzip();
    (Cow::Owned(s), Cow::Owned(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_grow_with_size_and_bad_windows_are_rejected() {
        assert!(best_window(1 << 10) < best_window(1 << 16));
        assert!(best_window(1 << 16) <= best_window(1 << 20));
        assert!(matches!(PippengerMsm::with_window(1), Err(Error::MsmWindow { c: 1, .. })));
        assert!(matches!(PippengerMsm::with_window(MAX_WINDOW + 1), Err(Error::MsmWindow { .. })));
        assert_eq!(PippengerMsm::with_window(5).expect("valid window").window_for(1 << 20), 5);
    }
}
