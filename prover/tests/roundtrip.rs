//! Compile → setup (dev SRS) → prove → verify on the shipped tiny model, and rejection
//! of every tampered byte, every changed instance and another model's key.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use std::path::PathBuf;

use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::data::InputData;
use zkinfer_prover::{prove, verify, Error, ModelDir, ProofEnvelope, Srs};

fn example(name: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name).join(file)
}

fn read_input(name: &str, file: &str) -> Vec<Vec<f32>> {
    InputData::from_json(&std::fs::read_to_string(example(name, file)).unwrap()).unwrap().input_data
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: ModelDir,
    envelope: ProofEnvelope,
}

fn setup_and_prove(opts: &CompileOptions) -> Fixture {
    let onnx = std::fs::read(example("tiny", "model.onnx")).unwrap();
    let cal = read_input("tiny", "calibration.json");
    let compiled = compile(&onnx, Some(&cal), opts).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelDir::new(tmp.path());
    dir.write_compiled(&compiled, &onnx).unwrap();
    let srs = Srs::dev(compiled.model.settings.k).unwrap();
    let mut ran = false;
    let (_, cached) = dir.setup(&compiled, &srs, || ran = true).unwrap();
    assert!(ran && !cached);
    // A second setup with the same SRS reuses the cached keys.
    let (_, cached) = dir.setup(&compiled, &srs, || panic!("keygen ran twice")).unwrap();
    assert!(cached);
    let loaded = dir.load().unwrap();
    let pk = dir.load_pk(&loaded).unwrap();
    let q = loaded.model.quantize_inputs(&read_input("tiny", "input.json")).unwrap();
    let params = dir.commit_params(&loaded, zkinfer_prover::MsmChoice::Precomputed).unwrap();
    let envelope = prove(&params, &pk, loaded.model.clone(), zkinfer_prover::Statement::unbound(q), loaded.bindings).unwrap();
    Fixture { _tmp: tmp, dir, envelope }
}

fn check(dir: &ModelDir, bytes: &[u8]) -> Result<(), Error> {
    check_loaded(&dir.load()?, bytes)
}

fn check_loaded(loaded: &zkinfer_prover::Loaded, bytes: &[u8]) -> Result<(), Error> {
    let env = ProofEnvelope::from_bytes(bytes)?;
    let n = loaded.model.num_instances();
    verify(&loaded.params, &loaded.vk, &env, loaded.bindings, n).map(|_| ())
}

#[test]
fn proof_roundtrip_and_tampering() {
    let f = setup_and_prove(&CompileOptions::default());
    let bytes = f.envelope.to_bytes().unwrap();
    check(&f.dir, &bytes).expect("honest proof verifies");

    // Instances are the commitment, the payee binding and the model's outputs.
    let loaded = f.dir.load().unwrap();
    let trace = loaded.model.eval(&read_input("tiny", "input.json")).unwrap();
    let outs: Vec<_> = trace.outputs(&loaded.model).concat();
    assert_eq!(f.envelope.instances.len(), 1 + zkinfer_circuits::circuit::BINDING_INSTANCES + outs.len());

    // Every single byte of the SNARK proof, flipped, is an invalid proof.
    for i in 0..f.envelope.proof.len() {
        let mut env = f.envelope.clone();
        env.proof[i] ^= 0x01;
        let err = check_loaded(&loaded, &env.to_bytes().unwrap()).expect_err(&format!("proof byte {i} flipped still verifies"));
        assert!(err.is_invalid_proof(), "byte {i}: {err}");
    }
    // Every byte of the whole file, flipped, is rejected (as invalid or as malformed).
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x80;
        assert!(check_loaded(&loaded, &b).is_err(), "file byte {i} flipped still verifies");
    }
    // Each public instance changed is rejected.
    for i in 0..f.envelope.instances.len() {
        let mut env = f.envelope.clone();
        env.instances[i][0] ^= 1;
        let err = check_loaded(&loaded, &env.to_bytes().unwrap()).expect_err("changed instance verifies");
        assert!(err.is_invalid_proof(), "instance {i}: {err}");
    }
    // The SRS copy verification reads is bound by its hash in setup.json.
    let srs_dir = f.dir.root().join("srs");
    let srs_file = std::fs::read_dir(&srs_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "params"))
        .expect("the SRS copy");
    let original = std::fs::read(&srs_file).unwrap();
    let mut tampered = original.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    std::fs::write(&srs_file, &tampered).unwrap();
    assert!(matches!(f.dir.load(), Err(Error::Corrupt { what: "SRS", .. })));
    std::fs::write(&srs_file, &original).unwrap();
    f.dir.check_vk(&f.dir.load().unwrap()).expect("the cached key is the model's key");

    // Truncated and extended proofs are rejected.
    let mut env = f.envelope.clone();
    env.proof.push(0);
    assert!(check(&f.dir, &env.to_bytes().unwrap()).unwrap_err().is_invalid_proof());
    env.proof.truncate(env.proof.len() - 33);
    assert!(check(&f.dir, &env.to_bytes().unwrap()).unwrap_err().is_invalid_proof());
}

