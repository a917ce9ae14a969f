//! The input commitment as a customer computes it: `zkinfer commit` and the circomlibjs script
//! in papers/design.md §1.2 (run with node, circomlibjs from verifier-contract's lockfile) give
//! the commitment that a proof made with the same salt carries; two salts give two commitments.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_zkinfer");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The design document's circomlibjs script.
fn design_script() -> String {
    let doc = std::fs::read_to_string(root().join("papers/design.md")).unwrap();
    let section = doc.split("### 1.2 The input commitment").nth(1).expect("design.md §1.2");
    section.split("```js\n").nth(1).and_then(|b| b.split("```").next()).expect("a js block in §1.2").to_string()
}

#[test]
fn zkinfer_commit_and_the_circomlibjs_script_reproduce_a_proofs_commitment_and_salts_hide_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlp");
    let ex = |f: &str| root().join("examples/mlp").join(f);
    run(Command::new(BIN)
        .args(["compile", ex("model.onnx").to_str().unwrap(), "-o", model.to_str().unwrap()])
        .arg("--calibration")
        .arg(ex("calibration.json")));
    run(Command::new(BIN).args(["setup", model.to_str().unwrap(), "--dev-srs"]));
    let input = ex("input.json");
    let commit =
        |salt: &str| run(Command::new(BIN).args(["commit", model.to_str().unwrap(), "--input", input.to_str().unwrap(), "--salt", salt]));
    let (s1, s2) = ("0x2a", "0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcd");
    let (c1, c2) = (commit(s1), commit(s2));
    assert_ne!(c1, c2, "two salts give two commitments of one input");
    assert_eq!(c1.len(), 66);

    // The proof made with salt s2 carries c2.
    let proof = dir.path().join("p.zkp");
    run(Command::new(BIN).args([
        "prove",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "-o",
        proof.to_str().unwrap(),
        "--salt",
        s2,
    ]));
    let verified = run(Command::new(BIN).args(["verify", model.to_str().unwrap(), proof.to_str().unwrap()]));
    assert!(verified.contains(&format!("input commitment {c2}")), "{verified}");

    // circomlibjs, with the model's scale and value range.
    let settings: serde_json::Value =
        serde_json::from_str(&run(Command::new(BIN).args(["info", model.to_str().unwrap(), "--json"]))).unwrap();
    let scale = settings["scale_bits"].as_u64().expect("scale_bits in info --json");
    let value_bits = settings["value_bits"].as_u64().expect("value_bits in info --json");
    let script = dir.path().join("commit.js");
    std::fs::write(&script, design_script()).unwrap();
    let node = |salt: &str| {
        run(Command::new("node")
            .arg(&script)
            .args([input.to_str().unwrap(), &scale.to_string(), &value_bits.to_string(), salt])
            .env("NODE_PATH", root().join("verifier-contract/node_modules")))
    };
    assert_eq!(node(s2), c2, "circomlibjs reproduces the proof's commitment");
    assert_eq!(node(s1), c1);
}
