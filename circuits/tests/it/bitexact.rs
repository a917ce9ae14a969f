//! Bit-exactness of the quantized evaluation, which optimistic verification rests on: a
//! validator that re-runs a job must get exactly the executor's outputs. The outputs of every
//! shipped example are the same at one thread and at eight, and the same as the golden file
//! `tests/golden/quantized_outputs.json`, made by a release build (`ZKINFER_BLESS=1 cargo test
//! --release -p zkinfer-circuits --test it bitexact`); this suite runs in the dev profile, with
//! overflow checks and less optimisation, so matching it shows debug = release.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use zkinfer_circuits::compile::{compile, CompileOptions};

use crate::models::{example, read_input};

const EXAMPLES: [&str; 5] = ["tiny", "mlp", "cnn", "transformer", "torch_cnn"];

/// SHA-256 of the outputs' little-endian i64s, with their lengths.
fn digest(outputs: &[Vec<i64>]) -> String {
    let mut h = Sha256::new();
    for o in outputs {
        h.update((o.len() as u64).to_le_bytes());
        for v in o {
            h.update(v.to_le_bytes());
        }
    }
    hex::encode(h.finalize())
}

fn outputs_on(threads: usize, model: &zkinfer_circuits::quant::QModel, input: &[Vec<f32>]) -> Vec<Vec<i64>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| model.eval(input).unwrap().outputs(model))
}

#[test]
fn quantized_outputs_are_the_same_on_every_thread_count_and_build() {
    let mut found = BTreeMap::new();
    for name in EXAMPLES {
        let onnx = std::fs::read(example(name, "model.onnx")).unwrap();
        let compiled = compile(&onnx, Some(&read_input(name, "calibration.json")), &CompileOptions::default()).unwrap();
        let input = read_input(name, "input.json");
        let one = outputs_on(1, &compiled.model, &input);
        assert_eq!(one, outputs_on(8, &compiled.model, &input), "{name}: 1 thread against 8");
        assert_eq!(one, outputs_on(3, &compiled.model, &input), "{name}: 1 thread against 3");
        found.insert(name.to_string(), digest(&one));
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/quantized_outputs.json");
    if std::env::var_os("ZKINFER_BLESS").is_some() {
        if cfg!(debug_assertions) {
            panic!("bless the golden outputs with a release build (cargo test --release)");
        }
        let doc = serde_json::json!({ "made_by": "release", "sha256": found });
        std::fs::write(&path, format!("{}\n", serde_json::to_string_pretty(&doc).unwrap())).unwrap();
    }
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(golden["made_by"], "release", "the golden file must come from a release build");
    for (name, d) in &found {
        assert_eq!(golden["sha256"][name].as_str(), Some(d.as_str()), "{name}: outputs differ from the release build's (if quantization changed on purpose, re-bless: ZKINFER_BLESS=1 cargo test --release -p zkinfer-circuits --test it bitexact)");
    }
}
