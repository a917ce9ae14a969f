//! One proof evaluates its model once: the circuit is made from one evaluation, and neither
//! the public instances nor synthesis (inside halo2's prover) evaluate it again. The only test
//! in this binary, so that the process-wide evaluation counter counts nothing else.

use std::path::PathBuf;
use std::sync::Arc;

use halo2_proofs::halo2curves::ff::PrimeField;

use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::data::InputData;
use zkinfer_circuits::quant::evaluation_count;
use zkinfer_prover::keys::{keygen, vk_hash};
use zkinfer_prover::{model_hash, prove, prove_circuit, verify, Bindings, CommitMsm, CommitParams, Srs, Statement};

#[test]
fn a_proof_evaluates_the_model_exactly_once() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/tiny");
    let read = |f: &str| InputData::from_json(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap().input_data;
    let onnx = std::fs::read(dir.join("model.onnx")).unwrap();
    let model = Arc::new(compile(&onnx, Some(&read("calibration.json")), &CompileOptions::default()).unwrap().model);
    let srs = Srs::dev(model.settings.k).unwrap();
    let pk = keygen(&srs.params, model.clone()).unwrap();
    let bindings = Bindings { model_hash: model_hash(&model).unwrap(), vk_hash: vk_hash(pk.get_vk()), srs_hash: srs.source_sha256 };
    let params = CommitParams::new(srs.params.clone(), CommitMsm::Halo2).unwrap();
    let q = model.quantize_inputs(&read("input.json")).unwrap();

    let before = evaluation_count();
    let env = prove(&params, &pk, model.clone(), Statement::unbound(q.clone()), bindings).unwrap();
    assert_eq!(evaluation_count() - before, 1, "`prove` evaluated the model more than once");
    verify(&srs.params, pk.get_vk(), &env, bindings, model.num_instances()).unwrap();

    // What `zkinfer prove` does: one circuit, whose trace gives the printed outputs and the proof.
    let before = evaluation_count();
    let circuit = Statement::unbound(q).circuit(model.clone()).unwrap();
    let outputs = circuit.trace().outputs(&model);
    let env = prove_circuit(&params, &pk, &circuit, bindings).unwrap();
    assert_eq!(evaluation_count() - before, 1, "the circuit, its outputs and the proof evaluated the model more than once");
    let claimed: Vec<_> = env.instances[model.output_offset()..].to_vec();
    let expected: Vec<_> = zkinfer_circuits::circuit::output_instances(&model, &outputs).iter().map(|f| f.to_repr()).collect();
    assert_eq!(claimed, expected, "the proof claims the outputs of that one evaluation");
}
