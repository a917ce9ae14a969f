//! Model-level negative tests. Each builds a consistent wrong witness: one value changed and
//! every later value recomputed honestly from it, up to the outputs and the public instances
//! that claim them, so that only the constraint under test can catch it. The tests assert
//! that it does, and that nothing else fails.

use std::sync::Arc;

use halo2_proofs::dev::{MockProver, VerifyFailure};

use super::ModelCircuit;
use crate::chips::failure_names;
use crate::compile::{compile, CompileOptions, Compiled};
use crate::data::InputData;
use crate::quant::{MatMulLayout, Mutation, PairsLayout, StepKind};

fn example(name: &str) -> (Compiled, Vec<Vec<f32>>) {
    example_with(name, MatMulLayout::Auto)
}

/// A shipped example compiled with this layout of activation × activation products.
fn example_with(name: &str, matmul: MatMulLayout) -> (Compiled, Vec<Vec<f32>>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name);
    let read = |f: &str| InputData::from_json(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap().input_data;
    let onnx = std::fs::read(dir.join("model.onnx")).unwrap();
    let opts = CompileOptions { matmul, ..CompileOptions::default() };
    (compile(&onnx, Some(&read("calibration.json")), &opts).unwrap(), read("input.json"))
}

/// The name of the Freivalds chip's final gate, which compares `C·r` with `A·(B·r)`.
const FREIVALDS_CHECK: &str = "freivalds check";

/// The failures of the wrong witness, verified against the instances it claims; `None` when
/// it has no witness at all (a value pushed out of its range, which the evaluation refuses).
fn try_mutant(c: &Compiled, input: &[Vec<f32>], m: Mutation) -> Option<Vec<VerifyFailure>> {
    let model = Arc::new(c.model.clone());
    let circuit = ModelCircuit::new(model.clone(), model.quantize_inputs(input).unwrap()).unwrap().with_mutation(m).ok()?;
    let result = MockProver::run(model.settings.k, &circuit, vec![circuit.instances()]).unwrap().verify();
    Some(result.expect_err(&format!("a consistent wrong witness verified: {m:?}")))
}

/// As [`try_mutant`], one unit up or, where that leaves the range, one unit down.
fn mutant(c: &Compiled, input: &[Vec<f32>], m: impl Fn(i64) -> Mutation) -> Vec<String> {
    let failures = [1, -1].into_iter().find_map(|d| try_mutant(c, input, m(d)));
    failure_names(&failures.unwrap_or_else(|| panic!("no witness either way: {:?}", m(1))))
}

/// How MockProver reports a broken copy constraint (a permutation failure).
const PERMUTATION: &str = "Equality constraint not satisfied";

/// Every failure names `expected` (a gate, `lookup …` or [`PERMUTATION`]).
fn assert_only(names: &[String], expected: &str, what: &str) {
    assert!(!names.is_empty() && names.iter().all(|n| n.contains(expected)), "{what}: expected only `{expected}`, got {names:?}");
}

fn step_index(c: &Compiled, node: &str) -> usize {
    c.model.steps.iter().position(|s| s.node == node).unwrap_or_else(|| panic!("no step `{node}`"))
}

/// The first step of `op_type` whose kind `kind` accepts.
fn first_step(c: &Compiled, op_type: &str, kind: fn(&StepKind) -> bool) -> usize {
    c.model.steps.iter().position(|s| s.op_type == op_type && kind(&s.kind)).unwrap_or_else(|| panic!("no {op_type} step of that kind"))
}

fn is_linear(k: &StepKind) -> bool {
    matches!(k, StepKind::Linear { .. })
}

fn is_pairs(k: &StepKind) -> bool {
    matches!(k, StepKind::DotPairs { layout: PairsLayout::Direct, .. })
}

fn is_checked_matmul(k: &StepKind) -> bool {
    matches!(k, StepKind::DotPairs { layout: PairsLayout::Freivalds(_), .. })
}

/// The number of values a step reads from its first operand.
fn operand_len(c: &Compiled, step: usize) -> usize {
    let input = *c.model.steps[step].kind.operands().first().expect("a step that reads an operand");
    c.model.tensors[input].numel()
}

fn assert_output_caught(c: &Compiled, input: &[Vec<f32>], step: usize, expected: &str) {
    let names = mutant(c, input, |delta| Mutation::Output { step, element: 0, delta });
    assert_only(&names, expected, &c.model.steps[step].node);
}

