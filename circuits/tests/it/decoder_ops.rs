//! Ops a GPT exporter writes that the other tests do not cover: Split, Expand and Gather of an
//! embedding table by token ids, each against candle and MockProver, and their wrong witnesses
//! caught by the mutation audit.

use std::sync::Arc;

use halo2_proofs::dev::MockProver;
use rand::Rng;
use zkinfer_circuits::circuit::ModelCircuit;
use zkinfer_circuits::compile::{compile, CompileOptions, Compiled};
use zkinfer_circuits::reference::candle_outputs;
use zkinfer_circuits::Error;

use crate::builder::{rng, uniform, Attr, Builder};
use crate::ops::{check, weights};

/// No mutant of the compiled model survives (copies into and out of the re-indexings included).
fn audit(onnx: &[u8], len: usize, seed: u64) {
    let c = compile(onnx, Some(&[uniform(&mut rng(seed), len * 8, -1.0, 1.0)]), &CompileOptions::default()).unwrap();
    let model = Arc::new(c.model);
    let circuit = ModelCircuit::new(model.clone(), model.quantize_inputs(&[uniform(&mut rng(seed + 1), len, -1.0, 1.0)]).unwrap()).unwrap();
    let report =
        zkinfer_circuits::mutate::audit(&circuit, &zkinfer_circuits::mutate::Options { budget: 200, seed }, &|_, _, _| ()).unwrap();
    let survivors: Vec<_> = report.survivors().collect();
    assert!(survivors.is_empty(), "{survivors:#?}");
    assert!(report.by_chip().get("permutation").is_some_and(|t| t.made > 0));
}

#[test]
fn split_into_given_and_equal_sizes() {
    // q, k, v = Linear(x).split(…, dim=-1), as a fused QKV projection writes it.
    let onnx = Builder::default()
        .input("x", &[1, 3, 4])
        .init("w", &[4, 9], weights(190, 36))
        .init_i64("sizes", vec![2, 3, 4])
        .node("MatMul", "qkv", &["x", "w"], "h", &[])
        .node_outputs("Split", "split", &["h", "sizes"], &["q", "k", "v"], &[("axis", Attr::Int(-1))])
        .node("Mul", "qk", &["k", "k"], "kk", &[])
        .output("q", &[1, 3, 2])
        .output("kk", &[1, 3, 3])
        .output("v", &[1, 3, 4])
        .build();
    check(&onnx, 12, 191);
    audit(&onnx, 12, 192);
    // Equal parts, one per output, along the middle axis.
    let onnx = Builder::default()
        .input("x", &[1, 4, 3])
        .init("w", &[3, 3], weights(193, 9))
        .node("MatMul", "proj", &["x", "w"], "h", &[])
        .node_outputs("Split", "halves", &["h"], &["a", "b"], &[("axis", Attr::Int(1))])
        .node("Sub", "diff", &["a", "b"], "y", &[])
        .output("y", &[1, 2, 3])
        .build();
    check(&onnx, 12, 194);
}

#[test]
fn expand_broadcasts_to_a_constant_shape() {
    let onnx = Builder::default()
        .input("x", &[1, 1, 4])
        .init("w", &[4, 4], weights(195, 16))
        .init_i64("shape", vec![2, 3, 1])
        .node("MatMul", "proj", &["x", "w"], "h", &[])
        .node("Expand", "expand", &["h", "shape"], "e", &[])
        .output("e", &[2, 3, 4])
        .build();
    check(&onnx, 4, 196);
    audit(&onnx, 4, 197);
}

const VOCAB: usize = 7;

/// ids[1, 5] (INT64) → Gather(embedding[VOCAB, 3]) → MatMul → [1, 5, 2].
fn embedding() -> Vec<u8> {
    Builder::default()
        .input_i64("ids", &[1, 5])
        .init("wte", &[VOCAB as i64, 3], weights(198, VOCAB * 3))
        .init("w", &[3, 2], weights(199, 6))
        .node("Gather", "wte", &["wte", "ids"], "tok", &[("axis", Attr::Int(0))])
        .node("MatMul", "head", &["tok", "w"], "y", &[])
        .output("y", &[1, 5, 2])
        .build()
}

fn token_ids(seed: u64, n: usize) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n).map(|_| r.gen_range(0..VOCAB) as f32).collect()
}

fn compiled_embedding() -> Compiled {
    compile(&embedding(), Some(&[token_ids(200, 5 * 8)]), &CompileOptions::default()).unwrap()
}

#[test]
fn gather_of_an_embedding_by_token_ids_matches_candle() {
    let onnx = embedding();
    let c = compiled_embedding();
    for seed in 201..204 {
        let ids = vec![token_ids(seed, 5)];
        let reference = candle_outputs(&onnx, &c.graph, &ids).unwrap();
        let q = c.model.eval(&ids).unwrap().outputs(&c.model);
        for (a, b) in q[0].iter().zip(&reference[0]) {
            let err = (c.model.dequantize(*a) - f64::from(*b)).abs();
            assert!(err <= c.model.error_bound[0], "{err} (bound {})", c.model.error_bound[0]);
        }
        let model = Arc::new(c.model.clone());
        let circuit = ModelCircuit::new(model.clone(), model.quantize_inputs(&ids).unwrap()).unwrap();
        MockProver::run(model.settings.k, &circuit, vec![circuit.instances()]).unwrap().assert_satisfied();
    }
    // Every id, including ones the calibration may not have drawn, is in the table.
    let all: Vec<f32> = (0..5).map(|i| (VOCAB - 1 - i) as f32).collect();
    c.model.eval(&[all]).unwrap();
}

#[test]
fn wrong_witnesses_of_an_embedding_gather_are_caught() {
    let c = compiled_embedding();
    let model = Arc::new(c.model);
    let circuit = ModelCircuit::new(model.clone(), model.quantize_inputs(&[token_ids(205, 5)]).unwrap()).unwrap();
    let report =
        zkinfer_circuits::mutate::audit(&circuit, &zkinfer_circuits::mutate::Options { budget: 200, seed: 5 }, &|_, _, _| ()).unwrap();
    let survivors: Vec<_> = report.survivors().collect();
    assert!(survivors.is_empty(), "{survivors:#?}");
    assert!(report.by_chip().get("function").is_some_and(|t| t.made > 0 && t.killed == t.made));
}

#[test]
fn token_ids_outside_the_vocabulary_have_no_witness() {
    let c = compiled_embedding();
    for bad in [VOCAB as f32, -1.0] {
        let err = c.model.eval(&[vec![0.0, 1.0, bad, 2.0, 3.0]]).unwrap_err();
        assert!(matches!(&err, Error::OutsideTable { node, .. } if node == "wte/ids"), "{err}");
    }
    // Without calibration data, compile draws floats in [-1, 1), which are not token ids.
    let err = compile(&embedding(), None, &CompileOptions::default()).unwrap_err();
    assert!(matches!(&err, Error::TableIndex { node, len: VOCAB, .. } if node == "wte/ids"), "{err}");
}
