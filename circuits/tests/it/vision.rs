//! Differential tests of the vision and shape ops against candle, with the circuit checked
//! under MockProver (see `ops::check`).

use crate::builder::{Attr, Builder};
use crate::ops::{check, weights};
use zkinfer_circuits::compile::compile;
use zkinfer_circuits::reference::candle_outputs;

fn conv(strides: [i64; 2], pads: [i64; 4], dilations: [i64; 2], out_hw: i64) -> Vec<u8> {
    Builder::default()
        .input("x", &[1, 2, 7, 7])
        .init("w", &[3, 2, 3, 3], weights(50, 54))
        .init("b", &[3], weights(51, 3))
        .node(
            "Conv",
            "conv",
            &["x", "w", "b"],
            "y",
            &[
                ("kernel_shape", Attr::Ints(vec![3, 3])),
                ("strides", Attr::Ints(strides.to_vec())),
                ("pads", Attr::Ints(pads.to_vec())),
                ("dilations", Attr::Ints(dilations.to_vec())),
            ],
        )
        .output("y", &[1, 3, out_hw, out_hw])
        .build()
}

#[test]
fn conv_with_stride_padding_and_dilation() {
    check(&conv([1, 1], [0, 0, 0, 0], [1, 1], 5), 98, 60);
    check(&conv([2, 2], [1, 1, 1, 1], [1, 1], 4), 98, 61);
    check(&conv([1, 1], [1, 1, 1, 1], [2, 2], 5), 98, 62);
}

fn pool(op: &str, kernel: i64, stride: i64, out_hw: i64) -> Vec<u8> {
    let mut attrs = vec![("kernel_shape", Attr::Ints(vec![kernel, kernel])), ("strides", Attr::Ints(vec![stride, stride]))];
    if op == "GlobalAveragePool" {
        attrs.clear();
    }
    Builder::default().input("x", &[1, 2, 6, 6]).node(op, "pool", &["x"], "y", &attrs).output("y", &[1, 2, out_hw, out_hw]).build()
}

#[test]
fn max_and_average_pooling() {
    check(&pool("MaxPool", 2, 2, 3), 72, 70);
    check(&pool("MaxPool", 3, 1, 4), 72, 71);
    check(&pool("AveragePool", 2, 2, 3), 72, 72);
}

#[test]
fn global_average_pool_matches_a_full_window_average_pool() {
    // candle has no GlobalAveragePool: its reference is AveragePool over the whole 6×6 plane.
    let global = pool("GlobalAveragePool", 0, 0, 1);
    let equivalent = pool("AveragePool", 6, 1, 1);
    let mut r = crate::builder::rng(73);
    let c = compile(&global, Some(&[crate::builder::uniform(&mut r, 72 * 8, -1.0, 1.0)]), &Default::default()).unwrap();
    for _ in 0..3 {
        let x = vec![crate::builder::uniform(&mut r, 72, -1.0, 1.0)];
        let reference = candle_outputs(&equivalent, &c.graph, &x).unwrap();
        let q = c.model.eval(&x).unwrap().outputs(&c.model);
        for (a, b) in q[0].iter().zip(&reference[0]) {
            assert!((c.model.dequantize(*a) - f64::from(*b)).abs() <= c.model.error_bound[0]);
        }
    }
    check_circuit_only(&global, 72, 74);
}

/// MockProver only (for ops candle cannot run).
fn check_circuit_only(onnx: &[u8], input_len: usize, seed: u64) {
    use std::sync::Arc;
    let mut r = crate::builder::rng(seed);
    let c = compile(onnx, Some(&[crate::builder::uniform(&mut r, input_len * 4, -1.0, 1.0)]), &Default::default()).unwrap();
    let model = Arc::new(c.model);
    let circuit = zkinfer_circuits::circuit::ModelCircuit::new(
        model.clone(),
        model.quantize_inputs(&[crate::builder::uniform(&mut r, input_len, -1.0, 1.0)]).unwrap(),
    )
    .unwrap();
    let inst = circuit.instances();
    halo2_proofs::dev::MockProver::run(model.settings.k, &circuit, vec![inst]).unwrap().assert_satisfied();
}