#[test]
fn proof_for_another_model_is_rejected() {
    let a = setup_and_prove(&CompileOptions::default());
    // The same ONNX at one scale bit less: a different circuit.
    let s = a.dir.read_compiled().unwrap().model.settings.scale_bits - 1;
    let b = setup_and_prove(&CompileOptions { scale_bits: Some(s), ..Default::default() });
    let bytes = a.envelope.to_bytes().unwrap();
    // The other model's directory rejects it by its bindings...
    let err = check(&b.dir, &bytes).unwrap_err();
    assert!(err.is_invalid_proof(), "{err}");
    // ...and, with the bindings forged to match, by the verifying key itself.
    let lb = b.dir.load().unwrap();
    let mut env = a.envelope.clone();
    env.model_hash = lb.bindings.model_hash;
    env.vk_hash = lb.bindings.vk_hash;
    env.srs_hash = lb.bindings.srs_hash;
    env.k = lb.setup.k;
    let n = env.instances.len();
    let err = verify(&lb.params, &lb.vk, &env, lb.bindings, n).unwrap_err();
    assert!(err.is_invalid_proof(), "{err}");
}

/// A `model.zkm` that decodes but is not well formed (as a coordinator could serve to an
/// executor) is refused when read, naming the part, before anything indexes by it.
#[test]
fn a_malformed_compiled_model_is_refused_when_read() {
    let onnx = std::fs::read(example("tiny", "model.onnx")).unwrap();
    let compiled = compile(&onnx, Some(&read_input("tiny", "calibration.json")), &CompileOptions::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelDir::new(tmp.path());
    let mut bad = compiled.clone();
    bad.model.steps[0].output = 1 << 40; // a tensor that does not exist
    dir.write_compiled(&bad, &onnx).unwrap();
    let err = dir.read_compiled().unwrap_err();
    assert!(matches!(&err, Error::Corrupt { what: "compiled model", reason, .. } if reason.contains("malformed")), "{err}");
    let mut bad = compiled;
    bad.model.settings.num_advice = 1 << 40; // a verifying key read would allocate the columns
    dir.write_compiled(&bad, &onnx).unwrap();
    assert!(matches!(dir.read_compiled(), Err(Error::Corrupt { what: "compiled model", .. })));
}

/// A key file's k is checked against the model before halo2 sizes a domain by it (found by the
/// model_files fuzz target: a vk with k ≥ 64 made halo2 shift out of range).
#[test]
fn a_key_for_another_k_is_refused_before_halo2_reads_it() {
    let f = setup_and_prove(&CompileOptions::default());
    let loaded = f.dir.load().unwrap();
    let good = zkinfer_prover::keys::vk_bytes(&loaded.vk);
    for k in [loaded.setup.k + 1, 64, u32::MAX] {
        let mut bad = good.clone();
        bad[1..5].copy_from_slice(&k.to_le_bytes());
        let err = zkinfer_prover::keys::read_vk(&bad, &loaded.model, "vk.bin").unwrap_err();
        assert!(matches!(&err, Error::Corrupt { what: "verifying key", reason, .. } if reason.contains("made for k")), "{err}");
        assert!(zkinfer_prover::keys::read_pk(&bad, &loaded.model, "pk.bin").is_err());
    }
    assert!(zkinfer_prover::keys::read_vk(&good[..3], &loaded.model, "vk.bin").is_err());
}
