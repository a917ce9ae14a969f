//! Constant attention masks before a Softmax (issue #17): masked entries contribute exactly 0
//! and do not widen the value range; Where with a constant condition, Trilu; `--max-error`.

use std::sync::Arc;

use halo2_proofs::dev::MockProver;
use zkinfer_circuits::circuit::ModelCircuit;
use zkinfer_circuits::compile::{compile, CompileOptions, Compiled, MaxError};
use zkinfer_circuits::Error;

use crate::builder::{rng, uniform, Attr, Builder};
use crate::models::{example, read_input};
use crate::ops::{check, weights};

const SEQ: usize = 6;

/// Above the diagonal: masked (a causal mask).
fn causal() -> Vec<bool> {
    (0..SEQ * SEQ).map(|i| i % SEQ > i / SEQ).collect()
}

/// x[1, SEQ, 8] · W → scores[1, SEQ, SEQ], then `mask` (which writes `masked`), then Softmax.
fn attention(mask: impl FnOnce(Builder) -> Builder) -> Vec<u8> {
    let b = Builder::default().input("x", &[1, SEQ as i64, 8]).init("w", &[8, SEQ as i64], weights(170, 8 * SEQ)).node(
        "MatMul",
        "scores",
        &["x", "w"],
        "s",
        &[],
    );
    mask(b).node("Softmax", "softmax", &["masked"], "y", &[("axis", Attr::Int(-1))]).output("y", &[1, SEQ as i64, SEQ as i64]).build()
}

fn additive(value: f32) -> impl FnOnce(Builder) -> Builder {
    move |b: Builder| {
        let m = causal().iter().map(|&c| if c { value } else { 0.0 }).collect();
        b.init("mask", &[SEQ as i64, SEQ as i64], m).node("Add", "add_mask", &["s", "mask"], "masked", &[])
    }
}

fn compiled(onnx: &[u8], seed: u64) -> Compiled {
    let cal = vec![uniform(&mut rng(seed), SEQ * 8 * 8, -1.0, 1.0)];
    compile(onnx, Some(&cal), &CompileOptions::default()).unwrap()
}

/// Masked outputs are exactly 0, and the activations need the integer bits of the scores, not of the mask.
fn assert_masked_exactly(c: &Compiled, seed: u64) {
    let int_bits = c.model.settings.value_bits - c.model.settings.scale_bits;
    assert!(int_bits <= 4, "the mask widened the range: {int_bits} integer bits");
    let x = vec![uniform(&mut rng(seed), SEQ * 8, -1.0, 1.0)];
    let out = &c.model.eval(&x).unwrap().outputs(&c.model)[0];
    for (i, (&v, &masked)) in out.iter().zip(&causal()).enumerate() {
        assert_eq!(masked, v == 0, "entry {i}: {v}");
    }
    // Each row's probabilities still sum to 1, within the rounding of each entry (the tables'
    // resolution follows k, which compile keeps as small as the error allows).
    for row in out.chunks(SEQ) {
        let sum: f64 = row.iter().map(|&v| c.model.dequantize(v)).sum();
        assert!((sum - 1.0).abs() < 2e-2, "{sum}");
    }
}

#[test]
fn an_additive_causal_mask_is_exact_and_keeps_the_range() {
    for value in [-1e4, -3.4e38] {
        let onnx = attention(additive(value));
        // Against candle (which computes exp(x − 1e4) in f32) within the bound, and MockProver.
        check(&onnx, SEQ * 8, 171);
        assert_masked_exactly(&compiled(&onnx, 172), 173);
    }
}

#[test]
fn masked_fill_as_where_with_minus_infinity_is_exact() {
    let onnx = attention(|b| {
        b.init_bool("causal", &[SEQ as i64, SEQ as i64], &causal()).init("neg_inf", &[], vec![f32::NEG_INFINITY]).node(
            "Where",
            "masked_fill",
            &["causal", "neg_inf", "s"],
            "masked",
            &[],
        )
    });
    check(&onnx, SEQ * 8, 174);
    assert_masked_exactly(&compiled(&onnx, 175), 176);
}

#[test]
fn a_mask_built_by_trilu_of_a_constant_is_recognised() {
    // torch's causal mask before constant folding: Trilu(ones, k = 1) · -1e4.
    let onnx = attention(|b| {
        b.init("ones", &[SEQ as i64, SEQ as i64], vec![1.0; SEQ * SEQ])
            .init("big", &[], vec![-1e4])
            .init_i64_dims("one", &[], vec![1])
            .node("Trilu", "triu", &["ones", "one"], "upper", &[("upper", Attr::Int(1))])
            .node("Mul", "scale_mask", &["upper", "big"], "mask", &[])
            .node("Add", "add_mask", &["s", "mask"], "masked", &[])
    });
    check(&onnx, SEQ * 8, 177);
    assert_masked_exactly(&compiled(&onnx, 178), 179);
}

