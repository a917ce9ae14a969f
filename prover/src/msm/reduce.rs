//! Bucket reduction: `Σ (i+1)·B_i` over affine buckets `B_0..B_{m-1}`.
//!
//! The classic running sum walks down from the top bucket, adding each bucket into `running`
//! and `running` into `total`: `2m` projective additions, in a chain. With many buckets (the
//! precomputed MSM has `2^15` and more) the chain is cut into `L` lanes of `S = ⌈m/L⌉`
//! buckets that advance together, so that each step is two batches of `L` independent
//! affine additions sharing one inversion each. Lane `ℓ` covers `ℓS..ℓS+S` and ends with
//! `running_ℓ = Σ B_i` and `total_ℓ = Σ (i - ℓS + 1)·B_i` over its buckets, so
//!
//! `Σ (i+1)·B_i = Σ_ℓ total_ℓ + S·Σ_ℓ ℓ·running_ℓ`,
//!
//! the last sum being a running sum over only `L` points.

use halo2_proofs::halo2curves::bn256::{Fr, G1};
use halo2_proofs::halo2curves::group::Group;

use super::bucket::Buckets;

/// Below this many buckets the plain projective running sum is used.
const LANES_FROM: usize = 1024;
/// Lanes: independent additions per batch.
const LANES: usize = 256;

/// `(Σ (i+1)·B_i, Σ B_i)` over drained buckets without projective overflow.
pub(crate) fn weighted_sum(buckets: &Buckets) -> (G1, G1) {
    let m = buckets.len();
    if m < LANES_FROM {
        return running_sum(buckets);
    }
    let span = m.div_ceil(LANES);
    let lanes = m.div_ceil(span);
    // Slots 0..lanes hold running_ℓ, slots lanes..2·lanes hold total_ℓ.
    let mut acc = Buckets::new(2 * lanes, lanes);
    for step in (0..span).rev() {
        for lane in 0..lanes {
            let i = lane * span + step;
            if let Some(b) = (i < m).then(|| buckets.get(i)).flatten() {
                acc.add(lane, &b, false);
            }
        }
        acc.drain();
        for lane in 0..lanes {
            if let Some(r) = acc.get(lane) {
                acc.add(lanes + lane, &r, false);
            }
        }
        acc.drain();
    }
    let mut totals = G1::identity();
    let mut sum = G1::identity();
    let (mut run, mut weighted_runs) = (G1::identity(), G1::identity());
    for lane in (0..lanes).rev() {
        if let Some(t) = acc.get(lanes + lane) {
            totals += t;
        }
        if let Some(r) = acc.get(lane) {
            sum += r;
            run += r;
        }
        // After lane ℓ, run = Σ_{ℓ' ≥ ℓ} running_ℓ'; summing it for ℓ = lanes-1..1 weights
        // running_ℓ by ℓ.
        if lane > 0 {
            weighted_runs += run;
        }
    }
    (totals + weighted_runs * Fr::from(span as u64), sum)
}

/// The projective running sum (small bucket counts).
fn running_sum(buckets: &Buckets) -> (G1, G1) {
    let mut running = G1::identity();
    let mut total = G1::identity();
    for i in (0..buckets.len()).rev() {
        if let Some(b) = buckets.get(i) {
            running += b;
        }
        total += running;
    }
    (total, running)
}

#[cfg(test)]
mod tests {
    use halo2_proofs::halo2curves::bn256::G1Affine;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    use super::*;

    #[test]
    fn lanes_agree_with_the_running_sum() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let p = G1Affine::random(&mut rng);
        for m in [LANES_FROM, 3001] {
            let mut buckets = Buckets::new(m, 64);
            for i in 0..m {
                match rng.gen_range(0..6) {
                    0 => {}
                    // Equal buckets make lanes double and cancel along the way.
                    1 => buckets.add(i, &p, false),
                    2 => buckets.add(i, &p, true),
                    _ => buckets.add(i, &G1Affine::random(&mut rng), false),
                }
            }
            buckets.drain();
            assert_eq!(weighted_sum(&buckets), running_sum(&buckets), "m = {m}");
        }
    }
}
