//! `zkinfer prove --for-aggregation` and `zkinfer aggregate` as a user runs them, in the cases
//! that must fail fast: a tampered, foreign or wrong-transcript proof is named before any
//! aggregation key is made (which takes minutes), and nothing is written. The aggregation
//! itself is exercised by `prover/aggregate/tests` and, on chain, by `scripts/aggregation.sh`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use zkinfer_prover::{ProofEnvelope, Transcript};

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

/// Exit 2 with one `error:` line mentioning every needle.
fn fails(args: &[&str], needles: &[&str]) {
    let out = zkinfer(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("no error line: {err}"));
    for n in needles {
        assert!(line.contains(n), "`{n}` not in `{line}`");
    }
}

fn setup(example: &str, dir: &Path) {
    let ex = repo("examples").join(example);
    ok(&["compile", s(&ex.join("model.onnx")), "-o", s(dir), "--calibration", s(&ex.join("calibration.json"))]);
    ok(&["setup", s(dir), "--dev-srs"]);
}

#[test]
fn aggregate_names_a_bad_proof_before_making_any_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (tiny, mlp) = (tmp.path().join("tiny"), tmp.path().join("mlp"));
    setup("tiny", &tiny);
    setup("mlp", &mlp);
    let input = repo("examples/tiny/input.json");
    let (agg, evm) = (tmp.path().join("a.zkp"), tmp.path().join("e.zkp"));
    ok(&["prove", s(&tiny), "--input", s(&input), "-o", s(&agg), "--for-aggregation"]);
    ok(&["prove", s(&tiny), "--input", s(&input), "-o", s(&evm)]);
    let env = ProofEnvelope::from_bytes(&std::fs::read(&agg).unwrap()).unwrap();
    assert_eq!(env.transcript, Transcript::Poseidon);

    // The proof made for aggregation verifies off chain, and is refused where a single
    // proof's calldata is wanted.
    assert!(ok(&["verify", s(&tiny), s(&agg)]).starts_with("VALID"));
    fails(&["calldata", s(&agg)], &["Poseidon", "--for-aggregation"]);

    let keys = tmp.path().join("keys");
    let out = tmp.path().join("batch.zkb");
    let call = |dir: &Path, proof: &Path, needles: &[&str]| {
        fails(&["aggregate", s(dir), "--proofs", s(proof), "-o", s(&out), "--keys", s(&keys)], needles);
    };

    // One flipped byte anywhere in the proof: named by position and file, with what to do.
    for at in [0, env.proof.len() / 2, env.proof.len() - 1] {
        let mut bad = env.clone();
        bad.proof[at] ^= 1;
        let path = tmp.path().join(format!("bad{at}.zkp"));
        std::fs::write(&path, bad.to_bytes().unwrap()).unwrap();
        call(&tiny, &path, &["proof 0", s(&path), "invalid", "re-prove"]);
    }
    // A changed output instance.
    let mut bad = env.clone();
    *bad.instances.last_mut().unwrap() = [7; 32].map(|b| b & 0x0f);
    let changed = tmp.path().join("changed.zkp");
    std::fs::write(&changed, bad.to_bytes().unwrap()).unwrap();
    call(&tiny, &changed, &["proof 0", "invalid"]);
    // A proof made for one job on chain (Keccak transcript) is not one to aggregate.
    call(&tiny, &evm, &["proof 0", "transcript", "--for-aggregation"]);
    // A proof of another model than the directory given for it.
    call(&mlp, &agg, &["proof 0", "model hash"]);
    // As many directories as proofs, or one.
    fails(
        &["aggregate", s(&tiny), s(&mlp), s(&tiny), "--proofs", s(&agg), s(&agg), "-o", s(&out), "--keys", s(&keys)],
        &["3 model directories for 2 proofs"],
    );
    assert!(!keys.exists(), "no key directory is made for a batch that cannot be proven");
    assert!(!out.exists(), "no aggregated proof is written");
}
