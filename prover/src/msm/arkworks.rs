//! arkworks' MSM (`ark_ec::VariableBaseMSM`, with its `parallel` feature) behind the seam.
//!
//! Both libraries keep field elements in Montgomery form internally, with different layouts,
//! so values cross over as canonical integers: halo2curves' `to_repr` (little-endian bytes)
//! into arkworks' `from_bigint`, and back through `into_bigint` and `from_repr`. The point at
//! infinity is `(0, 0)` in halo2curves and a flag in arkworks; it is mapped explicitly.

use ark_bn254::{Fq as ArkFq, Fr as ArkFr, G1Affine as ArkG1Affine, G1Projective as ArkG1};
use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::{BigInt, PrimeField as ArkPrimeField};
use halo2_proofs::halo2curves::bn256::{Fq, Fr, G1Affine, G1};
use halo2_proofs::halo2curves::ff::PrimeField;
use halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use rayon::prelude::*;

use super::{check_lengths, MsmBackend};
use crate::error::{Error, Result};

/// arkworks' variable-base MSM on converted inputs (the conversion is part of its cost).
#[derive(Clone, Copy, Debug, Default)]
pub struct ArkworksMsm;

impl MsmBackend for ArkworksMsm {
    fn name(&self) -> &'static str {
        "arkworks"
    }

    fn msm(&self, scalars: &[Fr], bases: &[G1Affine]) -> Result<G1> {
        check_lengths(scalars, bases)?;
        let ark_scalars: Vec<ArkFr> = scalars.par_iter().map(fr_to_ark).collect();
        let ark_bases: Vec<ArkG1Affine> = bases.par_iter().map(affine_to_ark).collect();
        let sum = ArkG1::msm(&ark_bases, &ark_scalars).map_err(|_| Error::MsmLength { scalars: scalars.len(), bases: bases.len() })?;
        Ok(affine_from_ark(&sum.into_affine()).into())
    }
}

/// Canonical little-endian bytes as four 64-bit limbs.
fn limbs(repr: &[u8; 32]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (limb, chunk) in out.iter_mut().zip(repr.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        *limb = u64::from_le_bytes(word);
    }
    out
}

// `new` and `from_raw` take a canonical integer (< the modulus, which `to_repr` and
// `into_bigint` guarantee) and multiply it into Montgomery form, so the conversions cannot fail.

fn fr_to_ark(s: &Fr) -> ArkFr {
    ArkFr::new(BigInt::new(limbs(&s.to_repr())))
}

fn fq_to_ark(x: &Fq) -> ArkFq {
    ArkFq::new(BigInt::new(limbs(&x.to_repr())))
}

fn fq_from_ark(x: &ArkFq) -> Fq {
    Fq::from_raw(x.into_bigint().0)
}

fn affine_to_ark(p: &G1Affine) -> ArkG1Affine {
    if bool::from(p.is_identity()) {
        return ArkG1Affine::identity();
    }
    // Unchecked is sound: halo2curves points are on the curve by construction, and BN254 G1
    // has cofactor 1.
    ArkG1Affine::new_unchecked(fq_to_ark(&p.x), fq_to_ark(&p.y))
}

fn affine_from_ark(p: &ArkG1Affine) -> G1Affine {
    match p.xy() {
        None => G1Affine::identity(),
        Some((x, y)) => G1Affine { x: fq_from_ark(&x), y: fq_from_ark(&y) },
    }
}

#[cfg(test)]
mod tests {
    use halo2_proofs::halo2curves::ff::Field;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    #[test]
    fn points_and_scalars_round_trip() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for _ in 0..8 {
            let p = G1Affine::random(&mut rng);
            let ark = affine_to_ark(&p);
            assert!(ark.is_on_curve());
            assert_eq!(affine_from_ark(&ark), p);
        }
        let inf = affine_to_ark(&G1Affine::identity());
        assert!(inf.infinity);
        assert_eq!(affine_from_ark(&inf), G1Affine::identity());
        assert_eq!(fr_to_ark(&-Fr::ONE), -ArkFr::from(1u64));
        // The generators of the two libraries are the same point.
        assert_eq!(affine_to_ark(&G1Affine::generator()), ArkG1Affine::generator());
    }
}
