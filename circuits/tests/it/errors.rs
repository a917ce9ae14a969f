//! Bad input gives a clear error naming the problem.

use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::Error;

use crate::builder::{Attr, Builder};
use crate::models::{example, read_input};

#[test]
fn unsupported_op_names_op_and_node() {
    let onnx = std::fs::read(example("unsupported", "model.onnx")).unwrap();
    let err = compile(&onnx, None, &CompileOptions::default()).unwrap_err();
    match &err {
        Error::UnsupportedOp { op_type, node } => assert_eq!((op_type.as_str(), node.as_str()), ("Sin", "act_sin")),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("Sin") && err.to_string().contains("act_sin"));
}

#[test]
fn malformed_onnx_is_rejected() {
    let mut bytes = std::fs::read(example("tiny", "model.onnx")).unwrap();
    bytes.truncate(bytes.len() / 2);
    assert!(matches!(compile(&bytes, None, &CompileOptions::default()), Err(Error::MalformedOnnx { .. })));
    assert!(matches!(compile(b"", None, &CompileOptions::default()), Err(Error::MalformedOnnx { .. })));
}

#[test]
fn unsupported_attribute_names_the_node() {
    let onnx = Builder::default()
        .input("x", &[1, 4])
        .init("w", &[1, 4], vec![1.0, 2.0, 3.0, 4.0])
        .node("Div", "divide_by_activation", &["w", "x"], "y", &[])
        .output("y", &[1, 4])
        .build();
    let err = compile(&onnx, None, &CompileOptions::default()).unwrap_err();
    assert!(matches!(&err, Error::UnsupportedNode { node, .. } if node == "divide_by_activation"), "{err}");
}

fn tiny() -> zkinfer_circuits::compile::Compiled {
    let onnx = std::fs::read(example("tiny", "model.onnx")).unwrap();
    compile(&onnx, Some(&read_input("tiny", "calibration.json")), &CompileOptions::default()).unwrap()
}

#[test]
fn wrong_input_length_and_count() {
    let c = tiny();
    let err = c.model.eval(&[vec![0.0; 7]]).unwrap_err();
    assert!(matches!(err, Error::InputLength { got: 7, expected: 8, .. }), "{err}");
    assert!(matches!(c.model.eval(&[]), Err(Error::InputCount { expected: 1, got: 0 })));
    assert!(matches!(c.model.eval(&[vec![f32::NAN; 8]]), Err(Error::NonFinite { .. })));
}

#[test]
fn overflow_names_the_node() {
    let c = tiny();
    // An input beyond the range fails at the input itself...
    let err = c.model.eval(&[vec![1e6; 8]]).unwrap_err();
    assert!(matches!(&err, Error::Overflow { node, .. } if node.contains("input")), "{err}");
    // ...and a representable input that drives a later node out of range names that node.
    let onnx = Builder::default()
        .input("x", &[1, 2])
        .init("w", &[2, 1], vec![50.0, 50.0])
        .node("MatMul", "amplify", &["x", "w"], "y", &[])
        .output("y", &[1, 1])
        .build();
    let cal = vec![vec![0.01, 0.01]];
    let c = compile(&onnx, Some(&cal), &CompileOptions::default()).unwrap();
    let err = c.model.eval(&[vec![0.9, 0.9]]).unwrap_err();
    assert!(matches!(&err, Error::Overflow { node, .. } if node == "amplify"), "{err}");
    let _ = Attr::Int(0);
}

/// Shapes too large for any circuit are refused at import, naming the node, before anything
/// is allocated for them (found by the onnx_import fuzz target: a Reshape target whose size
/// overflowed `usize`).
#[test]
fn oversized_shapes_are_refused_at_import() {
    let reshape = |target: Vec<i64>| {
        Builder::default()
            .input("x", &[1, 4])
            .init_i64("shape", target)
            .node("Reshape", "huge", &["x", "shape"], "y", &[])
            .output("y", &[1, 4])
            .build()
    };
    for target in [vec![1 << 40, 1 << 40, 1 << 40], vec![-1, 1 << 30, 1 << 30]] {
        let err = zkinfer_circuits::onnx::import_bytes(&reshape(target.clone())).unwrap_err();
        assert!(err.to_string().contains("huge") && err.to_string().contains("more than"), "{target:?}: {err}");
    }
    let input = Builder::default().input("x", &[1 << 20, 1 << 20]).node("Relu", "r", &["x"], "y", &[]).output("y", &[1]).build();
    let err = zkinfer_circuits::onnx::import_bytes(&input).unwrap_err();
    assert!(err.to_string().contains("more than"), "{err}");
}

/// Activations beyond what any circuit can range-check are refused at calibration, naming the
/// tensor (found by the onnx_import fuzz target: a constant of 1e30 made compile shift out of range).
#[test]
fn activations_too_wide_for_any_circuit_are_refused_naming_the_tensor() {
    for c in [1e30f32, f32::INFINITY] {
        let onnx = Builder::default()
            .input("x", &[1, 4])
            .init("c", &[1], vec![c])
            .node("Mul", "scale", &["x", "c"], "y", &[])
            .output("y", &[1, 4])
            .build();
        let err = compile(&onnx, None, &CompileOptions::default()).unwrap_err();
        assert!(matches!(&err, Error::CalibratedRange { tensor, .. } if tensor == "y"), "{c}: {err}");
    }
}

/// A constant factor of zero after wide activations compiles (found by the onnx_import fuzz
/// target: the zero's scale, capped only by twice the table width, overflowed a shift).
#[test]
fn a_zero_factor_after_wide_activations_compiles() {
    let onnx = Builder::default()
        .input("x", &[1, 4])
        .init("big", &[1], vec![1e7])
        .init("zero", &[1], vec![0.0])
        .node("Mul", "widen", &["x", "big"], "w", &[])
        .node("Mul", "nothing", &["w", "zero"], "y", &[])
        .output("y", &[1, 4])
        .build();
    let c = compile(&onnx, None, &CompileOptions::default()).unwrap();
    assert!(c.model.settings.value_bits >= 24, "{:?}", c.model.settings);
}
