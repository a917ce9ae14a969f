//! MSM backends over BN254 G1 (issue #6), on uniformly random scalars and distinct bases.
//!
//! - `cargo bench -p zkinfer-benches --bench bench_main -- msm_2` : every backend at 2^12, 2^14,
//!   2^16 and 2^18. Set `ZKINFER_MSM_MAX_K=20` to add 2^20 (an 832 MiB precomputed table and
//!   about 30 s of precomputation, so it is off by default).
//! - `cargo bench -p zkinfer-benches --bench bench_main -- msm_ratio` : the acceptance figure,
//!   halo2curves' `best_multiexp` against the precomputed fixed-base Pippenger at 2^16 and 2^18,
//!   printed as a ratio with the precomputation time and table size.
//!
//! With `--features cuda` and a GPU, the CUDA backend is measured too; otherwise it is skipped
//! with the reason printed.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};
use halo2_proofs::halo2curves::ff::Field;
use halo2_proofs::halo2curves::group::{Curve, Group};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use zkinfer_prover::msm::{backend_by_name, MsmBackend, PrecomputedBases};

/// Largest size measured by default (2^k terms).
const DEFAULT_MAX_K: usize = 18;

fn max_k() -> usize {
    std::env::var("ZKINFER_MSM_MAX_K").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_MAX_K)
}

/// `n` random scalars and `n` distinct bases `R + i·S` (an MSM does not care how the bases
/// were made, and this is much faster than hashing `n` points to the curve).
fn inputs(n: usize) -> (Vec<Fr>, Vec<G1Affine>) {
    let mut rng = ChaCha20Rng::seed_from_u64(0x6d736d62);
    let (r, step) = (G1::random(&mut rng), G1::random(&mut rng));
    let scalars: Vec<Fr> = (0..n).map(|_| Fr::random(&mut rng)).collect();
    let projective: Vec<G1> = (0..n)
        .into_par_iter()
        .chunks(1 << 12)
        .flat_map_iter(|idx| {
            let mut p = r + step * Fr::from(idx[0] as u64);
            idx.into_iter().map(move |_| {
                let out = p;
                p += step;
                out
            })
        })
        .collect();
    let mut bases = vec![G1Affine::default(); n];
    G1::batch_normalize(&projective, &mut bases);
    (scalars, bases)
}

fn backends() -> Vec<Box<dyn MsmBackend>> {
    let mut out = Vec::new();
    for name in ["halo2curves", "arkworks", "pippenger", "cuda"] {
        match backend_by_name(name) {
            Ok(b) => out.push(b),
            Err(e) => println!("msm bench: skipping {name}: {e}"),
        }
    }
    out
}

fn every_backend(c: &mut Criterion) {
    let max_k = max_k();
    let (scalars, bases) = inputs(1 << max_k);
    let backends = backends();
    for k in (12..=max_k).step_by(2) {
        let (s, b) = (&scalars[..1 << k], &bases[..1 << k]);
        let mut group = c.benchmark_group(format!("msm_2^{k}"));
        group.sample_size(10).warm_up_time(Duration::from_secs(1));
        for backend in &backends {
            group.bench_function(backend.name(), |bench| bench.iter(|| black_box(backend.msm(s, b).expect("msm"))));
        }
        // The table is built only if this benchmark is selected.
        let table = RefCell::new(None);
        group.bench_function("pippenger-precomputed", |bench| {
            let mut table = table.borrow_mut();
            let table = table.get_or_insert_with(|| precompute(b));
            bench.iter(|| black_box(table.msm(s).expect("msm")))
        });
        group.finish();
    }
}

fn precompute(bases: &[G1Affine]) -> PrecomputedBases {
    let t = Instant::now();
    let table = PrecomputedBases::new(bases).expect("table");
    println!(
        "precomputed {} bases with c = {}: {:.2} s, table {:.0} MiB",
        bases.len(),
        table.window(),
        t.elapsed().as_secs_f64(),
        table.memory_bytes() as f64 / (1 << 20) as f64
    );
    table
}

/// Median seconds per iteration over every sample criterion took.
fn timed(samples: &RefCell<Vec<f64>>, iters: u64, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    let elapsed = t.elapsed();
    samples.borrow_mut().push(elapsed.as_secs_f64() / iters as f64);
    elapsed
}

fn median(samples: &RefCell<Vec<f64>>) -> Option<f64> {
    let mut v = samples.borrow().clone();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// halo2curves against the precomputed Pippenger at 2^16 and 2^18, with the ratio.
fn ratio(c: &mut Criterion) {
    let (scalars, bases) = inputs(1 << 18);
    let baseline = backend_by_name("halo2curves").expect("halo2curves");
    for k in [16usize, 18] {
        let (s, b) = (&scalars[..1 << k], &bases[..1 << k]);
        let (base_t, fast_t) = (RefCell::new(Vec::new()), RefCell::new(Vec::new()));
        let mut group = c.benchmark_group(format!("msm_ratio_2^{k}"));
        group.sample_size(10).warm_up_time(Duration::from_secs(1));
        group.bench_function("halo2curves", |bench| {
            bench.iter_custom(|iters| {
                timed(&base_t, iters, || {
                    black_box(baseline.msm(s, b).expect("msm"));
                })
            })
        });
        let table = RefCell::new(None);
        group.bench_function("pippenger-precomputed", |bench| {
            let mut table = table.borrow_mut();
            let table = table.get_or_insert_with(|| precompute(b));
            bench.iter_custom(|iters| {
                timed(&fast_t, iters, || {
                    black_box(table.msm(s).expect("msm"));
                })
            })
        });
        group.finish();
        if let (Some(base), Some(fast)) = (median(&base_t), median(&fast_t)) {
            println!(
                "MSM 2^{k}: halo2curves {:.1} ms, pippenger-precomputed {:.1} ms, ratio {:.2}x (medians over {} and {} samples)",
                base * 1e3,
                fast * 1e3,
                base / fast,
                base_t.borrow().len(),
                fast_t.borrow().len()
            );
        }
    }
}

criterion_group!(benches, ratio, every_backend);