#[test]
fn pooled_max_is_bound_by_its_gate() {
    let (c, input) = example("cnn");
    // The last stage of the first MaxPool's max tree: relu(a − b) + b.
    let node = c.model.steps.iter().filter(|s| s.op_type == "MaxPool" && s.node.contains("/max")).map(|s| s.node.clone()).next_back();
    assert_output_caught(&c, &input, step_index(&c, &node.expect("a MaxPool max step")), "requant output");
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
        assert_output_caught(&c, &input, step_index(&c, node), expected);
    }
}

/// A step that reads a value other than its producer's, and computes honestly on it, breaks
/// only the copy constraint between the two: for every kind of step that copies an operand.
#[test]
fn a_wrong_read_at_each_kind_of_copy_fails_only_the_permutation() {
    let (c, input) = example("cnn");
    let conv2 = c.model.steps.iter().filter(|s| s.op_type == "Conv" && is_linear(&s.kind)).nth(1).map(|s| s.node.clone());
    let reads = [
        first_step(&c, "Conv", is_linear),
        step_index(&c, &conv2.expect("two convolutions")), // reads zero padding
        first_step(&c, "Relu", |k| matches!(k, StepKind::Relu { .. })),
        first_step(&c, "MaxPool", |k| matches!(k, StepKind::Elementwise { .. })),
        first_step(&c, "Gemm", is_linear),
    ];
    for step in reads {
        for element in [0, operand_len(&c, step) / 2] {
            let names = mutant(&c, &input, |delta| Mutation::Read { step, operand: 0, element, delta });
            assert_only(&names, PERMUTATION, &c.model.steps[step].node);
        }
    }
    let (t, input) = example_with("transformer", MatMulLayout::Direct);
    let pairs = first_step(&t, "MatMul", is_pairs);
    let function = first_step(&t, "Softmax", |k| matches!(k, StepKind::Function { .. }));
    let binary = t.model.steps.iter().position(|s| matches!(s.kind, StepKind::Elementwise { y: Some(_), .. })).expect("a binary step");
    for (step, operand) in [(pairs, 0), (pairs, 1), (function, 0), (binary, 1)] {
        let element = operand_len(&t, step) / 2;
        let names = mutant(&t, &input, |delta| Mutation::Read { step, operand, element, delta });
        assert_only(&names, PERMUTATION, &format!("{} operand {operand}", t.model.steps[step].node));
    }
}

/// A matrix product checked with a random challenge reads each factor once, at the gathered
/// pair of its first row or column: a wrong value there breaks the copy (and the product
/// computed on it, the check); a wrong value at another pair is never read by the circuit,
/// and the sums computed on it fail the check alone.
#[test]
fn a_checked_matmul_catches_a_wrong_read_by_its_copy_or_its_check() {
    let (t, input) = example("transformer");
    let step = first_step(&t, "MatMul", is_checked_matmul);
    let StepKind::DotPairs { layout: PairsLayout::Freivalds(d), .. } = t.model.steps[step].kind else { unreachable!() };
    assert!(d.n > 1 && d.m > 1, "{d:?}");
    for operand in [0, 1] {
        // A[1][1] is read at pair ((0·m + 1)·n + 0)·k + 1 (column 0), B[1][1] at pair
        // ((0·m + 0)·n + 1)·k + 1 (row 0).
        let read = if operand == 0 { d.n * d.k + 1 } else { d.k + 1 };
        let names = mutant(&t, &input, |delta| Mutation::Read { step, operand, element: read, delta });
        assert!(names.iter().any(|n| n.contains(PERMUTATION)), "operand {operand}: {names:?}");
        assert!(names.iter().all(|n| n.contains(PERMUTATION) || n.contains(FREIVALDS_CHECK)), "operand {operand}: {names:?}");
        // Pair ((0·m + 1)·n + 1)·k + 1 pairs A[1][1] (for column 1) with B[1][1] (for row 1):
        // neither factor's first use.
        let unread = (d.n + 1) * d.k + 1;
        let names = mutant(&t, &input, |delta| Mutation::Read { step, operand, element: unread, delta });
        assert_only(&names, FREIVALDS_CHECK, &format!("operand {operand} at an unread pair"));
    }
}

