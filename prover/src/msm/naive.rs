//! The reference MSM: textbook double-and-add per term. Slow and obviously right; the
//! fast backends are tested against it.

use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};
use halo2_proofs::halo2curves::ff::PrimeField;
use halo2_proofs::halo2curves::group::Group;

use super::{check_lengths, MsmBackend};
use crate::error::Result;

/// Double-and-add over each scalar's canonical bits, most significant first.
#[derive(Clone, Copy, Debug, Default)]
pub struct NaiveMsm;

impl MsmBackend for NaiveMsm {
    fn name(&self) -> &'static str {
        "naive"
    }

    fn msm(&self, scalars: &[Fr], bases: &[G1Affine]) -> Result<G1> {
        check_lengths(scalars, bases)?;
        Ok(scalars.iter().zip(bases).map(|(s, b)| mul(s, b)).fold(G1::identity(), |acc, p| acc + p))
    }
}

/// `s·b` by double-and-add.
pub(crate) fn mul(s: &Fr, b: &G1Affine) -> G1 {
    let repr = s.to_repr();
    let mut acc = G1::identity();
    for byte in repr.as_ref().iter().rev() {
        for bit in (0..8).rev() {
            acc = acc.double();
            if (byte >> bit) & 1 == 1 {
                acc += b;
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use halo2_proofs::halo2curves::ff::Field;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    #[test]
    fn agrees_with_the_curve_library() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for _ in 0..4 {
            let s = Fr::random(&mut rng);
            let b = G1Affine::random(&mut rng);
            assert_eq!(mul(&s, &b), b * s);
        }
        assert_eq!(mul(&-Fr::ONE, &G1Affine::generator()), -G1::generator());
    }
}
