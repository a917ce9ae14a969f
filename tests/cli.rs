//! The `zkinfer` binary as a user runs it: exit codes, messages, files left behind.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

#[path = "../prover/tests/support/tables.rs"]
mod tables;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use zkinfer_circuits::data::{InputData, OutputData};
use zkinfer_prover::ProofEnvelope;

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn zkinfer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkinfer")).args(args).output().expect("runs")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = zkinfer(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Exit 2 with a single `error:` line on stderr mentioning every `needle`.
fn usage_error(args: &[&str], needles: &[&str]) {
    let out = zkinfer(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    for n in needles {
        assert!(lines[0].contains(n), "`{n}` not in `{}`", lines[0]);
    }
}

fn compile_and_setup(example: &str, dir: &Path, extra: &[&str]) {
    let ex = repo("examples").join(example);
    let (model, cal) = (ex.join("model.onnx"), ex.join("calibration.json"));
    let mut args = vec!["compile", s(&model), "-o", s(dir), "--calibration", s(&cal)];
    args.extend_from_slice(extra);
    ok(&args);
    ok(&["setup", s(dir), "--dev-srs"]);
}

#[test]
fn mlp_proves_and_matches_candle_within_the_info_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mlp");
    compile_and_setup("mlp", &dir, &[]);
    let input = repo("examples/mlp/input.json");
    let (proof, output) = (tmp.path().join("p.zkp"), tmp.path().join("out.json"));
    ok(&["prove", s(&dir), "--input", s(&input), "-o", s(&proof), "--output", s(&output)]);
    let verified = ok(&["verify", s(&dir), s(&proof)]);
    assert!(verified.starts_with("VALID") && verified.contains("input commitment 0x"), "{verified}");

    let info: serde_json::Value = serde_json::from_str(&ok(&["info", s(&dir), "--json"])).unwrap();
    let bound = info["error_bound"][0].as_f64().unwrap();
    let measured = &info["measured_error"];
    assert_eq!((measured["samples"].as_u64(), measured["reference"].as_str()), (Some(8), Some("candle f32")), "{measured}");
    let m = measured["max_abs"][0].as_f64().unwrap();
    assert!(m > 0.0 && m <= bound, "measured {m}, bound {bound}");
    assert!(info["macs"].as_u64() == Some(784 * 128 + 128 * 10), "{info}");
    for key in ["k", "rows_used", "advice_columns", "fixed_columns", "lookup_arguments", "advice_cells_per_mac"] {
        assert!(!info[key].is_null(), "info lacks {key}");
    }

    let proven: OutputData = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    assert_eq!(proven.shapes, vec![vec![1, 10]]);
    let onnx = std::fs::read(repo("examples/mlp/model.onnx")).unwrap();
    let graph = zkinfer_circuits::onnx::import_bytes(&onnx).unwrap();
    let x = InputData::from_json(&std::fs::read_to_string(&input).unwrap()).unwrap().input_data;
    let float = zkinfer_circuits::reference::candle_outputs(&onnx, &graph, &x).unwrap();
    let err = proven.outputs[0].iter().zip(&float[0]).map(|(a, b)| f64::from((a - b).abs())).fold(0.0, f64::max);
    assert!(err <= bound, "max error {err} > reported bound {bound}");
}