/// "Commit to x′, compute on x": the commitment holds the honest input, the model reads
/// another; only the copy from the committed cells catches it.
#[test]
fn computing_on_another_input_than_the_committed_one_fails_the_permutation() {
    let (c, input) = example("mlp");
    let n = c.model.input_sizes()[0];
    for element in [0, n / 2, n - 1] {
        assert_only(&mutant(&c, &input, |delta| Mutation::Input { element, delta }), PERMUTATION, &format!("input {element}"));
    }
}

/// The zero-padding cell (read by the padded convolution) is fixed to 0 by a constant copy.
#[test]
fn a_nonzero_padding_cell_fails_its_constant_copy() {
    let (c, input) = example("cnn");
    assert!(c.model.steps.iter().any(|s| matches!(&s.kind, StepKind::View { index, .. } if index.iter().any(Option::is_none))));
    assert_only(&mutant(&c, &input, |delta| Mutation::Zero { delta }), PERMUTATION, "zero cell");
}

/// A wrong sum or product, rescaled honestly, breaks the gate that computes it.
#[test]
fn consistent_wrong_accumulators_fail_their_gate() {
    // Direct: `auto` checks the CNN's convolutions with a challenge.
    let (c, input) = example_with("cnn", MatMulLayout::Direct);
    for step in [first_step(&c, "Conv", is_linear), first_step(&c, "Gemm", is_linear)] {
        for element in [0, c.model.tensors[c.model.steps[step].output].numel() - 1] {
            let names = mutant(&c, &input, |delta| Mutation::Accumulator { step, element, delta });
            assert_only(&names, "dot mac", &c.model.steps[step].node);
        }
    }
    let max = first_step(&c, "MaxPool", |k| matches!(k, StepKind::Elementwise { .. }));
    let names = mutant(&c, &input, |delta| Mutation::Accumulator { step: max, element: 3, delta });
    assert_only(&names, "elementwise", "MaxPool difference");
    let (t, input) = example_with("transformer", MatMulLayout::Direct);
    let pairs = first_step(&t, "MatMul", is_pairs);
    let names = mutant(&t, &input, |delta| Mutation::Accumulator { step: pairs, element: 5, delta });
    assert_only(&names, "elementwise", "activation product");
    // Checked with a challenge, a wrong product (a sum off by one) fails the check alone.
    let (t, input) = example("transformer");
    let checked = first_step(&t, "MatMul", is_checked_matmul);
    for element in [0, 5, operand_len(&t, checked) - 1] {
        let names = mutant(&t, &input, |delta| Mutation::Accumulator { step: checked, element, delta });
        assert_only(&names, FREIVALDS_CHECK, &format!("checked product {element}"));
    }
}

/// A projection over a sequence checked with a random challenge (its weights in the check's
/// fixed column): a wrong sum fails the check alone, a wrong read of its input the
/// permutation, a wrong rescaled output the rescale's gate.
#[test]
fn a_checked_projection_binds_its_sums_inputs_and_outputs() {
    let (t, input) = example_with("transformer", MatMulLayout::Freivalds);
    let step = first_step(&t, "MatMul", |k| matches!(k, StepKind::Linear { checked: true, .. }));
    let outputs = t.model.tensors[t.model.steps[step].output].numel();
    for element in [0, 17, outputs - 1] {
        let names = mutant(&t, &input, |delta| Mutation::Accumulator { step, element, delta });
        assert_only(&names, FREIVALDS_CHECK, &format!("projection sum {element}"));
    }
    for element in [0, operand_len(&t, step) / 2] {
        let names = mutant(&t, &input, |delta| Mutation::Read { step, operand: 0, element, delta });
        assert!(names.iter().any(|n| n.contains(PERMUTATION)), "projection input {element}: {names:?}");
    }
    assert_output_caught(&t, &input, step, "requant output");
}

/// The rescaled outputs of a product of two activations, a convolution and an average pool
/// are bound by the rescale's output gate.
#[test]
fn dot_pairs_conv_and_average_pool_outputs_are_bound() {
    let (t, input) = example_with("transformer", MatMulLayout::Direct);
    assert_output_caught(&t, &input, first_step(&t, "MatMul", is_pairs), "requant output");
    let (t, input) = example("transformer");
    assert_output_caught(&t, &input, first_step(&t, "MatMul", is_checked_matmul), "requant output");
    let (c, input) = example("cnn");
    assert_output_caught(&c, &input, first_step(&c, "Conv", is_linear), "requant output");
    let (a, input) = average_pool(MatMulLayout::Direct);
    let mean = first_step(&a, "AveragePool", is_linear);
    assert_output_caught(&a, &input, mean, "requant output");
    assert_only(&mutant(&a, &input, |delta| Mutation::Accumulator { step: mean, element: 4, delta }), "dot mac", "pool sum");
    assert_only(&mutant(&a, &input, |delta| Mutation::Read { step: mean, operand: 0, element: 7, delta }), PERMUTATION, "pool window");
}