#[test]
fn batch_normalization() {
    let onnx = Builder::default()
        .input("x", &[1, 3, 2, 2])
        .init("scale", &[3], vec![1.5, -0.5, 0.8])
        .init("bias", &[3], vec![0.1, 0.2, -0.3])
        .init("mean", &[3], vec![0.05, -0.1, 0.2])
        .init("var", &[3], vec![0.9, 1.2, 0.5])
        .node("BatchNormalization", "bn", &["x", "scale", "bias", "mean", "var"], "y", &[("epsilon", Attr::Float(1e-5))])
        .output("y", &[1, 3, 2, 2])
        .build();
    check(&onnx, 12, 80);
}

#[test]
fn transpose_squeeze_unsqueeze() {
    let onnx = Builder::default()
        .input("x", &[1, 3, 4])
        .init_i64("ax0", vec![0])
        .init_i64("ax_last", vec![-1])
        .node("Transpose", "t", &["x"], "t_out", &[("perm", Attr::Ints(vec![0, 2, 1]))])
        .node("Squeeze", "sq", &["t_out", "ax0"], "s_out", &[])
        .node("Transpose", "t2", &["s_out"], "t2_out", &[])
        .node("Unsqueeze", "unsq", &["t2_out", "ax_last"], "y", &[])
        .output("y", &[3, 4, 1])
        .build();
    check(&onnx, 12, 90);
}

#[test]
fn exporter_shape_noise_is_folded() {
    // What torch.onnx emits for `x.view(x.size(0), -1)`: Shape → Gather → Unsqueeze → Concat → Reshape.
    let onnx = Builder::default()
        .input("x", &[1, 2, 3])
        .init_i64_dims("zero", &[], vec![0])
        .init_i64("axes", vec![0])
        .init_i64("minus_one", vec![-1])
        .init("w", &[6, 2], weights(91, 12))
        .node("Shape", "shape", &["x"], "shp", &[])
        .node("Gather", "batch", &["shp", "zero"], "n", &[("axis", Attr::Int(0))])
        .node("Unsqueeze", "n1", &["n", "axes"], "n_1d", &[])
        .node("Concat", "target", &["n_1d", "minus_one"], "tgt", &[("axis", Attr::Int(0))])
        .node("Reshape", "flatten", &["x", "tgt"], "flat", &[])
        .node("MatMul", "fc", &["flat", "w"], "y", &[])
        .output("y", &[1, 2])
        .build();
    let c = zkinfer_circuits::compile::compile(&onnx, None, &Default::default()).unwrap();
    // Only the reshape (a re-indexing) and the matmul remain.
    assert_eq!(c.graph.nodes.len(), 2, "{:?}", c.graph.nodes.iter().map(|n| &n.name).collect::<Vec<_>>());
    check(&onnx, 6, 92);
}

#[test]
fn gather_rows_of_an_activation() {
    let onnx = Builder::default()
        .input("x", &[4, 3])
        .init_i64("rows", vec![2, 0, -1])
        .node("Gather", "pick", &["x", "rows"], "y", &[("axis", Attr::Int(0))])
        .output("y", &[3, 3])
        .build();
    check(&onnx, 12, 93);
}

