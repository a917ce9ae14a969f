//! Model-level negative tests: one wrong witness value inside a composite op (a pooled
//! maximum, a softmax numerator or denominator, a normalized value, a table output) must
//! break the named gate or lookup that computes it, even though every later step is laid
//! out consistently with the wrong value.

use std::sync::Arc;

use halo2_proofs::dev::MockProver;

use super::ModelCircuit;
use crate::compile::{compile, CompileOptions, Compiled};
use crate::data::InputData;

/// Step `step`'s output `element` is assigned `delta` above the honest value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tamper {
    pub step: usize,
    pub element: usize,
    pub delta: i64,
}

fn example(name: &str) -> (Compiled, Vec<Vec<f32>>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name);
    let read = |f: &str| InputData::from_json(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap().input_data;
    let onnx = std::fs::read(dir.join("model.onnx")).unwrap();
    (compile(&onnx, Some(&read("calibration.json")), &CompileOptions::default()).unwrap(), read("input.json"))
}

/// The failures MockProver reports when step `node` is tampered with, as gate/lookup names.
fn failures(c: &Compiled, input: &[Vec<f32>], node: &str, element: usize) -> Vec<String> {
    let step = c.model.steps.iter().position(|s| s.node == node).unwrap_or_else(|| panic!("no step `{node}`"));
    let model = Arc::new(c.model.clone());
    let mut circuit = ModelCircuit::new(model.clone(), model.quantize_inputs(input).unwrap());
    let instances = circuit.instances().unwrap();
    circuit.tamper = Some(Tamper { step, element, delta: 1 });
    let result = MockProver::run(model.settings.k, &circuit, vec![instances]).unwrap().verify();
    crate::chips::failure_names(&result.expect_err("a tampered witness verified"))
}

fn assert_caught(c: &Compiled, input: &[Vec<f32>], node: &str, expected: &str) {
    let names = failures(c, input, node, 0);
    assert!(names.iter().any(|n| n.contains(expected)), "{node}: expected `{expected}` among {names:?}");
}

#[test]
fn pooled_max_is_bound_by_its_gate() {
    let (c, input) = example("cnn");
    // The last stage of the first MaxPool's max tree: relu(a − b) + b.
    let node = c.model.steps.iter().filter(|s| s.op_type == "MaxPool" && s.node.contains("/max")).map(|s| s.node.clone()).next_back();
    assert_caught(&c, &input, &node.expect("a MaxPool max step"), "requant output");
}

#[test]
fn softmax_and_layernorm_values_are_bound() {
    let (c, input) = example("transformer");
    for (node, expected) in [
        ("softmax/exp", "lookup function table"),        // a numerator (a table output)
        ("softmax/sum", "requant output"),               // a denominator
        ("softmax/reciprocal", "lookup function table"), // 1/denominator (a table output)
        ("ln_std", "lookup function table"),             // the LayerNorm standard deviation
        ("softmax/normalized", "requant output"),        // a normalized probability
        ("ln_div", "requant output"),                    // a LayerNorm normalized value
    ] {
        assert_caught(&c, &input, node, expected);
    }
}
