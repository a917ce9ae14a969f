//! `zkinfer bench`: compile, key generation, proving and verification of shipped example
//! models, timed in this process, with the proof size, peak memory and error against float.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::data::{InputData, OutputData};
use zkinfer_prover::commit::SrsTables;
use zkinfer_prover::keys::{keygen, vk_hash};
use zkinfer_prover::{model_hash, prove, verify, Bindings, CommitMsm, CommitParams, Srs};

use crate::{BenchArgs, Outcome};

/// One model's figures (see `zkinfer bench --help` for each one's meaning).
#[derive(Debug, Serialize)]
struct Row {
    model: String,
    k: u32,
    advice_columns: usize,
    macs: usize,
    compile_s: f64,
    srs_s: f64,
    tables_s: f64,
    keygen_s: f64,
    run_ms: f64,
    prove_s: f64,
    verify_ms: f64,
    proof_bytes: usize,
    peak_rss_mib: f64,
    max_error: f64,
}

/// The process's peak resident memory so far (VmHWM), MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

fn read(dir: &Path, file: &str) -> Result<Vec<Vec<f32>>> {
    let p = dir.join(file);
    Ok(InputData::from_json(&std::fs::read_to_string(&p).with_context(|| p.display().to_string())?)?.input_data)
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn bench_model(name: &str, dir: &std::path::Path) -> Result<Row> {
    let onnx = std::fs::read(dir.join("model.onnx")).with_context(|| format!("{}: model.onnx", dir.display()))?;
    let t = Instant::now();
    let compiled = compile(&onnx, Some(&read(dir, "calibration.json")?), &CompileOptions::default())?;
    let compile_s = secs(t);
    let model = Arc::new(compiled.model);
    let k = model.settings.k;
    let t = Instant::now();
    let srs = Srs::dev(k)?;
    let srs_s = secs(t);
    let t = Instant::now();
    let tables = SrsTables::build(&srs.params)?;
    let tables_s = secs(t);
    let params = CommitParams::new(srs.params.clone(), CommitMsm::Precomputed(Arc::new(tables)))?;
    let t = Instant::now();
    let pk = keygen(&params, model.clone())?;
    let keygen_s = secs(t);
    let bindings = Bindings { model_hash: model_hash(&model)?, vk_hash: vk_hash(pk.get_vk()), srs_hash: srs.source_sha256 };
    let input = read(dir, "input.json")?;
    let q = model.quantize_inputs(&input)?;
    let t = Instant::now();
    let outputs = model.eval_quantized(&q)?.outputs(&model);
    let run_ms = secs(t) * 1e3;
    let t = Instant::now();
    let env = prove(&params, &pk, model.clone(), zkinfer_prover::Statement::unbound(q), bindings)?;
    let prove_s = secs(t);
    let t = Instant::now();
    verify(&srs.params, pk.get_vk(), &env, bindings, model.num_instances())?;
    let verify_ms = secs(t) * 1e3;
    let expected: OutputData = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json"))?).context("expected.json")?;
    let expected = expected.outputs;
    let max_error = outputs
        .iter()
        .zip(&expected)
        .flat_map(|(o, e)| o.iter().zip(e).map(|(&q, &f)| (model.dequantize(q) - f64::from(f)).abs()))
        .fold(0.0, f64::max);
    Ok(Row {
        model: name.to_string(),
        k,
        advice_columns: model.settings.total_advice(),
        macs: model.macs(),
        compile_s,
        srs_s,
        tables_s,
        keygen_s,
        run_ms,
        prove_s,
        verify_ms,
        proof_bytes: env.proof.len(),
        peak_rss_mib: peak_rss_mib(),
        max_error,
    })
}

pub(crate) fn bench(a: &BenchArgs) -> Result<Outcome> {
    eprintln!("benchmarking with an INSECURE development SRS (timing only); build with --release for representative figures");
    let mut rows = Vec::new();
    println!("| model | k | advice | MACs | compile s | SRS s | tables s | keygen s | run ms | prove s | verify ms | proof B | peak RSS MiB | max error |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for name in &a.models {
        let r = bench_model(name, &a.examples.join(name)).with_context(|| format!("model `{name}`"))?;
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {:.0} | {:.1e} |",
            r.model,
            r.k,
            r.advice_columns,
            r.macs,
            r.compile_s,
            r.srs_s,
            r.tables_s,
            r.keygen_s,
            r.run_ms,
            r.prove_s,
            r.verify_ms,
            r.proof_bytes,
            r.peak_rss_mib,
            r.max_error
        );
        rows.push(r);
    }
    if let Some(out) = &a.json {
        zkinfer_prover::fs::atomic_write(out, serde_json::to_string_pretty(&rows)?.as_bytes())?;
    }
    Ok(Outcome::Ok)
}
