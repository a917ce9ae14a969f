//! Runs of equal consecutive scalars, summed base-first: `Σ_{i∈run} v·G_i = v·Σ_{i∈run} G_i`.
//!
//! A proof commits to polynomials that repeat one value over long stretches of rows: a
//! permutation or lookup grand product only changes on rows that hold a copy or a lookup, and
//! a lookup's sorted columns repeat each value. In a bucket MSM every term of such a run has
//! the same digits, so all of them land in the same buckets: they collide, and colliding
//! additions fall back to projective ones. Summing the run's bases first costs one mixed
//! addition per term, once, and the run becomes a single term of a small variable-base MSM.

use std::ops::Range;

use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};
use halo2_proofs::halo2curves::ff::Field;
use halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_proofs::halo2curves::group::{Curve, Group};
use rayon::prelude::*;

use super::{MsmBackend, PippengerMsm};
use crate::error::Result;

/// Shortest run worth summing base-first. A term of a run costs at least one bucket addition
/// on the digit path (a colliding one, projective), and one mixed addition here; the run
/// itself adds one term to the variable-base MSM, worth a few dozen additions.
pub(crate) const MIN_RUN: usize = 8;

/// Bases summed per task, so that one long run still uses every thread.
const SUM_CHUNK: usize = 1 << 10;

/// The runs of at least [`MIN_RUN`] equal, non-zero consecutive scalars, in order.
pub(crate) fn find_runs(scalars: &[Fr]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=scalars.len() {
        if i == scalars.len() || scalars[i] != scalars[start] {
            if i - start >= MIN_RUN && !bool::from(scalars[start].is_zero()) {
                runs.push(start..i);
            }
            start = i;
        }
    }
    runs
}

/// `Σ_run scalars[run.start]·Σ_{i∈run} base(i)`: each run's bases summed once, then one
/// variable-base MSM over the runs. `base(i)` may be the point at infinity.
pub(crate) fn runs_msm(scalars: &[Fr], runs: &[Range<usize>], base: impl Fn(usize) -> G1Affine + Sync) -> Result<G1> {
    let pieces: Vec<(usize, Range<usize>)> = runs
        .iter()
        .enumerate()
        .flat_map(|(r, run)| run.clone().step_by(SUM_CHUNK).map(move |s| (r, s..(s + SUM_CHUNK).min(run.end))))
        .collect();
    let partial: Vec<(usize, G1)> =
        pieces.into_par_iter().map(|(r, piece)| (r, piece.fold(G1::identity(), |acc, i| acc + base(i)))).collect();
    let mut sums = vec![G1::identity(); runs.len()];
    for (r, p) in partial {
        sums[r] += p;
    }
    let mut affine = vec![G1Affine::identity(); runs.len()];
    G1::batch_normalize(&sums, &mut affine);
    let values: Vec<Fr> = runs.iter().map(|run| scalars[run.start]).collect();
    PippengerMsm::default().msm(&values, &affine)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::msm::NaiveMsm;

    #[test]
    fn runs_are_long_equal_and_non_zero() {
        let (a, b) = (Fr::from(5), -Fr::from(3));
        let mut s = vec![a; MIN_RUN - 1]; // too short
        s.extend(vec![b; MIN_RUN]); // 7..15
        s.extend(vec![Fr::ZERO; 3 * MIN_RUN]); // zeros add nothing
        s.push(a);
        s.extend(vec![a; MIN_RUN + 2]); // with the `a` before it, a run up to the end
        let first = MIN_RUN - 1;
        let last = first + MIN_RUN + 3 * MIN_RUN;
        assert_eq!(find_runs(&s), vec![first..first + MIN_RUN, last..s.len()]);
        assert!(find_runs(&[]).is_empty());
        assert_eq!(find_runs(&[a; MIN_RUN]), vec![0..MIN_RUN]);
    }

    #[test]
    fn runs_msm_matches_the_naive_msm_over_the_runs() {
        let mut rng = ChaCha20Rng::seed_from_u64(0x72756e);
        let n = 2 * SUM_CHUNK + 17;
        let bases: Vec<G1Affine> = (0..n).map(|i| if i % 97 == 0 { G1Affine::identity() } else { G1Affine::random(&mut rng) }).collect();
        // One run longer than a chunk, then runs of random lengths, values random or small.
        let mut scalars = vec![Fr::random(&mut rng); SUM_CHUNK + 300];
        while scalars.len() < n {
            let len = rng.gen_range(1..40usize).min(n - scalars.len());
            let v = if rng.gen_bool(0.5) { Fr::random(&mut rng) } else { -Fr::from(rng.gen_range(0..4u64)) };
            scalars.extend(std::iter::repeat_n(v, len));
        }
        let runs = find_runs(&scalars);
        assert!(runs.iter().any(|r| r.len() > SUM_CHUNK) && runs.len() > 10);
        let mut only_runs = vec![Fr::ZERO; n];
        for r in &runs {
            only_runs[r.clone()].copy_from_slice(&scalars[r.clone()]);
        }
        let expected = NaiveMsm.msm(&only_runs, &bases).expect("naive");
        assert_eq!(runs_msm(&scalars, &runs, |i| bases[i]).expect("runs"), expected);
    }
}
