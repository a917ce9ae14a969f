//! Keys are generated from a zero input ([`ModelCircuit::for_keygen`]): the circuit's shape
//! (fixed columns, selectors, copy constraints) must not depend on the input, the salt or the
//! payee binding, or a real proof would be checked against another circuit's key.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use std::path::PathBuf;
use std::sync::Arc;

use halo2_proofs::halo2curves::bn256::Fr;
use zkinfer_circuits::circuit::{ModelCircuit, PayeeBinding};
use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::data::InputData;
use zkinfer_prover::keys::{circuit_vk, regenerate_vk, vk_bytes};
use zkinfer_prover::Srs;

fn example(name: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name).join(file)
}

fn read(name: &str, file: &str) -> Vec<Vec<f32>> {
    InputData::from_json(&std::fs::read_to_string(example(name, file)).unwrap()).unwrap().input_data
}

#[test]
fn a_real_inputs_circuit_has_the_keygen_circuits_verifying_key() {
    // tiny: public ops of every elementwise form; cnn: zero padding and max trees;
    // transformer: products of two activations and function tables.
    for name in ["tiny", "cnn", "transformer"] {
        let onnx = std::fs::read(example(name, "model.onnx")).unwrap();
        let model = Arc::new(compile(&onnx, Some(&read(name, "calibration.json")), &CompileOptions::default()).unwrap().model);
        let srs = Srs::dev(model.settings.k).unwrap();
        let keygen = vk_bytes(&regenerate_vk(&srs.params, model.clone()).unwrap());
        let binding = PayeeBinding { payee: Fr::from(0xbeef), chain_id: Fr::from(31337), escrow: Fr::from(0xe5c), escrow_job: Fr::from(7) };
        let real = ModelCircuit::new(model.clone(), model.quantize_inputs(&read(name, "input.json")).unwrap())
            .unwrap()
            .with_salt(Fr::from(0x5a17))
            .with_binding(binding);
        let proven = vk_bytes(&circuit_vk(&srs.params, &real).unwrap());
        assert!(keygen == proven, "{name}: the verifying key of a real input's circuit differs from keygen's");
    }
}
