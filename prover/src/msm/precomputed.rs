//! Fixed-base MSM: the bases of an SRS never change, so their window shifts are precomputed.
//!
//! For window size `c` and `W = ⌈255/c⌉` windows, the table holds `2^(c·j)·G_i` for every base
//! `G_i` and window `j`, in affine form. With the signed digits `s_i = Σ_j d_ij·2^(c·j)`,
//!
//! `Σ_i s_i·G_i = Σ_i Σ_j d_ij·(2^(c·j)·G_i)`,
//!
//! one MSM over `n·W` points whose scalars are single digits. So all windows share one set of
//! `2^(c-1)` buckets: one bucket pass, one bucket reduction, no doublings between windows. That
//! makes a large `c` cheap (the reduction is paid once, not `W` times): the work is about
//! `n·W` batch-affine additions plus `2^c` for the reduction, against halo2curves' `n·(254/c'+1)`
//! additions and `(254/c'+1)·2^c'` reduction work for its `c' = ⌈ln n⌉`.
//!
//! # Memory
//! The table is `n·W` affine points of 64 bytes: `n·⌈255/c⌉·64` bytes
//! ([`PrecomputedBases::table_bytes`]). With the default window ([`PrecomputedBases::best_window`])
//! that is 60 MiB for `n = 2^16` (`c = 17`), 240 MiB for `2^18` (`c = 17`) and 832 MiB for
//! `2^20` (`c = 20`); a smaller `c` costs more memory (more windows). Building it takes
//! `n·c·(W-1)` doublings, once per SRS, in parallel: about 2 s for `2^16` and 8 s for `2^18`
//! on 2 cores.
//!
//! Runs of equal consecutive scalars (grand products, sorted lookup columns) skip the digits:
//! their bases are summed first ([`super::runs`]).
//!
//! # Parallelism
//! The digits are first sorted by bucket range (one pass, parallel over scalar chunks); then
//! each range of buckets is one rayon task with its own batch-affine buckets and reduction.

use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};
use halo2_proofs::halo2curves::ff::Field;
use halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_proofs::halo2curves::group::{Curve, Group};
use halo2_proofs::{SerdeCurveAffine, SerdeFormat};
use rayon::prelude::*;

use super::bucket::Buckets;
use super::digits::{num_windows, scalar_digits, MAX_WINDOW};
use super::pippenger::{batch_capacity, check_window};
use super::runs::{find_runs, runs_msm};
use super::{prefetch, MsmBackend};
use crate::error::{Error, Result};

/// Bytes of one point in halo2's raw encoding.
const RAW_POINT: usize = 64;

/// Scalars per task in the digit-sorting pass.
const SORT_CHUNK: usize = 1 << 12;

/// How many terms ahead the bucket pass prefetches table points.
const PREFETCH_AHEAD: usize = 8;

/// The window shifts `2^(c·j)·G_i` of a fixed set of bases, for fast MSMs over those bases.
#[derive(Clone, Debug)]
pub struct PrecomputedBases {
    c: usize,
    windows: usize,
    /// `table[i·windows + j] = 2^(c·j)·G_i`.
    table: Vec<G1Affine>,
    /// Whether `G_i` is the point at infinity (its terms are skipped).
    infinity: Vec<bool>,
}

/// One term of the single bucket pass: table entry `point` times the digit `digit`.
#[derive(Clone, Copy)]
struct Term {
    point: u32,
    digit: i32,
}

impl PrecomputedBases {
    /// Precomputes with the window that minimises the MSM work for `bases.len()` terms.
    pub fn new(bases: &[G1Affine]) -> Result<Self> {
        Self::with_window(bases, Self::best_window(bases.len()))
    }

    /// Precomputes with `c`-bit windows (2..=24).
    pub fn with_window(bases: &[G1Affine], c: usize) -> Result<Self> {
        check_window(c)?;
        let windows = num_windows(c);
        let points = bases.len() as u128 * windows as u128;
        if points > u32::MAX as u128 {
            return Err(Error::MsmTableTooLarge { points });
        }
        let mut table = vec![G1Affine::identity(); bases.len() * windows];
        table.par_chunks_mut(windows * 256).zip(bases.par_chunks(256)).for_each(|(out, chunk)| {
            let mut shifts = Vec::with_capacity(out.len());
            for base in chunk {
                let mut p = G1::from(*base);
                for j in 0..windows {
                    if j > 0 {
                        p = (0..c).fold(p, |q, _| q.double());
                    }
                    shifts.push(p);
                }
            }
            G1::batch_normalize(&shifts, out);
        });
        let infinity = bases.iter().map(|b| bool::from(b.is_identity())).collect();
        Ok(PrecomputedBases { c, windows, table, infinity })
    }

