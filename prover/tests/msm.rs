//! Differential tests of the MSM backends: each one against the naive double-and-add MSM on
//! seeded random inputs with the edge cases mixed in, and against halo2's own KZG commitment.

use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};
use halo2_proofs::halo2curves::ff::Field;
use halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_proofs::halo2curves::group::{Curve, GroupEncoding};
use halo2_proofs::poly::commitment::{Blind, Params, ParamsProver};
use halo2_proofs::poly::EvaluationDomain;
use halo2_proofs::{SerdeCurveAffine, SerdeFormat};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zkinfer_prover::msm::{backend_by_name, Backend, MsmBackend, NaiveMsm, PippengerMsm, PrecomputedBases};
use zkinfer_prover::{Error, Srs};

/// Random bases with repeats, negations and the point at infinity mixed in.
fn bases(rng: &mut ChaCha20Rng, n: usize) -> Vec<G1Affine> {
    let mut out: Vec<G1Affine> = Vec::with_capacity(n);
    for i in 0..n {
        let p = match rng.gen_range(0..10) {
            0 if i > 0 => out[rng.gen_range(0..i)],
            1 if i > 0 => -out[rng.gen_range(0..i)],
            2 => G1Affine::identity(),
            3 => G1Affine::generator(),
            _ => G1Affine::random(&mut *rng),
        };
        out.push(p);
    }
    out
}

/// Random scalars with 0, 1, -1 and small values mixed in.
fn scalars(rng: &mut ChaCha20Rng, n: usize) -> Vec<Fr> {
    (0..n)
        .map(|_| match rng.gen_range(0..8) {
            0 => Fr::ZERO,
            1 => Fr::ONE,
            2 => -Fr::ONE,
            3 => Fr::from(rng.gen_range(0..1u64 << 20)),
            _ => Fr::random(&mut *rng),
        })
        .collect()
}

/// Runs of equal scalars of lengths 1 to 20, zero, small, negative or random, as in a proof's
/// grand products and sorted lookup columns; the first is 12 long and non-zero, so the
/// fixed-base MSM's run path (runs of 8 or more) is always taken.
fn runs(rng: &mut ChaCha20Rng, n: usize) -> Vec<Fr> {
    let mut out = vec![-Fr::from(rng.gen_range(1..1u64 << 20)); 12.min(n)];
    while out.len() < n {
        let v = scalars(rng, 1)[0];
        let len = rng.gen_range(1..=20usize).min(n - out.len());
        out.extend(std::iter::repeat_n(v, len));
    }
    out
}

/// Sizes 1, 2 and 2^k - 1, 2^k, 2^k + 1 for small k.
fn sizes() -> Vec<usize> {
    let mut s = vec![1, 2];
    for k in 2..=9 {
        s.extend([(1 << k) - 1, 1 << k, (1 << k) + 1]);
    }
    s
}

/// The CPU backends, including Pippenger with tiny windows (many windows, crowded buckets).
fn cpu_backends() -> Vec<Box<dyn MsmBackend>> {
    let mut out: Vec<Box<dyn MsmBackend>> =
        ["halo2curves", "arkworks", "pippenger"].into_iter().map(|n| backend_by_name(n).expect("cpu backend")).collect();
    for c in [2, 3, 7] {
        out.push(Box::new(PippengerMsm::with_window(c).expect("window")));
    }
    out
}

fn check_all(label: &str, scalars: &[Fr], bases: &[G1Affine]) {
    let expected = NaiveMsm.msm(scalars, bases).expect("naive");
    for backend in cpu_backends() {
        assert_eq!(backend.msm(scalars, bases).expect("msm"), expected, "{} on {label}", backend.name());
    }
    for c in [2, 5, 9, 16] {
        let table = PrecomputedBases::with_window(bases, c).expect("table");
        assert_eq!(table.msm(scalars).expect("msm"), expected, "precomputed c = {c} on {label}");
        assert_eq!(MsmBackend::msm(&table, scalars, bases).expect("msm"), expected, "precomputed c = {c} on {label}");
    }
}

#[test]
fn every_backend_matches_the_naive_msm_on_random_inputs() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x6d736d);
    for n in sizes() {
        let b = bases(&mut rng, n);
        let s = scalars(&mut rng, n);
        check_all(&format!("random n = {n}"), &s, &b);
    }
}

#[test]
fn every_backend_matches_on_degenerate_inputs() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x6465);
    let n = 65;
    let b = bases(&mut rng, n);
    let p = G1Affine::random(&mut rng);
    let cases: Vec<(&str, Vec<Fr>, Vec<G1Affine>)> = vec![
        ("all scalars 0", vec![Fr::ZERO; n], b.clone()),
        ("all scalars 1", vec![Fr::ONE; n], b.clone()),
        ("all scalars -1", vec![-Fr::ONE; n], b.clone()),
        ("one base repeated", scalars(&mut rng, n), vec![p; n]),
        ("one base and scalar repeated (doublings in every bucket)", vec![Fr::from(12345); n], vec![p; n]),
        ("p and -p with equal scalars (cancellation)", vec![Fr::from(99); 2], vec![p, -p]),
        ("all bases at infinity", scalars(&mut rng, n), vec![G1Affine::identity(); n]),
        ("runs of equal scalars (grand products, sorted lookups)", runs(&mut rng, n), b.clone()),
        ("empty", vec![], vec![]),
    ];
    for (label, s, b) in cases {
        check_all(label, &s, &b);
    }
}