#[test]
fn trilu_and_where_on_activations_match_their_definitions() {
    let onnx = Builder::default()
        .input("x", &[1, 4, 5])
        .init_i64_dims("k", &[], vec![-1])
        .init_bool("keep", &[5], &[true, false, true, true, false])
        .init("c", &[1, 5], vec![0.5, -0.25, 0.0, 1.0, 2.0])
        .node("Trilu", "tril", &["x", "k"], "lower", &[("upper", Attr::Int(0))])
        .node("Where", "select", &["keep", "lower", "c"], "y", &[])
        .output("y", &[1, 4, 5])
        .build();
    // candle's Where does not broadcast: compare with the definition, then MockProver.
    let c = compiled_plain(&onnx, 20, 181);
    let x = uniform(&mut rng(182), 20, -1.0, 1.0);
    let model = Arc::new(c.model.clone());
    let circuit = ModelCircuit::new(model.clone(), model.quantize_inputs(std::slice::from_ref(&x)).unwrap()).unwrap();
    MockProver::run(model.settings.k, &circuit, vec![circuit.instances()]).unwrap().assert_satisfied();
    let out = &c.model.eval(std::slice::from_ref(&x)).unwrap().outputs(&c.model)[0];
    let keep = [true, false, true, true, false];
    let constant = [0.5, -0.25, 0.0, 1.0, 2.0];
    for (i, &v) in out.iter().enumerate() {
        let (r, col) = (i / 5, i % 5);
        let lower = if col as i64 - r as i64 <= -1 { f64::from(x[i]) } else { 0.0 };
        let want = if keep[col] { lower } else { constant[col] };
        assert!((c.model.dequantize(v) - want).abs() <= c.model.dequantize(1), "{i}: {} vs {want}", c.model.dequantize(v));
    }
}

fn compiled_plain(onnx: &[u8], len: usize, seed: u64) -> Compiled {
    compile(onnx, Some(&[uniform(&mut rng(seed), len * 8, -1.0, 1.0)]), &CompileOptions::default()).unwrap()
}

#[test]
fn a_fully_masked_row_is_uniform_as_in_float() {
    // The last row masks everything with the same value: softmax of equal offsets.
    let onnx = attention(|b| {
        let m = (0..SEQ * SEQ).map(|i| if i / SEQ == SEQ - 1 || i % SEQ > i / SEQ { -1e4 } else { 0.0 }).collect();
        b.init("mask", &[SEQ as i64, SEQ as i64], m).node("Add", "add_mask", &["s", "mask"], "masked", &[])
    });
    check(&onnx, SEQ * 8, 183);
}

#[test]
fn a_mask_too_weak_for_the_activations_is_refused() {
    // Scores reach about ±2000: a mask of -1e3 would not make e^(x + mask − max) negligible.
    let onnx = Builder::default()
        .input("x", &[1, SEQ as i64, 8])
        .init("w", &[8, SEQ as i64], weights(184, 8 * SEQ).into_iter().map(|w| w * 800.0).collect())
        .node("MatMul", "scores", &["x", "w"], "s", &[]);
    let onnx = additive(-1e3)(onnx)
        .node("Softmax", "softmax", &["masked"], "y", &[("axis", Attr::Int(-1))])
        .output("y", &[1, SEQ as i64, SEQ as i64])
        .build();
    let cal = vec![uniform(&mut rng(185), SEQ * 8 * 8, -1.0, 1.0)];
    let err = compile(&onnx, Some(&cal), &CompileOptions::default()).unwrap_err();
    assert!(matches!(err, Error::MaskTooWeak { .. }), "{err}");
}

#[test]
fn wrong_witnesses_of_a_masked_softmax_are_caught() {
    // The masked softmax is made of the existing chips: the mutation audit finds no survivor.
    let c = compiled(&attention(additive(-1e4)), 186);
    let model = Arc::new(c.model);
    let x = vec![uniform(&mut rng(187), SEQ * 8, -1.0, 1.0)];
    let circuit = ModelCircuit::new(model.clone(), model.quantize_inputs(&x).unwrap()).unwrap();
    MockProver::run(model.settings.k, &circuit, vec![circuit.instances()]).unwrap().assert_satisfied();
    let options = zkinfer_circuits::mutate::Options { budget: 300, seed: 3 };
    let report = zkinfer_circuits::mutate::audit(&circuit, &options, &|_, _, _| ()).unwrap();
    let survivors: Vec<_> = report.survivors().collect();
    assert!(survivors.is_empty(), "{survivors:#?}");
    let chips = report.by_chip();
    for chip in ["permutation", "function", "requant", "dot"] {
        assert!(chips.get(chip).is_some_and(|t| t.made > 0), "no {chip} mutant: {chips:?}");
    }
}