    /// The window minimising the work `n·W(c) + 2^c`: one batch-affine addition per table
    /// point, and two per bucket (`2^(c-1)` of them) to reduce. On a tie the larger window
    /// wins, for its smaller table.
    pub fn best_window(n: usize) -> usize {
        (8..=MAX_WINDOW.min(20)).min_by_key(|&c| (n * num_windows(c) + (1usize << c), std::cmp::Reverse(c))).unwrap_or(16)
    }

    /// Bytes the table takes for `n` bases and window `c`: `n·⌈255/c⌉` points of 64 bytes.
    pub fn table_bytes(n: usize, c: usize) -> usize {
        n * num_windows(c) * std::mem::size_of::<G1Affine>()
    }

    /// The window size.
    pub fn window(&self) -> usize {
        self.c
    }

    /// The number of bases.
    pub fn len(&self) -> usize {
        self.infinity.len()
    }

    /// Whether there are no bases.
    pub fn is_empty(&self) -> bool {
        self.infinity.is_empty()
    }

    /// Bytes held by the table.
    pub fn memory_bytes(&self) -> usize {
        self.table.len() * std::mem::size_of::<G1Affine>() + self.infinity.len()
    }

    /// `Σ scalars[i]·G_i` over the first `scalars.len()` bases (a shorter polynomial commits
    /// with a prefix of the SRS). Errors with [`Error::MsmLength`] if there are more scalars
    /// than bases.
    pub fn msm(&self, scalars: &[Fr]) -> Result<G1> {
        if scalars.len() > self.len() {
            return Err(Error::MsmLength { scalars: scalars.len(), bases: self.len() });
        }
        let runs = find_runs(scalars);
        if runs.is_empty() {
            return Ok(self.digit_msm(scalars));
        }
        let from_runs = runs_msm(scalars, &runs, |i| self.table[i * self.windows])?;
        let mut rest = scalars.to_vec();
        for run in runs {
            rest[run].fill(Fr::ZERO);
        }
        Ok(from_runs + self.digit_msm(&rest))
    }

    /// The bucket pass over every non-zero digit of `scalars` (at most `self.len()` of them).
    fn digit_msm(&self, scalars: &[Fr]) -> G1 {
        let half = 1usize << (self.c - 1);
        // Ranges of buckets, a few per thread so that uneven ranges even out.
        let ranges = (4 * rayon::current_num_threads()).min(half.div_ceil(64)).max(1);
        let span = half.div_ceil(ranges);
        let sorted: Vec<Vec<Vec<Term>>> =
            scalars.par_chunks(SORT_CHUNK).enumerate().map(|(k, chunk)| self.sort_terms(k * SORT_CHUNK, chunk, span, ranges)).collect();
        let capacity = batch_capacity(self.c).min(span / 8).max(4);
        (0..ranges)
            .into_par_iter()
            .map(|r| {
                let lo = r * span;
                let mut buckets = Buckets::new(span.min(half - lo), capacity);
                for terms in sorted.iter().map(|lists| &lists[r]) {
                    self.add_terms(&mut buckets, terms, lo);
                }
                // Bucket i of this range is the digit lo + i + 1: shift the weights by lo.
                let (weighted, sum) = buckets.finish();
                weighted + sum * Fr::from(lo as u64)
            })
            .reduce(G1::identity, |a, b| a + b)
    }

    /// Appends the table to `out`: window, windows and base count (u32 little-endian), then
    /// every table point in halo2's raw form (64 bytes, unchecked encoding).
    pub fn write_raw(&self, out: &mut Vec<u8>) {
        for v in [self.c, self.windows, self.len()] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        out.reserve(self.table.len() * RAW_POINT);
        for p in &self.table {
            // Writing into a Vec cannot fail.
            let _ = p.write(out, SerdeFormat::RawBytesUnchecked);
        }
    }