#[test]
fn verify_exits_1_for_tampered_or_foreign_proofs() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, other) = (tmp.path().join("tiny"), tmp.path().join("tiny8"));
    compile_and_setup("tiny", &dir, &[]);
    // One scale bit below the default choice (2^-9): another circuit for the same ONNX.
    compile_and_setup("tiny", &other, &["--scale-bits", "8"]);
    let proof = tmp.path().join("p.zkp");
    ok(&["prove", s(&dir), "--input", s(&repo("examples/tiny/input.json")), "-o", s(&proof)]);
    let env = ProofEnvelope::from_bytes(&std::fs::read(&proof).unwrap()).unwrap();
    // `calldata` prints the instances as 32-byte big-endian words, then the proof.
    let hex_out = ok(&["calldata", s(&proof)]);
    let data = hex::decode(hex_out.trim().strip_prefix("0x").unwrap()).unwrap();
    assert_eq!(data.len(), 32 * env.instances.len() + env.proof.len());
    for (i, inst) in env.instances.iter().enumerate() {
        let mut be = *inst;
        be.reverse();
        assert_eq!(&data[32 * i..32 * (i + 1)], &be, "instance {i}");
    }
    assert_eq!(&data[32 * env.instances.len()..], env.proof.as_slice());
    let bad = tmp.path().join("bad.zkp");
    let expect_invalid = |e: &ProofEnvelope, what: &str| {
        std::fs::write(&bad, e.to_bytes().unwrap()).unwrap();
        let out = zkinfer(&["verify", s(&dir), s(&bad)]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("INVALID"));
    };
    // (The library test walks every byte; here a spread of positions through the CLI.)
    for i in (0..env.proof.len()).step_by(env.proof.len() / 7) {
        let mut e = env.clone();
        e.proof[i] ^= 0x10;
        expect_invalid(&e, &format!("proof byte {i}"));
    }
    let mut e = env.clone();
    e.instances[1][0] ^= 1;
    expect_invalid(&e, "changed output");
    let mut e = env.clone();
    e.instances[0][3] ^= 1;
    expect_invalid(&e, "changed commitment");
    let out = zkinfer(&["verify", s(&other), s(&proof)]);
    assert_eq!(out.status.code(), Some(1), "another model's key");

    // A directory whose cached key was swapped for another model's (with setup.json edited to
    // match) is caught by regenerating the key from the model, even with its MSM tables cache
    // damaged where the cache's read checks do not look (the key is regenerated without it).
    let cache = tables::tables_files(&dir);
    assert_eq!(cache.len(), 1, "setup caches one tables file");
    tables::corrupt_unsampled_higher_windows(&cache[0]);
    assert!(ok(&["verify", s(&dir), s(&proof)]).starts_with("VALID"), "the honest key still checks out");
    let foreign_proof = tmp.path().join("foreign.zkp");
    ok(&["prove", s(&other), "--input", s(&repo("examples/tiny/input.json")), "-o", s(&foreign_proof)]);
    let setup = |d: &Path| -> serde_json::Value { serde_json::from_slice(&std::fs::read(d.join("setup.json")).unwrap()).unwrap() };
    let (mine, theirs) = (setup(&dir), setup(&other));
    let key = |d: &Path, v: &serde_json::Value| d.join("keys").join(v["key_id"].as_str().unwrap()).join("vk.bin");
    std::fs::copy(key(&other, &theirs), key(&dir, &mine)).unwrap();
    let mut forged = mine.clone();
    forged["vk_sha256"] = theirs["vk_sha256"].clone();
    std::fs::write(dir.join("setup.json"), serde_json::to_vec(&forged).unwrap()).unwrap();
    usage_error(&["verify", s(&dir), s(&proof)], &["not the key of this model"]);
    usage_error(&["verify", s(&dir), s(&foreign_proof)], &["not the key of this model"]);
}

