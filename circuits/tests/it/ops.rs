//! One differential test per supported op: single-op models on random inputs (fixed
//! seeds), quantized output vs candle's float output within the compile-time bound, and
//! the circuit satisfied under MockProver.

use std::sync::Arc;

use halo2_proofs::dev::MockProver;
use zkinfer_circuits::circuit::ModelCircuit;
use zkinfer_circuits::compile::{compile, CompileOptions};

use crate::builder::{rng, uniform, Attr, Builder};
use crate::models::assert_within_bound;

/// Compiles `onnx` calibrated on random inputs, then checks several fresh random inputs.
pub(crate) fn check(onnx: &[u8], input_len: usize, seed: u64) {
    let mut r = rng(seed);
    let cal = vec![uniform(&mut r, input_len * 8, -1.0, 1.0)];
    let c = compile(onnx, Some(&cal), &CompileOptions::default()).unwrap();
    let model = Arc::new(c.model.clone());
    for _ in 0..3 {
        let input = vec![uniform(&mut r, input_len, -1.0, 1.0)];
        assert_within_bound(onnx, &c, &input);
        let circuit = ModelCircuit::new(model.clone(), model.quantize_inputs(&input).unwrap()).unwrap();
        let inst = circuit.instances();
        MockProver::run(model.settings.k, &circuit, vec![inst]).unwrap().assert_satisfied();
    }
}

pub(crate) fn weights(seed: u64, n: usize) -> Vec<f32> {
    uniform(&mut rng(seed), n, -0.8, 0.8)
}

#[test]
fn gemm_with_transposes_alpha_beta() {
    for (ta, tb) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let a_dims: &[i64] = if ta == 1 { &[5, 1] } else { &[1, 5] };
        let b_dims: &[i64] = if tb == 1 { &[3, 5] } else { &[5, 3] };
        let onnx = Builder::default()
            .input("x", a_dims)
            .init("b", b_dims, weights(1, 15))
            .init("c", &[3], weights(2, 3))
            .node(
                "Gemm",
                "gemm",
                &["x", "b", "c"],
                "y",
                &[("transA", Attr::Int(ta)), ("transB", Attr::Int(tb)), ("alpha", Attr::Float(0.7)), ("beta", Attr::Float(-1.5))],
            )
            .output("y", &[1, 3])
            .build();
        check(&onnx, 5, 10 + ta as u64 * 2 + tb as u64);
    }
}

/// Gemm's bias is optional (found by the onnx_import fuzz target: the float reference, candle-onnx,
/// indexed the missing input and panicked).
#[test]
fn gemm_without_a_bias() {
    let onnx = Builder::default()
        .input("x", &[1, 5])
        .init("b", &[5, 3], weights(3, 15))
        .node("Gemm", "gemm", &["x", "b"], "y", &[("alpha", Attr::Float(0.5))])
        .output("y", &[1, 3])
        .build();
    check(&onnx, 5, 14);
}

#[test]
fn matmul_batched_activation_and_vector() {
    let onnx = Builder::default()
        .input("x", &[1, 2, 4])
        .init("w", &[4, 3], weights(3, 12))
        .node("MatMul", "mm", &["x", "w"], "y", &[])
        .output("y", &[1, 2, 3])
        .build();
    check(&onnx, 8, 20);
    let onnx = Builder::default()
        .input("x", &[1, 4])
        .init("v", &[4], weights(4, 4))
        .node("MatMul", "mv", &["x", "v"], "y", &[])
        .output("y", &[1])
        .build();
    // candle cannot multiply by a rank-1 tensor, so compare with the float IR instead.
    let c = compile(&onnx, None, &CompileOptions::default()).unwrap();
    let x = vec![0.5f32, -0.25, 1.0, 0.75];
    let exact: f64 = x.iter().zip(weights(4, 4)).map(|(a, b)| f64::from(*a) * f64::from(b)).sum();
    let float = c.graph.eval_f64(&[x.iter().map(|&v| f64::from(v)).collect()]).unwrap();
    assert!((float[c.graph.outputs[0]][0] - exact).abs() < 1e-6);
    let q = c.model.eval(&[x]).unwrap().outputs(&c.model)[0][0];
    assert!((c.model.dequantize(q) - exact).abs() <= c.model.error_bound[0]);
}

