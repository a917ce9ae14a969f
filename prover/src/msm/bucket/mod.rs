//! Pippenger buckets summed with batch-affine additions.
//!
//! Adding an affine point to an affine bucket costs one field inversion. Montgomery's trick
//! shares one inversion among a whole batch (3 multiplications each instead), so an addition
//! costs about 5 multiplications and a squaring, against 11 or more for a projective one.
//! A batch may touch each bucket once. A point whose bucket is already in the batch waits for
//! the next batch; when too many wait (skewed inputs, e.g. every scalar 1, would otherwise
//! degenerate into one inversion per point), it goes into the bucket's projective overflow.

use halo2_proofs::halo2curves::bn256::{Fq, G1Affine, G1};
use halo2_proofs::halo2curves::ff::Field;
use halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_proofs::halo2curves::group::{Curve, Group};

mod flush;

/// A bucket's affine sum, alone on its cache line (buckets are read at random).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot(G1Affine);

/// The bucket holds a point (else it is empty, the point at infinity).
const OCCUPIED: u8 = 1;
/// The bucket has an addition in the current batch.
const IN_BATCH: u8 = 2;
/// The bucket has a projective overflow.
const OVERFLOW: u8 = 4;

/// A set of buckets `0..len`, where bucket `i` stands for the digit `i + 1`.
pub(crate) struct Buckets {
    slots: Vec<Slot>,
    state: Vec<u8>,
    /// Projective overflow per bucket; allocated on first use (random inputs never need it).
    overflow: Vec<G1>,
    batch: Vec<(u32, G1Affine)>,
    /// Additions whose bucket was already in the batch, for the next one.
    pending: Vec<(u32, G1Affine)>,
    prefix: Vec<Fq>,
    /// The batch's slopes as (numerator, denominator) (general path only).
    slopes: Vec<(Fq, Fq)>,
    capacity: usize,
}

impl Buckets {
    /// `len` empty buckets, flushing additions in batches of up to `capacity`.
    pub(crate) fn new(len: usize, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Buckets {
            slots: vec![Slot(G1Affine { x: Fq::ZERO, y: Fq::ZERO }); len],
            state: vec![0; len],
            overflow: Vec::new(),
            batch: Vec::with_capacity(capacity),
            pending: Vec::with_capacity(capacity),
            prefix: Vec::with_capacity(capacity),
            slopes: Vec::new(),
            capacity,
        }
    }

    /// Adds `±p` to bucket `idx`. Assumes `p` is not the point at infinity (callers skip those
    /// terms: they add nothing) and `idx < len`.
    #[inline]
    pub(crate) fn add(&mut self, idx: usize, p: &G1Affine, negate: bool) {
        let q = if negate { G1Affine { x: p.x, y: -p.y } } else { *p };
        self.insert(idx as u32, q);
        while self.batch.len() >= self.capacity {
            self.flush_and_requeue();
        }
    }

    /// Puts `q` into bucket `idx` (if empty), the batch, the waiting list, or the overflow.
    #[inline]
    fn insert(&mut self, idx: u32, q: G1Affine) {
        let i = idx as usize;
        let state = self.state[i];
        if state & OCCUPIED == 0 {
            self.slots[i].0 = q;
            self.state[i] = state | OCCUPIED;
        } else if state & IN_BATCH == 0 {
            self.state[i] = state | IN_BATCH;
            self.batch.push((idx, q));
        } else if self.pending.len() < self.capacity {
            self.pending.push((idx, q));
        } else {
            self.add_overflow(i, &q);
        }
    }

    /// `overflow[i] += q`.
    fn add_overflow(&mut self, i: usize, q: &G1Affine) {
        if self.overflow.is_empty() {
            self.overflow = vec![G1::identity(); self.slots.len()];
        }
        self.overflow[i] += q;
        self.state[i] |= OVERFLOW;
    }

    /// Hints the CPU to load bucket `idx`, which an `add` will soon touch.
    #[inline(always)]
    pub(crate) fn prefetch(&self, idx: usize) {
        if let Some(slot) = self.slots.get(idx) {
            super::prefetch(slot);
        }
    }

