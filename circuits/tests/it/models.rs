//! Shipped examples: float IR vs candle, quantized vs candle within the reported bound,
//! and the full model circuit under MockProver.

use std::path::PathBuf;
use std::sync::Arc;

use halo2_proofs::dev::{MockProver, VerifyFailure};
use halo2_proofs::halo2curves::bn256::Fr;
use zkinfer_circuits::circuit::ModelCircuit;
use zkinfer_circuits::compile::{calibration_samples, compile, CompileOptions, Compiled};
use zkinfer_circuits::data::InputData;
use zkinfer_circuits::quant::StepKind;
use zkinfer_circuits::reference::candle_outputs;

pub(crate) fn example(name: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name).join(file)
}

pub(crate) fn read_input(name: &str, file: &str) -> Vec<Vec<f32>> {
    InputData::from_json(&std::fs::read_to_string(example(name, file)).unwrap()).unwrap().input_data
}

fn compile_example(name: &str) -> (Vec<u8>, Compiled) {
    let onnx = std::fs::read(example(name, "model.onnx")).unwrap();
    let cal = read_input(name, "calibration.json");
    let compiled = compile(&onnx, Some(&cal), &CompileOptions::default()).unwrap();
    (onnx, compiled)
}

/// Max |quantized − candle| over the outputs, and checks it against the compile-time bound.
pub(crate) fn assert_within_bound(onnx: &[u8], c: &Compiled, input: &[Vec<f32>]) -> f64 {
    let reference = candle_outputs(onnx, &c.graph, input).unwrap();
    let trace = c.model.eval(input).unwrap();
    let mut worst = 0.0f64;
    for (i, (q, r)) in trace.outputs(&c.model).iter().zip(&reference).enumerate() {
        let err = q.iter().zip(r).map(|(&q, &r)| (c.model.dequantize(q) - f64::from(r)).abs()).fold(0.0, f64::max);
        assert!(err <= c.model.error_bound[i], "output {i}: error {err} exceeds bound {}", c.model.error_bound[i]);
        worst = worst.max(err);
    }
    worst
}