#[test]
fn length_mismatch_is_a_structured_error() {
    let b = vec![G1Affine::generator(); 3];
    let s = vec![Fr::ONE; 2];
    for backend in cpu_backends() {
        assert!(matches!(backend.msm(&s, &b), Err(Error::MsmLength { scalars: 2, bases: 3 })), "{}", backend.name());
    }
    let table = PrecomputedBases::with_window(&b, 4).expect("table");
    assert!(matches!(table.msm(&[Fr::ONE; 4]), Err(Error::MsmLength { scalars: 4, bases: 3 })));
    // A prefix of the bases is fine (shorter polynomials commit with a prefix of the SRS).
    assert_eq!(table.msm(&s).expect("prefix"), G1::generator() * Fr::from(2));
    let other = vec![G1Affine::identity(); 2];
    assert!(matches!(MsmBackend::msm(&table, &s, &other), Err(Error::MsmBasesChanged { precomputed: 3 })));
}

/// The Lagrange-basis SRS points, read from halo2's own serialisation (the field is private).
fn g_lagrange(srs: &Srs) -> Vec<G1Affine> {
    let mut bytes = Vec::new();
    srs.params.write(&mut bytes).expect("write params");
    let n = srs.params.n() as usize;
    // k (u32), then n monomial points, then n Lagrange points, 64 raw bytes each.
    let mut reader = &bytes[4 + 64 * n..];
    (0..n).map(|_| G1Affine::read(&mut reader, SerdeFormat::RawBytesUnchecked).expect("point")).collect()
}

fn compressed(p: G1) -> Vec<u8> {
    p.to_affine().to_bytes().as_ref().to_vec()
}

/// Every backend commits to a random polynomial with exactly halo2's bytes, in Lagrange and
/// monomial form. k = 13 puts halo2curves' own MSM on its batch-affine path (from ~8k terms).
#[test]
fn commitments_are_byte_identical_to_halo2() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x6b7a67);
    for k in [5, 13] {
        let srs = Srs::dev(k).expect("dev srs");
        let domain = EvaluationDomain::<Fr>::new(1, k);
        let values: Vec<Fr> = scalars(&mut rng, 1 << k);
        let lagrange = g_lagrange(&srs);
        let expected_lagrange = compressed(srs.params.commit_lagrange(&domain.lagrange_from_vec(values.clone()), Blind::default()));
        let expected_coeff = compressed(srs.params.commit(&domain.coeff_from_vec(values.clone()), Blind::default()));
        let lagrange_table = PrecomputedBases::new(&lagrange).expect("table");
        let g_table = PrecomputedBases::new(srs.params.get_g()).expect("table");
        assert_eq!(compressed(lagrange_table.msm(&values).expect("msm")), expected_lagrange, "precomputed, k = {k}");
        assert_eq!(compressed(g_table.msm(&values).expect("msm")), expected_coeff, "precomputed, k = {k}");
        for backend in cpu_backends() {
            let name = backend.name();
            assert_eq!(compressed(backend.msm(&values, &lagrange).expect("msm")), expected_lagrange, "{name}, k = {k}");
            assert_eq!(compressed(backend.msm(&values, srs.params.get_g()).expect("msm")), expected_coeff, "{name}, k = {k}");
        }
    }
}

#[test]
fn cuda_is_a_clear_error_when_it_cannot_run() {
    // Without the feature, or without a driver and GPU, asking for CUDA is a structured error
    // that callers can fall back on; with a GPU it must be a working backend.
    match backend_by_name("cuda") {
        Err(Error::CudaUnavailable { reason }) => {
            assert!(!reason.is_empty());
            eprintln!("cuda unavailable (expected on CPU machines): {reason}");
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(b) => assert_eq!(b.name(), Backend::Cuda.name()),
    }
}

/// The CUDA kernels (feature `cuda`). On machines without the pieces these print why they
/// skipped; CI installs NVRTC and sets `ZKINFER_REQUIRE_NVRTC=1`, so there the compile check
/// cannot skip.
#[cfg(feature = "cuda")]
mod cuda {
    use zkinfer_prover::msm::CudaMsm;

    use super::*;

    #[test]
    fn nvrtc_compiles_kernels() {
        match CudaMsm::compile_kernels() {
            Ok(_) => {}
            Err(Error::CudaUnavailable { reason }) if std::env::var_os("ZKINFER_REQUIRE_NVRTC").is_none() => {
                println!("SKIPPED: libnvrtc not found ({reason})");
            }
            Err(e) => panic!("NVRTC check failed: {e}"),
        }
    }

    #[test]
    fn gpu_msm_matches_the_naive_msm() {
        let gpu = match CudaMsm::new() {
            Ok(gpu) => gpu,
            Err(Error::CudaUnavailable { reason }) => {
                println!("SKIPPED: no usable GPU ({reason})");
                return;
            }
            Err(e) => panic!("CUDA backend failed to start: {e}"),
        };
        let mut rng = ChaCha20Rng::seed_from_u64(0x677075);
        let mut sizes = sizes();
        sizes.extend([1 << 12, (1 << 16) + 3]);
        for n in sizes {
            let b = bases(&mut rng, n);
            let s = scalars(&mut rng, n);
            let expected = if n > 1 << 10 { backend_by_name("halo2curves").expect("cpu").msm(&s, &b) } else { NaiveMsm.msm(&s, &b) };
            assert_eq!(gpu.msm(&s, &b).expect("gpu msm"), expected.expect("reference"), "n = {n}");
        }
    }
}
