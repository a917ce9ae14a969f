//! The development SRS, computed fast. It is the same params as halo2's `ParamsKZG::setup`
//! with the seed's τ (a test holds them equal point for point), but every point is a
//! fixed-base multiple of the generator, read from a comb table: [`WINDOWS`] additions per
//! point instead of a 254-bit double-and-add. halo2's setup takes about 8 minutes at k = 22 on
//! 2 cores; this takes well under one.

use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine, G2Affine, G1};
use halo2_proofs::halo2curves::ff::{Field, PrimeField};
use halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_proofs::halo2curves::group::{Curve, Group};
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use rand::SeedableRng;
use rayon::prelude::*;

/// Bits of the scalar per comb window.
const WINDOW_BITS: usize = 16;
/// Windows in a 256-bit scalar.
const WINDOWS: usize = 256 / WINDOW_BITS;
/// Points per rayon task: large enough that the per-task setup (a power, a batch inversion's
/// one inversion) is noise.
const CHUNK: usize = 1 << 14;

/// `table[j·2^WINDOW_BITS + d] = d·2^(WINDOW_BITS·j)·G`: 64 MiB.
struct Comb {
    table: Vec<G1Affine>,
}

impl Comb {
    fn new() -> Self {
        let rows: Vec<Vec<G1>> = (0..WINDOWS)
            .into_par_iter()
            .map(|j| {
                let mut base = G1::generator();
                for _ in 0..WINDOW_BITS * j {
                    base = base.double();
                }
                let mut row = Vec::with_capacity(1 << WINDOW_BITS);
                let mut acc = G1::identity();
                for _ in 0..1usize << WINDOW_BITS {
                    row.push(acc);
                    acc += base;
                }
                row
            })
            .collect();
        let projective: Vec<G1> = rows.into_iter().flatten().collect();
        Comb { table: normalize(&projective) }
    }

    /// `s·G`.
    fn mul(&self, s: &Fr) -> G1 {
        let repr = s.to_repr();
        let mut acc = G1::identity();
        for (j, digit) in repr.chunks_exact(WINDOW_BITS / 8).enumerate() {
            let d = u16::from_le_bytes([digit[0], digit[1]]) as usize;
            if d != 0 {
                acc += self.table[(j << WINDOW_BITS) | d];
            }
        }
        acc
    }
}

fn normalize(points: &[G1]) -> Vec<G1Affine> {
    let mut out = vec![G1Affine::identity(); points.len()];
    out.par_chunks_mut(CHUNK).zip(points.par_chunks(CHUNK)).for_each(|(o, p)| G1::batch_normalize(p, o));
    out
}

/// The params of τ = `s` at `k`: `[s^i]G` and the Lagrange basis `[L_i(s)]G` over the 2^k-th
/// roots of unity, as `ParamsKZG::setup` computes them. `None` when `s` is such a root (its
/// Lagrange basis is undefined; halo2's setup would panic).
pub(super) fn params(k: u32, s: Fr) -> Option<ParamsKZG<Bn256>> {
    let n = 1usize << k;
    let comb = Comb::new();
    let powers: Vec<G1> = (0..n)
        .into_par_iter()
        .step_by(CHUNK)
        .flat_map_iter(|start| {
            let mut x = s.pow_vartime([start as u64]);
            let comb = &comb;
            (start..n.min(start + CHUNK)).map(move |_| {
                let p = comb.mul(&x);
                x *= s;
                p
            })
        })
        .collect();
    let g = normalize(&powers);
    drop(powers);
    // L_i(s) = ω^i·(s^n − 1) / (n·(s − ω^i)), ω of order 2^k (halo2 derives it the same way).
    let mut omega = Fr::ROOT_OF_UNITY;
    for _ in k..Fr::S {
        omega = omega.square();
    }
    let multiplier = (s.pow_vartime([n as u64]) - Fr::ONE) * Option::<Fr>::from(Fr::from(n as u64).invert())?;
    let chunks: Vec<Option<Vec<G1>>> = (0..n)
        .into_par_iter()
        .step_by(CHUNK)
        .map(|start| {
            let roots: Vec<Fr> = (start..n.min(start + CHUNK))
                .scan(omega.pow_vartime([start as u64]), |w, _| Some(std::mem::replace(w, *w * omega)))
                .collect();
            let mut inverses: Vec<Fr> = roots.iter().map(|w| s - w).collect();
            batch_invert(&mut inverses)?;
            Some(roots.iter().zip(&inverses).map(|(w, inv)| comb.mul(&(multiplier * w * inv))).collect())
        })
        .collect();
    let lagrange: Vec<G1> = chunks.into_iter().collect::<Option<Vec<_>>>()?.into_iter().flatten().collect();
    let g_lagrange = normalize(&lagrange);
    drop(lagrange);
    let g2 = G2Affine::generator();
    let s_g2 = (g2 * s).to_affine();
    // `from_parts` is a method of an existing params value; a k = 1 one costs nothing.
    let shell = ParamsKZG::<Bn256>::setup(1, rand_chacha::ChaCha20Rng::seed_from_u64(0));
    Some(shell.from_parts(k, g, Some(g_lagrange), g2, s_g2))
}

/// Inverts every element in place (Montgomery's trick); `None` if one is zero.
fn batch_invert(v: &mut [Fr]) -> Option<()> {
    let mut prefix = Vec::with_capacity(v.len());
    let mut acc = Fr::ONE;
    for x in v.iter() {
        prefix.push(acc);
        acc *= x;
    }
    let mut inv = Option::<Fr>::from(acc.invert())?;
    for (x, p) in v.iter_mut().zip(prefix).rev() {
        let next = inv * *x;
        *x = inv * p;
        inv = next;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use halo2_proofs::poly::commitment::{Params, ParamsProver};
    use rand_chacha::ChaCha20Rng;

    use super::*;

    #[test]
    fn the_comb_matches_halo2s_setup_point_for_point() {
        for k in [1, 4, 9] {
            let slow = ParamsKZG::<Bn256>::setup(k, ChaCha20Rng::seed_from_u64(7));
            let fast = params(k, Fr::random(ChaCha20Rng::seed_from_u64(7))).unwrap();
            assert_eq!(fast.k(), k);
            assert_eq!(fast.get_g(), slow.get_g(), "powers at k = {k}");
            // The raw encoding holds the powers, the Lagrange basis, g2 and s·g2.
            assert_eq!(super::super::encode(&fast).unwrap(), super::super::encode(&slow).unwrap(), "k = {k}");
        }
    }

    #[test]
    fn the_comb_multiplies_edge_scalars() {
        let comb = Comb::new();
        for s in [Fr::ZERO, Fr::ONE, -Fr::ONE, Fr::from(1 << 16), Fr::from(u64::MAX)] {
            assert_eq!(comb.mul(&s).to_affine(), (G1Affine::generator() * s).to_affine());
        }
    }

    #[test]
    fn a_root_of_unity_has_no_lagrange_basis() {
        assert!(params(2, Fr::ONE).is_none());
        let mut v = vec![Fr::from(3), Fr::ZERO];
        assert!(batch_invert(&mut v).is_none());
    }
}