/// An AveragePool model (none of the shipped examples has one), with a random input.
fn average_pool(matmul: MatMulLayout) -> (Compiled, Vec<Vec<f32>>) {
    use crate::test_onnx::{rng, uniform, Attr, Builder};
    let onnx = Builder::default()
        .input("x", &[1, 2, 6, 6])
        .node("AveragePool", "pool", &["x"], "y", &[("kernel_shape", Attr::Ints(vec![3, 3])), ("strides", Attr::Ints(vec![3, 3]))])
        .output("y", &[1, 2, 2, 2])
        .build();
    let input = vec![uniform(&mut rng(7), 72, -1.0, 1.0)];
    (compile(&onnx, Some(&input), &CompileOptions { matmul, ..CompileOptions::default() }).unwrap(), input)
}

/// A quotient one unit off with the remainder moved to match keeps the rounding identity:
/// only the remainder's range check catches it, at every kind of rescale.
#[test]
fn a_quotient_shifted_with_its_remainder_fails_only_the_remainder_range() {
    let (c, input) = example("cnn");
    for step in [first_step(&c, "Conv", is_linear), first_step(&c, "Relu", |k| matches!(k, StepKind::Relu { .. }))] {
        let names = mutant(&c, &input, |delta| Mutation::Quotient { step, element: 1, delta });
        assert_only(&names, "lookup requant remainder", &c.model.steps[step].node);
    }
}

/// A model whose steps are checked but whose settings lack the second phase (a file that
/// skipped validation) would leave the checked sums free: synthesis refuses it.
#[test]
fn checked_steps_without_the_second_phase_do_not_synthesize() {
    let (t, input) = example("transformer");
    assert!(t.model.steps.iter().any(|s| is_checked_matmul(&s.kind)));
    let mut model = t.model.clone();
    model.settings.challenge_advice = 0;
    let model = Arc::new(model);
    let circuit = ModelCircuit::new(model.clone(), model.quantize_inputs(&input).unwrap()).unwrap();
    assert!(MockProver::run(model.settings.k, &circuit, vec![circuit.instances()]).is_err());
}

/// An input whose packed elements equal the honest input's: `x0 − 1` and `x1 + 2^(V+1)` shift
/// one limb's weight into its neighbour, so the commitment holds, and only the range check on
/// the inputs' rows (the limb's high part out of range) rejects the pushed-out value.
#[test]
fn an_input_that_packs_like_the_honest_one_fails_only_the_range_check_of_its_rows() {
    use super::salted_commitment;
    use crate::quant::{requant, RequantValues};
    use halo2_proofs::halo2curves::bn256::Fr;
    let (c, input) = example("mlp");
    let model = Arc::new(c.model.clone());
    assert_eq!(model.settings.input_visibility, crate::quant::Visibility::Hashed);
    let honest = ModelCircuit::new(model.clone(), model.quantize_inputs(&input).unwrap()).unwrap();
    let v = model.settings.value_bits;
    let (x0, x1) = (honest.inputs[0][0], honest.inputs[0][1]);
    let (y0, y1) = (x0 - 1, x1 + (1i64 << (v + 1)));
    assert_eq!(salted_commitment(&[vec![y0, y1]], Fr::zero(), v), salted_commitment(&[vec![x0, x1]], Fr::zero(), v));
    let mut trace = (*honest.trace).clone();
    trace.inputs[0][0] = requant(i128::from(y0), 0, false, v).unwrap();
    assert!(requant(i128::from(y1), 0, false, v).is_none(), "out of range");
    trace.inputs[0][1] = RequantValues { a: i128::from(y1), q: y1, rem: 0, b: true, u: y1, y: y1 };
    let wrong = ModelCircuit::from_trace(model.clone(), honest.inputs.clone(), Arc::new(trace));
    let failures = MockProver::run(model.settings.k, &wrong, vec![honest.instances()]).unwrap().verify().unwrap_err();
    let names = failure_names(&failures);
    assert!(names.iter().any(|n| n == "lookup requant value high range"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("poseidon") || n.contains("pack")), "the packs and the hash hold: {names:?}");
}