#[test]
fn reduce_sum_and_mean() {
    let onnx = Builder::default()
        .input("x", &[1, 3, 4])
        .init_i64("axes", vec![2])
        .node("ReduceSum", "sum", &["x", "axes"], "s", &[("keepdims", Attr::Int(1))])
        .node("ReduceMean", "mean", &["s"], "y", &[("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))])
        .output("y", &[1, 1])
        .build();
    check(&onnx, 12, 100);
}

#[test]
fn div_and_pow_by_constants() {
    let onnx = Builder::default()
        .input("x", &[1, 6])
        .init("d", &[6], vec![2.0, -4.0, 0.5, 3.0, 8.0, -1.5])
        .init("two", &[], vec![2.0])
        .init("three", &[], vec![3.0])
        .node("Div", "div", &["x", "d"], "q", &[])
        .node("Pow", "square", &["q", "two"], "sq", &[])
        .node("Pow", "cube", &["x", "three"], "cu", &[])
        .node("Add", "sum", &["sq", "cu"], "y", &[])
        .output("y", &[1, 6])
        .build();
    check(&onnx, 6, 101);
}

#[test]
fn matmul_of_two_activations_as_in_attention() {
    // scores = (x·Wq)·(x·Wk)ᵀ on a sequence of 4 tokens of width 3.
    let onnx = Builder::default()
        .input("x", &[1, 4, 3])
        .init("wq", &[3, 3], weights(102, 9))
        .init("wk", &[3, 3], weights(103, 9))
        .node("MatMul", "q", &["x", "wq"], "q_out", &[])
        .node("MatMul", "k", &["x", "wk"], "k_out", &[])
        .node("Transpose", "kt", &["k_out"], "kt_out", &[("perm", Attr::Ints(vec![0, 2, 1]))])
        .node("MatMul", "scores", &["q_out", "kt_out"], "y", &[])
        .output("y", &[1, 4, 4])
        .build();
    check(&onnx, 12, 104);
}

fn unary(op: &str) -> Vec<u8> {
    Builder::default()
        .input("x", &[1, 6])
        .init("w", &[6, 6], weights(110, 36))
        .node("MatMul", "mix", &["x", "w"], "h", &[])
        .node(op, "f", &["h"], "y", &[])
        .output("y", &[1, 6])
        .build()
}

#[test]
fn exp_sigmoid_tanh_erf_gelu_through_tables() {
    for (i, op) in ["Exp", "Sigmoid", "Tanh", "Erf", "Gelu"].iter().enumerate() {
        check(&unary(op), 6, 111 + i as u64);
    }
}

#[test]
fn sqrt_of_a_nonnegative_activation() {
    let onnx = Builder::default()
        .input("x", &[1, 6])
        .node("Relu", "r", &["x"], "rx", &[])
        .node("Sqrt", "sqrt", &["rx"], "y", &[])
        .output("y", &[1, 6])
        .build();
    check(&onnx, 6, 120);
}

#[test]
fn input_outside_a_function_table_is_an_error_naming_the_node() {
    let onnx = unary("Tanh");
    // Calibrated on tiny values, the table is too coarse for 1% accuracy: accept any, this
    // test is about inputs beyond the table.
    let opts = zkinfer_circuits::compile::CompileOptions {
        max_error: zkinfer_circuits::compile::MaxError::Absolute(f64::INFINITY),
        ..Default::default()
    };
    let c = compile(&onnx, Some(&[vec![0.01; 6]]), &opts).unwrap();
    let err = c.model.eval(&[vec![1.0; 6]]).unwrap_err();
    assert!(matches!(&err, zkinfer_circuits::Error::OutsideTable { node, .. } if node == "f"), "{err}");
}

#[test]
fn softmax_over_the_last_axis() {
    let onnx = Builder::default()
        .input("x", &[1, 3, 5])
        .init("w", &[5, 5], weights(130, 25))
        .node("MatMul", "logits", &["x", "w"], "l", &[])
        .node("Softmax", "softmax", &["l"], "y", &[("axis", Attr::Int(-1))])
        .output("y", &[1, 3, 5])
        .build();
    check(&onnx, 15, 131);
}

#[test]
fn layer_normalization_matches_its_definition() {
    // candle has no LayerNormalization: compare with the formula computed here in f64.
    let (gamma, beta) = (weights(140, 6), weights(141, 6));
    let onnx = Builder::default()
        .input("x", &[1, 2, 6])
        .init("g", &[6], gamma.clone())
        .init("b", &[6], beta.clone())
        .node("LayerNormalization", "ln", &["x", "g", "b"], "y", &[("axis", Attr::Int(-1)), ("epsilon", Attr::Float(1e-5))])
        .output("y", &[1, 2, 6])
        .build();
    let mut r = crate::builder::rng(142);
    // Enough calibration rows that the smallest variance seen bounds the fresh inputs' variances.
    let c = compile(&onnx, Some(&[crate::builder::uniform(&mut r, 12 * 64, -1.0, 1.0)]), &Default::default()).unwrap();
    for _ in 0..3 {
        let x = crate::builder::uniform(&mut r, 12, -1.0, 1.0);
        let q = c.model.eval(std::slice::from_ref(&x)).unwrap().outputs(&c.model);
        for row in 0..2 {
            let v: Vec<f64> = x[row * 6..(row + 1) * 6].iter().map(|&a| f64::from(a)).collect();
            let mean = v.iter().sum::<f64>() / 6.0;
            let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 6.0;
            for j in 0..6 {
                let expected = (v[j] - mean) / (var + 1e-5).sqrt() * f64::from(gamma[j]) + f64::from(beta[j]);
                let got = c.model.dequantize(q[0][row * 6 + j]);
                assert!((got - expected).abs() <= c.model.error_bound[0], "{got} vs {expected} (bound {})", c.model.error_bound[0]);
            }
        }
    }
    check_circuit_only(&onnx, 12, 143);
}
