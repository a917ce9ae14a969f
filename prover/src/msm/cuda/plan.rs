//! The host half of the CUDA MSM, independent of any driver: the inputs the kernels take
//! (bases as 32-bit limbs, digits sorted into a CSR list per (window, bucket)) and the final
//! combination of what `bucket_reduce` returns. Tested on the CPU through the kernels' host
//! build (see `host_check`).

use halo2_proofs::halo2curves::bn256::{Fq, Fr, G1Affine, G1};
use halo2_proofs::halo2curves::ff::{Field, PrimeField};
use halo2_proofs::halo2curves::group::Group;
use rayon::prelude::*;

use crate::msm::digits::{bucket_of, num_windows, scalar_digits};

/// 32-bit limbs per field element.
const LIMBS: usize = 8;
/// Buckets per `bucket_reduce` thread.
pub(crate) const SEGMENT: usize = 64;

/// Everything the kernels need, for terms whose bases are not at infinity.
pub(crate) struct Plan {
    /// Window size.
    pub(crate) c: usize,
    /// Number of windows.
    pub(crate) windows: usize,
    /// Buckets per window, `2^(c-1)`.
    pub(crate) buckets: usize,
    /// Affine bases, canonical, `x` then `y`, 16 limbs each.
    pub(crate) bases: Vec<u32>,
    /// CSR offsets into `entries` for bucket `w·buckets + b`; one more than the buckets.
    pub(crate) offsets: Vec<u32>,
    /// Base index, with bit 31 set when the base is negated.
    pub(crate) entries: Vec<u32>,
}

impl Plan {
    /// Segments per window.
    pub(crate) fn segments(&self) -> usize {
        self.buckets.div_ceil(SEGMENT)
    }

    /// Threads of `bucket_reduce`.
    pub(crate) fn reduce_threads(&self) -> usize {
        self.windows * self.segments()
    }
}

/// The window for `n` terms on a GPU: enough buckets to keep thousands of threads busy.
fn window(n: usize) -> usize {
    (n.max(1).ilog2() as usize).saturating_sub(4).clamp(4, 13)
}

/// Builds the plan. Assumes no base is the point at infinity and fewer than 2^31 terms.
pub(crate) fn plan(scalars: &[Fr], bases: &[G1Affine]) -> Plan {
    let c = window(scalars.len());
    let (windows, buckets) = (num_windows(c), 1usize << (c - 1));
    let mut digits = vec![0i32; scalars.len() * windows];
    digits.par_chunks_mut(windows).zip(scalars.par_iter()).for_each(|(d, s)| scalar_digits(s, c, d));
    // Counting sort by (window, bucket): each window is independent, so one task each.
    let per_window: Vec<(Vec<u32>, Vec<u32>)> = (0..windows)
        .into_par_iter()
        .map(|j| {
            let mut counts = vec![0u32; buckets + 1];
            for i in 0..scalars.len() {
                if let Some((b, _)) = bucket_of(digits[i * windows + j]) {
                    counts[b + 1] += 1;
                }
            }
            for b in 0..buckets {
                counts[b + 1] += counts[b];
            }
            let mut next = counts.clone();
            let mut entries = vec![0u32; counts[buckets] as usize];
            for i in 0..scalars.len() {
                if let Some((b, negate)) = bucket_of(digits[i * windows + j]) {
                    entries[next[b] as usize] = i as u32 | (u32::from(negate) << 31);
                    next[b] += 1;
                }
            }
            (counts, entries)
        })
        .collect();
    let mut offsets = Vec::with_capacity(windows * buckets + 1);
    let mut entries = Vec::new();
    for (counts, list) in &per_window {
        let start = entries.len() as u32;
        offsets.extend(counts[..buckets].iter().map(|o| start + o));
        entries.extend_from_slice(list);
    }
    offsets.push(entries.len() as u32);
    let mut limbs = vec![0u32; bases.len() * 2 * LIMBS];
    limbs.par_chunks_mut(2 * LIMBS).zip(bases.par_iter()).for_each(|(out, p)| {
        fq_to_limbs(&p.x, &mut out[..LIMBS]);
        fq_to_limbs(&p.y, &mut out[LIMBS..]);
    });
    Plan { c, windows, buckets, bases: limbs, offsets, entries }
}

fn fq_to_limbs(x: &Fq, out: &mut [u32]) {
    for (limb, chunk) in out.iter_mut().zip(x.to_repr().as_ref().chunks_exact(4)) {
        *limb = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
}

fn fq_from_limbs(limbs: &[u32]) -> Fq {
    let mut words = [0u64; 4];
    for (w, pair) in words.iter_mut().zip(limbs.chunks_exact(2)) {
        *w = u64::from(pair[0]) | (u64::from(pair[1]) << 32);
    }
    // from_raw takes a canonical integer into Montgomery form (the kernels output canonical).
    Fq::from_raw(words)
}

/// A canonical Jacobian point (24 limbs) as a halo2curves point.
fn jacobian(limbs: &[u32]) -> G1 {
    let (x, y, z) = (fq_from_limbs(&limbs[..LIMBS]), fq_from_limbs(&limbs[LIMBS..2 * LIMBS]), fq_from_limbs(&limbs[2 * LIMBS..]));
    if bool::from(z.is_zero()) {
        return G1::identity();
    }
    // Jacobian (X, Y, Z) is x = X/Z², y = Y/Z³; halo2curves' G1 is homogeneous (x = X'/Z',
    // y = Y'/Z'): X' = X·Z, Y' = Y, Z' = Z³.
    G1 { x: x * z, y, z: z.square() * z }
}

/// `k·p` by double-and-add (small `k`).
fn mul_small(p: G1, k: u64) -> G1 {
    (0..64).rev().fold(G1::identity(), |acc, bit| {
        let acc = acc.double();
        if (k >> bit) & 1 == 1 {
            acc + p
        } else {
            acc
        }
    })
}

/// Combines `bucket_reduce`'s output (per window and segment: weighted sum, plain sum) into
/// the MSM: per window `Σ_s total_s + SEGMENT·Σ_s s·running_s`, then Horner over windows.
pub(crate) fn finish(plan: &Plan, reduced: &[u32]) -> G1 {
    let segs = plan.segments();
    let point = |t: usize, which: usize| jacobian(&reduced[(2 * t + which) * 3 * LIMBS..(2 * t + which + 1) * 3 * LIMBS]);
    let windows: Vec<G1> = (0..plan.windows)
        .into_par_iter()
        .map(|w| {
            let (mut totals, mut run, mut weighted) = (G1::identity(), G1::identity(), G1::identity());
            for s in (0..segs).rev() {
                totals += point(w * segs + s, 0);
                run += point(w * segs + s, 1);
                if s > 0 {
                    weighted += run;
                }
            }
            totals + mul_small(weighted, SEGMENT as u64)
        })
        .collect();
    windows.iter().rev().fold(G1::identity(), |acc, win| (0..plan.c).fold(acc, |a, _| a.double()) + win)
}