#[test]
fn max_error_refuses_naming_the_node_where_the_error_grows() {
    let onnx = attention(additive(-1e4));
    let cal = vec![uniform(&mut rng(188), SEQ * 8 * 8, -1.0, 1.0)];
    // 2^-6 resolution cannot reach 1e-4.
    let opts = CompileOptions { scale_bits: Some(6), max_error: MaxError::Absolute(1e-4), ..CompileOptions::default() };
    let err = compile(&onnx, Some(&cal), &opts).unwrap_err();
    let Error::AccuracyNotMet { node, op_type, measured, allowed, .. } = &err else { panic!("{err}") };
    assert!(*measured > *allowed, "{err}");
    assert!(!node.is_empty() && !op_type.is_empty(), "{err}");
    assert!(err.to_string().contains("--max-error"), "{err}");
    // What it measured is accepted when allowed.
    let opts = CompileOptions { max_error: MaxError::Absolute(*measured), ..opts };
    compile(&onnx, Some(&cal), &opts).unwrap();
}

#[test]
fn the_shipped_decoder_with_an_additive_causal_mask_is_accurate() {
    // examples/decoder: 2 pre-LN blocks, d 32, 2 heads, seq 16, erf-GELU, a -1e4 causal mask.
    let onnx = std::fs::read(example("decoder", "model.onnx")).unwrap();
    let cal = read_input("decoder", "calibration.json");
    let c = compile(&onnx, Some(&cal), &CompileOptions::default()).unwrap();
    let input = read_input("decoder", "input.json");
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(example("decoder", "expected.json")).unwrap()).unwrap();
    let expected: Vec<f64> = expected["outputs"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let out = &c.model.eval(&input).unwrap().outputs(&c.model)[0];
    let max_err = out.iter().zip(&expected).map(|(&q, &f)| (c.model.dequantize(q) - f).abs()).fold(0.0, f64::max);
    let max_logit = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(max_logit > 2.0, "logits of magnitude {max_logit}");
    assert!(max_err <= 1e-2, "max error {max_err} on logits up to {max_logit}");
    // candle has no LayerNormalization: the reference is onnx.reference's expected.json.
}

#[test]
fn the_gpt_example_agrees_with_float_on_the_next_token_of_99_of_100_prompts() {
    // examples/gpt: a character-level GPT trained and exported by torch.onnx (opset 17): token
    // ids gathered from an embedding, masked_fill's Where(-inf) causal masks, Split, erf-GELU.
    let onnx = std::fs::read(example("gpt", "model.onnx")).unwrap();
    let c = compile(&onnx, Some(&read_input("gpt", "calibration.json")), &CompileOptions::default()).unwrap();
    let prompts: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(example("gpt", "prompts.json")).unwrap()).unwrap();
    let ids: Vec<f32> = prompts["input_data"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let argmax: Vec<u64> = prompts["argmax"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let seq = ids.len() / argmax.len();
    let agree = ids
        .chunks(seq)
        .zip(&argmax)
        .filter(|(prompt, &want)| {
            let out = &c.model.eval(&[prompt.to_vec()]).unwrap().outputs(&c.model)[0];
            let best = (0..out.len()).max_by_key(|&i| out[i]).unwrap();
            best as u64 == want
        })
        .count();
    assert!(agree >= 99, "{agree} of {} prompts agree", argmax.len());
    // The sample's logits against onnx.reference.
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(example("gpt", "expected.json")).unwrap()).unwrap();
    let expected: Vec<f64> = expected["outputs"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let out = &c.model.eval(&read_input("gpt", "input.json")).unwrap().outputs(&c.model)[0];
    let max_err = out.iter().zip(&expected).map(|(&q, &f)| (c.model.dequantize(q) - f).abs()).fold(0.0, f64::max);
    assert!(max_err <= 1e-2, "max error {max_err}");
    eprintln!("gpt: {agree} of {} next tokens agree; max |logit error| {max_err:.3e} on the sample", argmax.len());
}