    /// Applies the batch, then moves the waiting additions into the next one.
    fn flush_and_requeue(&mut self) {
        self.flush();
        let mut waiting = std::mem::take(&mut self.pending);
        for &(idx, q) in &waiting {
            self.insert(idx, q);
        }
        // Keep the allocation: `insert` refilled a fresh `pending` only with re-collisions.
        waiting.clear();
        waiting.append(&mut self.pending);
        self.pending = waiting;
    }

    /// Applies every queued addition.
    pub(crate) fn drain(&mut self) {
        // Each round applies at least one addition, so this ends.
        while !self.batch.is_empty() || !self.pending.is_empty() {
            self.flush_and_requeue();
        }
    }

    /// Bucket `idx` (after [`Buckets::drain`]; assumes no projective overflow is left, which
    /// holds after [`Buckets::fold_overflow`] or when every batch had distinct buckets).
    pub(crate) fn get(&self, idx: usize) -> Option<G1Affine> {
        (self.state[idx] & OCCUPIED != 0).then_some(self.slots[idx].0)
    }

    /// The number of buckets.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Drains, then adds each bucket's projective overflow into its affine sum, so that every
    /// bucket is one affine point (or empty).
    fn fold_overflow(&mut self) {
        self.drain();
        let idx: Vec<usize> = (0..self.len()).filter(|&i| self.state[i] & OVERFLOW != 0).collect();
        if idx.is_empty() {
            return;
        }
        let projective: Vec<G1> = idx.iter().map(|&i| self.overflow[i]).collect();
        let mut affine = vec![G1Affine::identity(); idx.len()];
        G1::batch_normalize(&projective, &mut affine);
        for (&i, p) in idx.iter().zip(&affine) {
            self.state[i] &= !OVERFLOW;
            self.overflow[i] = G1::identity();
            if !bool::from(p.is_identity()) {
                // Distinct buckets, so nothing waits; a full batch is flushed as usual.
                self.add(i, p, false);
            }
        }
        self.drain();
    }

    /// Applies everything and returns `(Σ (i+1)·B_i, Σ B_i)` over the buckets.
    pub(crate) fn finish(mut self) -> (G1, G1) {
        self.fold_overflow();
        super::reduce::weighted_sum(&self)
    }
}

#[cfg(test)]
mod tests {
    use halo2_proofs::halo2curves::bn256::Fr;
    use halo2_proofs::halo2curves::group::Curve;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    /// Reference: the same additions done projectively.
    fn reference(len: usize, adds: &[(usize, G1Affine, bool)]) -> (G1, G1) {
        let mut sums = vec![G1::identity(); len];
        for &(i, p, neg) in adds {
            sums[i] += if neg { -p } else { p };
        }
        let weighted = sums.iter().enumerate().fold(G1::identity(), |acc, (i, s)| acc + s * Fr::from(i as u64 + 1));
        (weighted, sums.iter().sum())
    }

    #[test]
    fn batches_handle_doubling_cancellation_and_collisions() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let g = G1Affine::generator();
        let p = G1Affine::random(&mut rng);
        let two_p = (p + p).to_affine();
        // Bucket 0: p + p (doubling), then + (-2p) (cancels to empty), then + g.
        // Bucket 1: many additions of the same point (collisions in every batch).
        // Bucket 2: p - p (cancellation) and nothing else.
        let mut adds = vec![(0, p, false), (0, p, false), (0, two_p, true), (0, g, false)];
        adds.extend((0..40).map(|_| (1, g, false)));
        adds.extend([(2, p, false), (2, p, true)]);
        adds.extend((0..200).map(|i| (i % 5, G1Affine::random(&mut rng), i % 3 == 0)));
        for capacity in [1, 2, 3, 8, 64] {
            let mut buckets = Buckets::new(5, capacity);
            for &(i, q, neg) in &adds {
                buckets.add(i, &q, neg);
            }
            assert_eq!(buckets.finish(), reference(5, &adds), "capacity {capacity}");
        }
    }
}
