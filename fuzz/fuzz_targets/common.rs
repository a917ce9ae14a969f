//! The shipped tiny model, compiled, set up with the development SRS and proven once: what
//! the targets check fuzzed files against. Built on first use and kept for the whole run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::data::InputData;
use zkinfer_prover::{prove, Loaded, ModelDir, MsmChoice, ProofEnvelope, Srs, Statement};

pub struct Tiny {
    pub loaded: Loaded,
    /// An honest proof: whatever verifies must claim its instances (read by proof_envelope).
    #[allow(dead_code)]
    pub proof: ProofEnvelope,
}

pub fn example(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tiny").join(file)
}

fn read(file: &str) -> Vec<Vec<f32>> {
    InputData::from_json(&std::fs::read_to_string(example(file)).expect("reads the example")).expect("parses").input_data
}

pub fn tiny() -> &'static Tiny {
    static TINY: OnceLock<Tiny> = OnceLock::new();
    TINY.get_or_init(|| {
        let onnx = std::fs::read(example("model.onnx")).expect("reads the example model");
        let compiled = compile(&onnx, Some(&read("calibration.json")), &CompileOptions::default()).expect("compiles");
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let model_dir = ModelDir::new(&dir);
        model_dir.write_compiled(&compiled, &onnx).expect("writes");
        model_dir.setup(&compiled, &Srs::dev(compiled.model.settings.k).expect("dev SRS"), || ()).expect("sets up");
        let loaded = model_dir.load().expect("loads");
        let pk = model_dir.load_pk(&loaded).expect("proving key");
        let params = model_dir.commit_params(&loaded, MsmChoice::Precomputed).expect("params");
        let q = loaded.model.quantize_inputs(&read("input.json")).expect("quantizes");
        let proof = prove(&params, &pk, loaded.model.clone(), Statement::unbound(q), loaded.bindings).expect("proves");
        Tiny { loaded, proof }
    })
}