/// The float IR agrees with candle (both are float inference of the same graph).
fn assert_ir_matches_candle(onnx: &[u8], c: &Compiled, input: &[Vec<f32>]) {
    let reference = candle_outputs(onnx, &c.graph, input).unwrap();
    let ours = c.graph.eval_f64(&input.iter().map(|v| v.iter().map(|&x| f64::from(x)).collect()).collect::<Vec<_>>()).unwrap();
    for (&o, r) in c.graph.outputs.iter().zip(&reference) {
        for (a, b) in ours[o].iter().zip(r) {
            assert!((a - f64::from(*b)).abs() <= 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }
}

#[test]
fn examples_match_candle_within_bound() {
    // Issue #3's accuracy target: ≤ 1e-3 against float where outputs are about 1-4 (the tiny
    // model's outputs reach 8 at a 2^-9 scale, so it gets 1e-2).
    for (name, limit) in [("tiny", 1e-2), ("mlp", 1e-3), ("cnn", 1e-3), ("transformer", 1e-3), ("torch_cnn", 1e-3)] {
        let (onnx, c) = compile_example(name);
        let input = read_input(name, "input.json");
        assert_ir_matches_candle(&onnx, &c, &input);
        let err = assert_within_bound(&onnx, &c, &input);
        // The bound is worst-case (and loose for the transformer); the measured error is the target.
        assert!(err <= limit, "{name}: error {err} > {limit}");
        for sample in calibration_samples(&c.graph, Some(&read_input(name, "calibration.json"))).unwrap() {
            let s: Vec<Vec<f32>> = sample.iter().map(|v| v.iter().map(|&x| x as f32).collect()).collect();
            assert_within_bound(&onnx, &c, &s);
        }
    }
}

fn mock(c: &Compiled, input: &[Vec<f32>], tweak: impl FnOnce(&mut Vec<Fr>)) -> Result<(), Vec<VerifyFailure>> {
    let model = Arc::new(c.model.clone());
    let circuit = ModelCircuit::new(model.clone(), model.quantize_inputs(input).unwrap()).unwrap();
    let mut instances = circuit.instances();
    tweak(&mut instances);
    MockProver::run(model.settings.k, &circuit, vec![instances]).unwrap().verify()
}

#[test]
fn tiny_model_circuit_is_satisfied_and_binds_outputs() {
    let (_, c) = compile_example("tiny");
    let input = read_input("tiny", "input.json");
    assert_eq!(mock(&c, &input, |_| ()), Ok(()));
    // Any output off by one unit, or another commitment, breaks the copy to the instance.
    let n = 1 + c.model.output_shapes()[0].iter().product::<usize>();
    for i in 0..n {
        let failures = mock(&c, &input, |inst| inst[i] += Fr::one()).unwrap_err();
        assert!(failures.iter().any(|f| matches!(f, VerifyFailure::Permutation { .. })), "instance {i}: {failures:?}");
    }
}

#[test]
fn cnn_circuit_is_satisfied_and_binds_outputs() {
    let (_, c) = compile_example("cnn");
    let input = read_input("cnn", "input.json");
    assert_eq!(mock(&c, &input, |_| ()), Ok(()));
    let failures = mock(&c, &input, |inst| inst[3] += Fr::one()).unwrap_err();
    assert!(failures.iter().any(|f| matches!(f, VerifyFailure::Permutation { .. })), "{failures:?}");
}

/// A model exported by torch.onnx (Shape/Gather/Unsqueeze/Concat before a Reshape, Constant
/// nodes, a BatchNormalization folded into its Conv) is satisfied and binds its outputs.
#[test]
fn torch_exported_cnn_circuit_is_satisfied() {
    let (_, c) = compile_example("torch_cnn");
    let ops: Vec<&str> = c.graph.nodes.iter().map(|n| n.op_type.as_str()).collect();
    assert!(!ops.contains(&"Shape") && ops.contains(&"Reshape"), "the shape arithmetic is folded away: {ops:?}");
    // The BatchNormalization's multiply and add were folded into the Conv: no elementwise step is left.
    assert!(c.model.steps.iter().all(|s| s.op_type != "BatchNormalization" || matches!(s.kind, StepKind::View { .. })));
    let input = read_input("torch_cnn", "input.json");
    assert_eq!(mock(&c, &input, |_| ()), Ok(()));
    let failures = mock(&c, &input, |inst| inst[1] += Fr::one()).unwrap_err();
    assert!(failures.iter().any(|f| matches!(f, VerifyFailure::Permutation { .. })), "{failures:?}");
}

/// Argmax agreement of the quantized CNN with candle's float inference on 200 random images
/// (fixed seed). The figure is recorded in papers/benchmarks.md.
#[test]
fn cnn_argmax_agrees_with_float_on_200_random_inputs() {
    use rand::{Rng, SeedableRng};
    let (onnx, c) = compile_example("cnn");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(200);
    let argmax = |v: &[f64]| v.iter().enumerate().fold((0, f64::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0;
    let (mut agree, mut worst) = (0, 0.0f64);
    for _ in 0..200 {
        let x: Vec<f32> = (0..144).map(|_| rng.gen_range(0.0..1.0)).collect();
        let float: Vec<f64> = candle_outputs(&onnx, &c.graph, std::slice::from_ref(&x)).unwrap()[0].iter().map(|&v| f64::from(v)).collect();
        let q: Vec<f64> = c.model.eval(&[x]).unwrap().outputs(&c.model)[0].iter().map(|&v| c.model.dequantize(v)).collect();
        worst = float.iter().zip(&q).map(|(a, b)| (a - b).abs()).fold(worst, f64::max);
        agree += usize::from(argmax(&float) == argmax(&q));
    }
    println!("cnn: argmax agreement {agree}/200, max |quantized − float| {worst:.2e}");
    assert!(worst <= c.model.error_bound[0]);
    // Outputs whose top two logits are closer than the error can legitimately swap.
    assert!(agree >= 190, "argmax agreement {agree}/200");
}

#[test]
fn every_visibility_binds_what_it_exposes() {
    use zkinfer_circuits::chips::{fr_from_i64, poseidon};
    use zkinfer_circuits::quant::Visibility::{Hashed, Private, Public};
    let onnx = std::fs::read(example("tiny", "model.onnx")).unwrap();
    let cal = read_input("tiny", "calibration.json");
    let input = read_input("tiny", "input.json");
    for (vin, vout) in [(Public, Public), (Private, Public), (Hashed, Hashed), (Public, Hashed), (Private, Hashed)] {
        let opts = CompileOptions { input_visibility: vin, output_visibility: vout, ..Default::default() };
        let c = compile(&onnx, Some(&cal), &opts).unwrap();
        let model = Arc::new(c.model.clone());
        let q = model.quantize_inputs(&input).unwrap();
        let circuit = ModelCircuit::new(model.clone(), q.clone()).unwrap();
        let inst = circuit.instances();
        assert_eq!(inst.len(), model.num_instances(), "{vin:?}/{vout:?}");
        let n_in = model.input_instances();
        if vin == Public {
            assert_eq!(&inst[..n_in], q[0].iter().map(|&v| fr_from_i64(v)).collect::<Vec<_>>().as_slice());
        }
        if vout == Hashed {
            let outs: Vec<Fr> = model.eval_quantized(&q).unwrap().outputs(&model).concat().into_iter().map(fr_from_i64).collect();
            assert_eq!(inst[model.output_offset()], poseidon::commit(&outs));
        }
        if vin == Hashed {
            assert_eq!(inst[0], zkinfer_circuits::circuit::salted_commitment(&q, Fr::zero(), model.settings.value_bits));
        }
        assert_eq!(&inst[n_in..model.output_offset()], &[Fr::zero(); 4], "an unbound circuit binds no payee");
        assert_eq!(MockProver::run(model.settings.k, &circuit, vec![inst.clone()]).unwrap().verify(), Ok(()), "{vin:?}/{vout:?}");
        for i in 0..inst.len() {
            let mut bad = inst.clone();
            bad[i] += Fr::one();
            assert!(
                MockProver::run(model.settings.k, &circuit, vec![bad]).unwrap().verify().is_err(),
                "{vin:?}/{vout:?}: instance {i} changed"
            );
        }
    }
    let private_out = CompileOptions { output_visibility: Private, ..Default::default() };
    assert!(compile(&onnx, None, &private_out).is_err(), "private outputs would bind nothing");
}

/// `--target settlement` keeps the narrowest dot groups, and takes wider ones only when the
/// narrowest do not fit under `--max-k`; `resources` widens them when that proves faster.
#[test]
fn settlement_keeps_the_narrowest_groups_that_fit() {
    use zkinfer_circuits::compile::Target;
    let onnx = std::fs::read(example("mlp", "model.onnx")).unwrap();
    let cal = read_input("mlp", "calibration.json");
    let with =
        |target, max_k| compile(&onnx, Some(&cal), &CompileOptions { target, max_k, ..CompileOptions::default() }).unwrap().model.settings;
    let narrow = with(Target::Settlement, None);
    assert_eq!((narrow.dot_lanes, narrow.k), (13, 14));
    let fast = with(Target::Resources, None);
    assert!(fast.dot_lanes > 13 && fast.k < 14, "resources: {} lanes at k = {}", fast.dot_lanes, fast.k);
    // 13 lanes need k = 14; under --max-k 13 the narrowest groups that fit are wider.
    let capped = with(Target::Settlement, Some(13));
    assert!(capped.dot_lanes > 13 && capped.k == 13, "{} lanes at k = {}", capped.dot_lanes, capped.k);
    assert!(capped.dot_lanes <= with(Target::Resources, Some(13)).dot_lanes);
}
