//! Applying a batch of bucket additions with one shared inversion (Montgomery's trick).

use halo2_proofs::halo2curves::bn256::{Fq, G1Affine};
use halo2_proofs::halo2curves::ff::Field;

use super::{Buckets, IN_BATCH, OCCUPIED};

impl Buckets {
    /// Applies the batch: `bucket += q` for every entry, with one shared inversion.
    pub(super) fn flush(&mut self) {
        if !self.flush_distinct_x() {
            self.flush_general();
        }
    }

    /// The common case, where no entry has the x of its bucket (no doubling, no cancellation):
    /// no per-entry branches. Returns false, changing nothing, if some x coincides (then the
    /// product of the x differences is zero and has no inverse).
    ///
    /// Each addition is a chain of dependent multiplications, and the CPU overlaps only
    /// nearby independent work, so the chain is kept short: the forward pass computes, beside
    /// the running product `acc_k`, `u_k = (q.y - p.y)·acc_k` (off that product's chain), and
    /// the backward pass gets the slope `λ_k = u_k·inv_k` in one multiplication, not two. And
    /// `λ·λ` rather than `λ.square()`: in halo2curves-axiom 0.7.3 the squaring is the slower.
    fn flush_distinct_x(&mut self) -> bool {
        let mut acc = Fq::ONE;
        self.prefix.clear();
        for &(idx, q) in &self.batch {
            let p = &self.slots[idx as usize].0;
            self.prefix.push((q.y - p.y) * acc);
            acc *= q.x - p.x;
        }
        let Some(mut inv) = Option::<Fq>::from(acc.invert()) else { return false };
        for (&(idx, q), u) in self.batch.iter().zip(&self.prefix).rev() {
            let i = idx as usize;
            self.state[i] &= !IN_BATCH;
            let p = self.slots[i].0;
            let lambda = *u * inv;
            inv *= q.x - p.x;
            let x3 = lambda * lambda - p.x - q.x;
            self.slots[i].0 = G1Affine { x: x3, y: lambda * (p.x - x3) - p.y };
        }
        self.batch.clear();
        true
    }

    /// Any batch, doublings and cancellations included.
    fn flush_general(&mut self) {
        let mut acc = Fq::ONE;
        self.prefix.clear();
        self.slopes.clear();
        for &(idx, q) in &self.batch {
            let i = idx as usize;
            self.prefix.push(acc);
            match slope(&self.slots[i].0, &q) {
                Some((num, den)) => {
                    acc *= den;
                    self.slopes.push((num, den));
                }
                None => {
                    // bucket = -q: the sum is the point at infinity, an empty bucket.
                    self.state[i] &= !OCCUPIED;
                    self.slopes.push((Fq::ZERO, Fq::ONE));
                }
            }
        }
        let Some(mut inv) = Option::<Fq>::from(acc.invert()) else {
            // Unreachable: every factor is non-zero. Projective additions stay correct anyway.
            return self.flush_projective();
        };
        // Backward pass: peel each inverse off the shared one.
        for ((&(idx, q), prefix), &(num, den)) in self.batch.iter().zip(&self.prefix).zip(&self.slopes).rev() {
            let i = idx as usize;
            self.state[i] &= !IN_BATCH;
            if self.state[i] & OCCUPIED == 0 {
                continue;
            }
            let p = self.slots[i].0;
            let lambda = num * (inv * *prefix);
            inv *= den;
            let x3 = lambda * lambda - p.x - q.x;
            self.slots[i].0 = G1Affine { x: x3, y: lambda * (p.x - x3) - p.y };
        }
        self.batch.clear();
    }

    /// The batch with projective additions (only if the shared inversion failed).
    fn flush_projective(&mut self) {
        let mut batch = std::mem::take(&mut self.batch);
        for &(idx, q) in &batch {
            let i = idx as usize;
            self.state[i] &= !IN_BATCH;
            // An empty bucket here was cancelled by q in the forward pass: nothing to add.
            if self.state[i] & OCCUPIED != 0 {
                self.add_overflow(i, &q);
            }
        }
        batch.clear();
        self.batch = batch;
    }
}

/// The slope of `p + q` for affine `p`, `q` (neither at infinity) as `(numerator, denominator)`:
/// `(q.y - p.y, q.x - p.x)` for an addition, `(3·p.x², 2·p.y)` for a doubling, `None` when `p = -q`.
#[inline(always)]
fn slope(p: &G1Affine, q: &G1Affine) -> Option<(Fq, Fq)> {
    let dx = q.x - p.x;
    if !bool::from(dx.is_zero()) {
        Some((q.y - p.y, dx))
    } else if p.y == q.y {
        // BN254 G1 has prime order, so no point has y = 0 and the denominator is non-zero.
        let x2 = p.x * p.x;
        Some((x2 + x2.double(), p.y.double()))
    } else {
        None
    }
}