#[test]
fn bad_input_exits_2_with_one_line_and_leaves_no_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("never");
    let garbage = tmp.path().join("garbage.onnx");
    std::fs::write(&garbage, b"\x08\x07not an onnx file at all\xff\xff").unwrap();
    usage_error(&["compile", s(&garbage), "-o", s(&out_dir)], &["malformed ONNX"]);
    let unsupported = repo("examples/unsupported/model.onnx");
    usage_error(&["compile", s(&unsupported), "-o", s(&out_dir)], &["Sin", "act_sin"]);
    let tiny = repo("examples/tiny/model.onnx");
    let strict = ["compile", s(&tiny), "-o", s(&out_dir), "--scale-bits", "4", "--max-error", "1e-6"];
    usage_error(&strict, &["--max-error 1e-6", "at node `"]);
    usage_error(&["compile", s(&tiny), "-o", s(&out_dir), "--max-error", "a lot"], &["--max-error", "percentage"]);
    assert!(!out_dir.exists(), "a failed compile left {out_dir:?}");

    let dir = tmp.path().join("tiny");
    let input_args = |input: &Path, proof: &Path, output: &Path| {
        vec![
            "prove".to_string(),
            s(&dir).into(),
            "--input".into(),
            s(input).into(),
            "-o".into(),
            s(proof).into(),
            "--output".into(),
            s(output).into(),
        ]
    };
    let (proof, output) = (tmp.path().join("p.zkp"), tmp.path().join("o.json"));
    ok(&["compile", s(&repo("examples/tiny/model.onnx")), "-o", s(&dir)]);
    usage_error(&["prove", s(&dir), "--input", s(&repo("examples/tiny/input.json")), "-o", s(&proof)], &["zkinfer setup"]);
    ok(&["setup", s(&dir), "--dev-srs"]);

    let short = tmp.path().join("short.json");
    std::fs::write(&short, r#"{"input_data": [[0.1, 0.2, 0.3]]}"#).unwrap();
    let args = input_args(&short, &proof, &output);
    usage_error(&args.iter().map(String::as_str).collect::<Vec<_>>(), &["3 values", "expects 8"]);
    let huge = tmp.path().join("huge.json");
    std::fs::write(&huge, r#"{"input_data": [[1e6, 0, 0, 0, 0, 0, 0, 0]]}"#).unwrap();
    let args = input_args(&huge, &proof, &output);
    usage_error(&args.iter().map(String::as_str).collect::<Vec<_>>(), &["overflow", "input"]);
    let not_json = tmp.path().join("nj.json");
    std::fs::write(&not_json, "[1, 2").unwrap();
    let args = input_args(&not_json, &proof, &output);
    usage_error(&args.iter().map(String::as_str).collect::<Vec<_>>(), &["input JSON"]);
    let mut args = input_args(&repo("examples/tiny/input.json"), &proof, &output);
    args.extend(["--msm".into(), "gpu9000".into()]);
    usage_error(&args.iter().map(String::as_str).collect::<Vec<_>>(), &["unknown MSM backend", "precomputed"]);
    assert!(!proof.exists() && !output.exists(), "a failed prove left files");

    std::fs::write(&proof, b"zkip garbage").unwrap();
    usage_error(&["verify", s(&dir), s(&proof)], &["not a zkinfer proof"]);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn help_is_available_everywhere() {
    for cmd in [
        vec!["--help"],
        vec!["compile", "--help"],
        vec!["setup", "--help"],
        vec!["prove", "--help"],
        vec!["verify", "--help"],
        vec!["info", "--help"],
        vec!["mutate", "--help"],
        vec!["demo", "--help"],
    ] {
        let out = ok(&cmd);
        assert!(out.contains("Usage:"), "{cmd:?}");
    }
    // setup needs exactly one SRS source
    assert_eq!(zkinfer(&["setup", "x"]).status.code(), Some(2));
}

#[test]
fn bench_prints_a_row_per_model_and_writes_json() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    let out = ok(&["bench", "--models", "tiny", "--examples", s(&repo("examples")), "--json", s(&json)]);
    let row = out.lines().find(|l| l.starts_with("| tiny |")).expect("a row for tiny");
    assert_eq!(row.matches('|').count(), 15, "{row}");
    let figures: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(figures[0]["model"], "tiny");
    assert!(figures[0]["prove_s"].as_f64().unwrap() > 0.0 && figures[0]["proof_bytes"].as_u64().unwrap() > 0);
    // Its help documents every column it prints.
    let help = ok(&["bench", "--help"]);
    for column in [
        "k:",
        "advice:",
        "MACs:",
        "compile s:",
        "SRS s:",
        "tables s:",
        "keygen s:",
        "run ms:",
        "prove s:",
        "verify ms:",
        "proof B:",
        "peak RSS MiB:",
        "max error:",
    ] {
        assert!(help.contains(column), "`{column}` is not documented");
    }
}

/// `zkinfer mutate` on the tiny model: at least the budget of mutants, every chip kind and the
/// permutation in its table, no survivor (exit 0), and a JSON report of every mutant.
#[test]
fn mutate_kills_every_mutant_of_the_tiny_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    let ex = repo("examples/tiny");
    ok(&["compile", s(&ex.join("model.onnx")), "-o", s(&dir), "--calibration", s(&ex.join("calibration.json"))]);
    let json = tmp.path().join("report.json");
    let input = ex.join("input.json");
    let out = ok(&["mutate", s(&dir), "--input", s(&input), "--budget", "1000", "--seed", "3", "--json", s(&json)]);
    for chip in ["| dot |", "| elementwise |", "| permutation |", "| poseidon |", "| requant |"] {
        assert!(out.contains(chip), "no `{chip}` row in\n{out}");
    }
    assert!(out.contains("no survivor"), "{out}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let outcomes = report["outcomes"].as_array().unwrap();
    assert!(outcomes.len() >= 1000, "{} mutants", outcomes.len());
    assert!(outcomes.iter().all(|o| !o["caught_by"].as_array().unwrap().is_empty()), "a survivor in the JSON report");
    // A model directory that does not exist is a usage error, not a crash.
    usage_error(&["mutate", s(&tmp.path().join("nope")), "--input", s(&input)], &["nope"]);
}
