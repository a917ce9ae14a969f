//! Keygen, prove and verify of the shipped MLP (784-128-10), with proof size and peak memory.

use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, Criterion};
use zkinfer_benches::{example, peak_rss_mib};
use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::data::InputData;
use zkinfer_prover::commit::SrsTables;
use zkinfer_prover::keys::{keygen, vk_hash};
use zkinfer_prover::{prove, verify, Bindings, CommitMsm, CommitParams, Srs, Statement};

fn mlp(c: &mut Criterion) {
    let onnx = std::fs::read(example("mlp", "model.onnx")).expect("examples/mlp/model.onnx");
    let read =
        |f: &str| InputData::from_json(&std::fs::read_to_string(example("mlp", f)).expect("example input")).expect("input json").input_data;
    let compiled = compile(&onnx, Some(&read("calibration.json")), &CompileOptions::default()).expect("compiles");
    let model = Arc::new(compiled.model);
    let k = model.settings.k;
    let srs = Srs::dev(k).expect("dev srs");
    let q = model.quantize_inputs(&read("input.json")).expect("input");

    let mut group = c.benchmark_group(format!("mlp_784_128_10_k{k}"));
    group.sample_size(10);
    // halo2's own MSM (the baseline), then our fixed-base tables of the SRS, which setup builds
    // once per SRS and caches (so their build is not in the keygen or prove time).
    let halo2 = CommitParams::halo2(srs.params.clone());
    let tables = Arc::new(SrsTables::build(&srs.params).expect("tables"));
    let params = CommitParams::new(srs.params.clone(), CommitMsm::Precomputed(tables)).expect("params");
    group.bench_function("keygen_halo2_msm", |b| b.iter(|| keygen(&halo2, model.clone()).expect("keygen")));
    group.bench_function("keygen", |b| b.iter(|| keygen(&params, model.clone()).expect("keygen")));
    let pk = keygen(&params, model.clone()).expect("keygen");
    let bindings = Bindings { model_hash: [0; 32], vk_hash: vk_hash(pk.get_vk()), srs_hash: srs.source_sha256 };
    group.bench_function("prove_halo2_msm", |b| {
        b.iter(|| prove(&halo2, &pk, model.clone(), Statement::unbound(q.clone()), bindings).expect("prove"))
    });
    group.bench_function("prove", |b| {
        b.iter(|| prove(&params, &pk, model.clone(), Statement::unbound(q.clone()), bindings).expect("prove"))
    });
    let t = Instant::now();
    let env = prove(&params, &pk, model.clone(), Statement::unbound(q.clone()), bindings).expect("prove");
    let single = t.elapsed();
    let n = env.instances.len();
    group.bench_function("verify", |b| b.iter(|| verify(&srs.params, pk.get_vk(), &env, bindings, n).expect("valid")));
    group.finish();
    println!(
        "mlp: k = {k}, advice columns = {}, proof = {} bytes, one prove = {:.2}s, peak RSS = {:.0} MiB",
        model.settings.num_advice,
        env.proof.len(),
        single.as_secs_f64(),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
}

criterion_group!(benches, mlp);
