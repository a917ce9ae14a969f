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