#[test]
fn add_sub_mul_with_broadcast_and_constants() {
    for op in ["Add", "Sub", "Mul"] {
        // activation ∘ activation, activation ∘ broadcast constant, constant ∘ activation, scalar
        let onnx = Builder::default()
            .input("x", &[1, 2, 3])
            .init("row", &[3], weights(5, 3))
            .init("s", &[], vec![0.75])
            .node("Relu", "r", &["x"], "rx", &[])
            .node(op, "aa", &["x", "rx"], "t1", &[])
            .node(op, "ac", &["t1", "row"], "t2", &[])
            .node(op, "ca", &["row", "t2"], "t3", &[])
            .node(op, "as", &["t3", "s"], "y", &[])
            .output("y", &[1, 2, 3])
            .build();
        check(&onnx, 6, 30);
    }
    // Broadcast of an activation against another activation's shape.
    let onnx = Builder::default()
        .input("x", &[1, 2, 3])
        .init("w", &[3, 1], weights(6, 3))
        .node("MatMul", "col", &["x", "w"], "c", &[])
        .node("Mul", "bc", &["x", "c"], "y", &[])
        .output("y", &[1, 2, 3])
        .build();
    check(&onnx, 6, 31);
}

#[test]
fn relu_reshape_flatten_identity() {
    let onnx = Builder::default()
        .input("x", &[1, 6])
        .init_i64("shape", vec![0, 2, -1])
        .node("Relu", "relu", &["x"], "r", &[])
        .node("Reshape", "reshape", &["r", "shape"], "s", &[])
        .node("Identity", "id", &["s"], "i", &[])
        .node("Flatten", "flat", &["i"], "y", &[("axis", Attr::Int(1))])
        .output("y", &[1, 6])
        .build();
    check(&onnx, 6, 40);
}

#[test]
fn constant_subgraphs_are_folded() {
    // (w1 · 2) reshaped is computed at compile time: only one linear step remains.
    let onnx = Builder::default()
        .input("x", &[1, 4])
        .init("w1", &[2, 2, 2], weights(7, 8))
        .init("two", &[], vec![2.0])
        .init_i64("shape", vec![4, 2])
        .node("Mul", "scale_w", &["w1", "two"], "w2", &[])
        .node("Reshape", "reshape_w", &["w2", "shape"], "w", &[])
        .node("MatMul", "mm", &["x", "w"], "y", &[])
        .output("y", &[1, 2])
        .build();
    let c = compile(&onnx, None, &CompileOptions::default()).unwrap();
    assert_eq!(c.graph.nodes.len(), 1);
    check(&onnx, 4, 41);
}

#[test]
fn slice_concat_and_constant_of_shape() {
    // Slice an activation (axes 1 and 2, a stride of 2), concatenate it with its ReLU (two
    // activations) and then with a constant (activation + constant), add ConstantOfShape's
    // zeros built from Shape: the exporter pattern.
    let onnx = Builder::default()
        .input("x", &[1, 4, 6])
        .init_i64("starts", vec![1, 0])
        .init_i64("ends", vec![3, 6])
        .init_i64("axes", vec![1, 2])
        .init_i64("steps", vec![1, 2])
        .init("c", &[1, 1, 6], weights(8, 6))
        .node("Slice", "slice", &["x", "starts", "ends", "axes", "steps"], "s", &[])
        .node("Relu", "relu", &["s"], "r", &[])
        .node("Concat", "cat_acts", &["s", "r"], "sr", &[("axis", Attr::Int(2))])
        .node("Concat", "cat_const", &["sr", "c"], "src", &[("axis", Attr::Int(1))])
        .node("Shape", "shape", &["src"], "dims", &[])
        .node("ConstantOfShape", "zeros", &["dims"], "z", &[])
        .node("Add", "plus_zero", &["src", "z"], "y", &[])
        .output("y", &[1, 3, 6])
        .build();
    check(&onnx, 24, 50);
}

#[test]
fn slice_with_negative_indices_and_steps() {
    // x[:, 3:0:-1, -1:-7:-2] on a [1, 4, 6] input, against the float IR and a direct index.
    let onnx = Builder::default()
        .input("x", &[1, 4, 6])
        .init_i64("starts", vec![3, -1])
        .init_i64("ends", vec![0, -7])
        .init_i64("axes", vec![1, -1])
        .init_i64("steps", vec![-1, -2])
        .node("Slice", "slice", &["x", "starts", "ends", "axes", "steps"], "y", &[])
        .output("y", &[1, 3, 3])
        .build();
    let c = compile(&onnx, None, &CompileOptions::default()).unwrap();
    let x: Vec<f32> = (0..24).map(|i| i as f32 / 32.0).collect();
    let expected: Vec<f64> = [3, 2, 1].iter().flat_map(|&r| [5, 3, 1].map(|col| f64::from(x[r * 6 + col]))).collect();
    let float = c.graph.eval_f64(&[x.iter().map(|&v| f64::from(v)).collect()]).unwrap();
    assert_eq!(float[c.graph.outputs[0]], expected);
    let q = c.model.eval(&[x]).unwrap().outputs(&c.model)[0].iter().map(|&v| c.model.dequantize(v)).collect::<Vec<_>>();
    assert_eq!(q, expected, "a re-indexing is exact");
}