    /// Reads a table that [`PrecomputedBases::write_raw`] wrote for `bases`, advancing `bytes`.
    ///
    /// The points are read unchecked (not even on-curve): reading them checked would cost
    /// more than the table saves for one proof. What is checked is that the table belongs to
    /// `bases` (its first column is `bases`, exactly) and, on a fixed sample of 64 entries,
    /// that each is `2^c` times the one before. A table that passes and is still wrong can
    /// only make wrong commitments, so proofs that fail to verify: the table is prover-side
    /// only and cannot make a wrong statement verify.
    pub fn read_raw(bytes: &mut &[u8], bases: &[G1Affine]) -> Result<Self> {
        let bad = |reason: String| Error::MsmTableCorrupt { reason };
        let mut header = [0usize; 3];
        for v in &mut header {
            let (word, rest) = bytes.split_first_chunk::<4>().ok_or_else(|| bad("truncated header".into()))?;
            *v = u32::from_le_bytes(*word) as usize;
            *bytes = rest;
        }
        let [c, windows, n] = header;
        check_window(c).map_err(|e| bad(e.to_string()))?;
        if windows != num_windows(c) || n != bases.len() {
            return Err(bad(format!("table of {n} bases with {windows} windows of {c} bits, expected {} bases", bases.len())));
        }
        let len = n * windows * RAW_POINT;
        if bytes.len() < len {
            return Err(bad(format!("{} bytes of points, expected {len}", bytes.len())));
        }
        let (raw, rest) = bytes.split_at(len);
        *bytes = rest;
        let table: Vec<G1Affine> = raw
            .par_chunks(RAW_POINT)
            .map(|mut chunk| G1Affine::read(&mut chunk, SerdeFormat::RawBytesUnchecked).map_err(|e| bad(e.to_string())))
            .collect::<Result<_>>()?;
        if !bases.par_iter().enumerate().all(|(i, b)| table[i * windows] == *b) {
            return Err(bad("its first column is not these bases".into()));
        }
        if windows > 1 && n > 0 {
            for t in 0..64usize {
                let (i, j) = ((t * 7919) % n, 1 + t % (windows - 1));
                let prev = (0..c).fold(G1::from(table[i * windows + j - 1]), |q, _| q.double());
                if prev != G1::from(table[i * windows + j]) {
                    return Err(bad(format!("entry ({i}, {j}) is not 2^{c} times the one before")));
                }
            }
        }
        let infinity = bases.iter().map(|b| bool::from(b.is_identity())).collect();
        Ok(PrecomputedBases { c, windows, table, infinity })
    }

    /// Adds `terms` (whose digits are in the range starting at `lo + 1`) into `buckets`.
    fn add_terms(&self, buckets: &mut Buckets, terms: &[Term], lo: usize) {
        for (k, term) in terms.iter().enumerate() {
            // The table is far larger than the caches and each range reads a sparse subset
            // of it, and buckets are hit at random: ask for both a few terms ahead.
            if let Some(ahead) = terms.get(k + PREFETCH_AHEAD) {
                prefetch(&self.table[ahead.point as usize]);
                buckets.prefetch(ahead.digit.unsigned_abs() as usize - 1 - lo);
            }
            let bucket = term.digit.unsigned_abs() as usize - 1 - lo;
            buckets.add(bucket, &self.table[term.point as usize], term.digit < 0);
        }
    }

    /// The non-zero digit terms of `scalars` (bases `first..`), sorted into bucket ranges.
    fn sort_terms(&self, first: usize, scalars: &[Fr], span: usize, ranges: usize) -> Vec<Vec<Term>> {
        let mut lists: Vec<Vec<Term>> = (0..ranges).map(|_| Vec::with_capacity(scalars.len() * self.windows / ranges + 16)).collect();
        let mut digits = vec![0i32; self.windows];
        for (k, s) in scalars.iter().enumerate() {
            let i = first + k;
            if self.infinity[i] {
                continue;
            }
            scalar_digits(s, self.c, &mut digits);
            for (j, &digit) in digits.iter().enumerate() {
                if digit != 0 {
                    let r = (digit.unsigned_abs() as usize - 1) / span;
                    lists[r].push(Term { point: (i * self.windows + j) as u32, digit });
                }
            }
        }
        lists
    }
}

impl MsmBackend for PrecomputedBases {
    fn name(&self) -> &'static str {
        "pippenger-precomputed"
    }

    /// Checks that `bases` are the precomputed ones (a prefix of them), then runs
    /// [`PrecomputedBases::msm`]. The check reads every base: call `msm` on the table
    /// directly where the bases are known to match.
    fn msm(&self, scalars: &[Fr], bases: &[G1Affine]) -> Result<G1> {
        super::check_lengths(scalars, bases)?;
        // (The point at infinity is stored as itself, (0, 0), so it compares like any base.)
        let same = bases.len() <= self.len() && bases.par_iter().enumerate().all(|(i, b)| self.table[i * self.windows] == *b);
        if !same {
            return Err(Error::MsmBasesChanged { precomputed: self.len() });
        }
        PrecomputedBases::msm(self, scalars)
    }
}
