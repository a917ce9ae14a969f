//! Signed-digit recoding of scalars: `s = Σ_j d_j·2^(c·j)` with `d_j ∈ (-2^(c-1), 2^(c-1)]`
//! ([`signed_digits`]), or `[-2^(c-1), 2^(c-1))` when recoded from `-s` ([`scalar_digits`]):
//! either way `|d_j| ≤ 2^(c-1)`, which is what the buckets need.
//!
//! Signed digits halve the buckets a window needs (a negative digit adds the negated point,
//! and negating an affine point is free), so a window of `c` bits has `2^(c-1)` buckets.

use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::PrimeField;

/// Smallest window size the bucket code supports.
pub(crate) const MIN_WINDOW: usize = 2;
/// Largest window size: `2^(c-1)` buckets must stay addressable and reasonably sized.
pub(crate) const MAX_WINDOW: usize = 24;

/// Number of `c`-bit signed windows a BN254 scalar needs.
///
/// A scalar is below `r < 2^254`. The top window holds the top `254 - c·(W-1)` bits plus a
/// carry of at most 1, and must not carry further: that needs `254 - c·(W-1) ≤ c - 1`, i.e.
/// `c·W ≥ 255`.
pub(crate) fn num_windows(c: usize) -> usize {
    255usize.div_ceil(c)
}

/// The scalar's canonical value as little-endian 64-bit limbs.
pub(crate) fn scalar_limbs(s: &Fr) -> [u64; 4] {
    let repr = s.to_repr();
    let mut out = [0u64; 4];
    for (limb, chunk) in out.iter_mut().zip(repr.as_ref().chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        *limb = u64::from_le_bytes(word);
    }
    out
}

/// `c` bits of `limbs` starting at bit `offset` (zero past the top).
fn bits(limbs: &[u64; 4], offset: usize, c: usize) -> u64 {
    let (limb, shift) = (offset / 64, offset % 64);
    let Some(&low) = limbs.get(limb) else { return 0 };
    let mut v = low >> shift;
    if shift + c > 64 {
        if let Some(&high) = limbs.get(limb + 1) {
            v |= high << (64 - shift);
        }
    }
    v & ((1u64 << c) - 1)
}

/// Writes the `out.len()` signed `c`-bit digits of `limbs`, least significant first.
///
/// Assumes `c` is in `MIN_WINDOW..=MAX_WINDOW` and `out.len() == num_windows(c)` (then the
/// recoding of any value below `2^254` ends with no carry).
pub(crate) fn signed_digits(limbs: &[u64; 4], c: usize, out: &mut [i32]) {
    let half = 1i64 << (c - 1);
    let mut carry = 0i64;
    for (j, d) in out.iter_mut().enumerate() {
        let mut v = bits(limbs, c * j, c) as i64 + carry;
        carry = 0;
        if v > half {
            v -= 2 * half;
            carry = 1;
        }
        *d = v as i32;
    }
    debug_assert_eq!(carry, 0, "scalar needs more than {} windows of {c} bits", out.len());
}

/// Writes the signed `c`-bit digits of `s`, or the negated digits of `-s` when `-s` is the
/// smaller integer: both recombine to `s` mod r. Witness scalars are often small negative
/// values, just below r; without the flip each would need a non-zero digit in every window
/// (and all of them the same digits, so they would collide in the same buckets), with it
/// they cost what small positive values cost.
///
/// Assumes what [`signed_digits`] assumes.
pub(crate) fn scalar_digits(s: &Fr, c: usize, out: &mut [i32]) {
    let pos = scalar_limbs(s);
    let neg = scalar_limbs(&-*s);
    if neg.iter().rev().lt(pos.iter().rev()) {
        signed_digits(&neg, c, out);
        out.iter_mut().for_each(|d| *d = -*d);
    } else {
        signed_digits(&pos, c, out);
    }
}

/// A digit as a bucket index (`|d| - 1`) and whether the point is negated. `None` for 0.
#[inline]
pub(crate) fn bucket_of(d: i32) -> Option<(usize, bool)> {
    (d != 0).then(|| (d.unsigned_abs() as usize - 1, d < 0))
}

#[cfg(test)]
mod tests {
    use halo2_proofs::halo2curves::ff::Field;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    /// Recombines digits as a field element: Σ d_j·2^(c·j).
    fn recombine(digits: &[i32], c: usize) -> Fr {
        let base = Fr::from(1u64 << c);
        digits.iter().rev().fold(Fr::ZERO, |acc, &d| {
            let d_field = if d < 0 { -Fr::from(d.unsigned_abs() as u64) } else { Fr::from(d as u64) };
            acc * base + d_field
        })
    }

    #[test]
    fn digits_recombine_to_the_scalar_and_stay_in_range() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut scalars: Vec<Fr> = (0..64).map(|_| Fr::random(&mut rng)).collect();
        scalars.extend([Fr::ZERO, Fr::ONE, -Fr::ONE, -Fr::from(2), Fr::from(u64::MAX)]);
        for c in MIN_WINDOW..=MAX_WINDOW {
            let mut digits = vec![0i32; num_windows(c)];
            for s in &scalars {
                signed_digits(&scalar_limbs(s), c, &mut digits);
                assert_eq!(recombine(&digits, c), *s, "c = {c}");
                let half = 1i32 << (c - 1);
                assert!(digits.iter().all(|&d| -half < d && d <= half), "c = {c}");
            }
        }
    }

    #[test]
    fn scalar_digits_recombine_and_keep_small_negatives_short() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let mut scalars: Vec<Fr> = (0..64).map(|_| Fr::random(&mut rng)).collect();
        scalars.extend([Fr::ZERO, Fr::ONE, -Fr::ONE, -Fr::from(2), Fr::from(u64::MAX), -Fr::from(u64::MAX)]);
        // (r - 1) / 2 and (r + 1) / 2, where the choice flips.
        let half = Fr::from(2).invert().unwrap();
        scalars.extend([half - Fr::ONE, half, half + Fr::ONE]);
        for c in [MIN_WINDOW, 5, 13, 16, 17, MAX_WINDOW] {
            let mut digits = vec![0i32; num_windows(c)];
            // -2^(c-1) recodes from 2^(c-1) to the digit -2^(c-1), the end of the range.
            scalar_digits(&-Fr::from(1u64 << (c - 1)), c, &mut digits);
            assert_eq!(digits[0], -(1i32 << (c - 1)), "c = {c}");
            for s in &scalars {
                scalar_digits(s, c, &mut digits);
                assert_eq!(recombine(&digits, c), *s, "c = {c}");
                let half = 1i32 << (c - 1);
                assert!(digits.iter().all(|&d| -half <= d && d <= half), "c = {c}");
            }
            for v in [1u64, 7, 1 << 20, u64::MAX] {
                let mut count = |s: Fr| {
                    scalar_digits(&s, c, &mut digits);
                    digits.iter().filter(|&&d| d != 0).count()
                };
                // -v costs what v costs: at most the windows of a 64-bit value (plus a carry).
                let positive = count(Fr::from(v));
                assert_eq!(count(-Fr::from(v)), positive, "c = {c}, v = {v}");
                assert!(positive <= 64usize.div_ceil(c) + 1, "c = {c}, v = {v}");
            }
        }
    }

    #[test]
    fn bucket_of_maps_sign_and_magnitude() {
        assert_eq!(bucket_of(0), None);
        assert_eq!(bucket_of(1), Some((0, false)));
        assert_eq!(bucket_of(-3), Some((2, true)));
    }
}
