//! Proving through `prover::commit` (our MSM backends inside halo2's prover): inside a real
//! proof every backend computes every commitment it is asked for, each equal to halo2's own,
//! and the proof verifies; keygen gives the same keys; cached MSM tables are checked when read.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

#[path = "support/tables.rs"]
mod tables;

use std::path::PathBuf;
use std::sync::Arc;

use halo2_proofs::halo2curves::bn256::Bn256;
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zkinfer_circuits::compile::{compile, CompileOptions};
use zkinfer_circuits::data::InputData;
use zkinfer_circuits::quant::QModel;
use zkinfer_prover::commit::SrsTables;
use zkinfer_prover::keys::{keygen, vk_bytes, vk_hash};
use zkinfer_prover::msm::Backend;
use zkinfer_prover::{model_hash, prove, verify, Bindings, CommitMsm, CommitParams, Error, ModelDir, MsmChoice, Srs};

fn example(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/tiny").join(file)
}

fn read(file: &str) -> Vec<Vec<f32>> {
    InputData::from_json(&std::fs::read_to_string(example(file)).unwrap()).unwrap().input_data
}

fn tiny() -> Arc<QModel> {
    let onnx = std::fs::read(example("model.onnx")).unwrap();
    Arc::new(compile(&onnx, Some(&read("calibration.json")), &CompileOptions::default()).unwrap().model)
}

/// Every MSM of ours the prover can use: the tables, each CPU backend, and CUDA where it runs.
fn our_msms(params: &ParamsKZG<Bn256>) -> Vec<CommitMsm> {
    let mut all = vec![CommitMsm::Precomputed(Arc::new(SrsTables::build(params).unwrap()))];
    for b in Backend::ALL {
        match b.build() {
            Ok(backend) => all.push(CommitMsm::Backend(Arc::from(backend))),
            Err(Error::CudaUnavailable { reason }) => println!("SKIPPED the cuda backend: {reason}"),
            Err(e) => panic!("{}: {e}", b.name()),
        }
    }
    all
}

#[test]
fn every_msm_backend_computes_halo2s_commitments_inside_a_proof() {
    let model = tiny();
    let srs = Srs::dev(model.settings.k).unwrap();
    let pk = keygen(&srs.params, model.clone()).unwrap();
    let bindings = Bindings { model_hash: model_hash(&model).unwrap(), vk_hash: vk_hash(pk.get_vk()), srs_hash: srs.source_sha256 };
    let q = model.quantize_inputs(&read("input.json")).unwrap();
    let msms = our_msms(&srs.params);
    assert!(msms.len() >= 4, "precomputed and three CPU backends");
    for msm in msms {
        let name = msm.name();
        let (params, check) = CommitParams::new(srs.params.clone(), msm).unwrap().cross_checked();
        let env = prove(&params, &pk, model.clone(), zkinfer_prover::Statement::unbound(q.clone()), bindings).unwrap();
        verify(&srs.params, pk.get_vk(), &env, bindings, model.num_instances()).unwrap();
        // Advice, lookups, permutation and quotient: well over a dozen commitments, every one
        // computed by the backend (none fell back to halo2's) and equal to halo2's.
        assert!(check.requested() >= 12, "{name}: only {} commitments", check.requested());
        assert_eq!(check.computed(), check.requested(), "{name}: some commitments fell back to halo2's MSM");
        assert_eq!(check.mismatches(), 0, "{name}: commitments differ from halo2's");
    }
}

#[test]
fn the_cross_check_sees_a_backend_that_computes_wrong_commitments() {
    // A control for the test above: tables of another SRS of the same size commit to other
    // points, and the cross-check counts them as mismatches.
    let model = tiny();
    let srs = Srs::dev(model.settings.k).unwrap();
    let other = ParamsKZG::<Bn256>::setup(model.settings.k, ChaCha20Rng::seed_from_u64(7));
    let wrong = Arc::new(SrsTables::build(&other).unwrap());
    let (params, check) = CommitParams::new(srs.params.clone(), CommitMsm::Precomputed(wrong)).unwrap().cross_checked();
    let pk = keygen(&srs.params, model.clone()).unwrap();
    let bindings = Bindings { model_hash: model_hash(&model).unwrap(), vk_hash: vk_hash(pk.get_vk()), srs_hash: srs.source_sha256 };
    let q = model.quantize_inputs(&read("input.json")).unwrap();
    let env = prove(&params, &pk, model.clone(), zkinfer_prover::Statement::unbound(q), bindings).unwrap();
    assert!(check.requested() >= 12 && check.mismatches() > 0, "{check:?}");
    // And the proof made with them does not verify.
    assert!(verify(&srs.params, pk.get_vk(), &env, bindings, model.num_instances()).unwrap_err().is_invalid_proof());
}

#[test]
fn keygen_with_tables_gives_halo2s_keys() {
    let model = tiny();
    let srs = Srs::dev(model.settings.k).unwrap();
    let tables = Arc::new(SrsTables::build(&srs.params).unwrap());
    let params = CommitParams::new(srs.params.clone(), CommitMsm::Precomputed(tables)).unwrap();
    let ours = keygen(&params, model.clone()).unwrap();
    let theirs = keygen(&srs.params, model).unwrap();
    assert_eq!(vk_bytes(ours.get_vk()), vk_bytes(theirs.get_vk()));
}

#[test]
fn tables_files_round_trip_and_bad_ones_are_rejected() {
    let srs = Srs::dev(6).unwrap();
    let tables = SrsTables::build(&srs.params).unwrap();
    let bytes = tables.to_bytes();
    let back = SrsTables::from_bytes(&bytes, &srs.params).unwrap();
    assert_eq!(back.to_bytes(), bytes);
    let corrupt = |b: &[u8]| matches!(SrsTables::from_bytes(b, &srs.params), Err(Error::MsmTableCorrupt { .. }));
    // Truncated, trailing bytes, another magic.
    assert!(corrupt(&bytes[..bytes.len() - 1]));
    assert!(corrupt(&[&bytes[..], &[0]].concat()));
    let mut b = bytes.clone();
    b[0] ^= 1;
    assert!(corrupt(&b));
    // The window of the first table (after the 8-byte file header).
    let mut b = bytes.clone();
    b[8] ^= 1;
    assert!(corrupt(&b));
    // A byte of the first point (the SRS's own first point, after the table's 12-byte header).
    let mut b = bytes.clone();
    b[8 + 12 + 5] ^= 1;
    assert!(corrupt(&b));
    // The tables of another SRS of the same size.
    let other = ParamsKZG::<Bn256>::setup(6, ChaCha20Rng::seed_from_u64(1));
    assert!(matches!(SrsTables::from_bytes(&bytes, &other), Err(Error::MsmTableCorrupt { .. })));
    // Tables of another size do not make params.
    let small = Srs::dev(5).unwrap();
    let small_tables = Arc::new(SrsTables::build(&small.params).unwrap());
    assert!(CommitParams::new(srs.params.clone(), CommitMsm::Precomputed(small_tables)).is_err());
}

/// The tiny example compiled with `opts` and set up with the dev SRS in a fresh directory;
/// the directory's tables cache files.
fn set_up(opts: &CompileOptions) -> (tempfile::TempDir, ModelDir, zkinfer_circuits::compile::Compiled, Vec<PathBuf>) {
    let onnx = std::fs::read(example("model.onnx")).unwrap();
    let compiled = compile(&onnx, Some(&read("calibration.json")), opts).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = ModelDir::new(tmp.path());
    dir.write_compiled(&compiled, &onnx).unwrap();
    dir.setup(&compiled, &Srs::dev(compiled.model.settings.k).unwrap(), || ()).unwrap();
    let tables = tables::tables_files(tmp.path());
    (tmp, dir, compiled, tables)
}

#[test]
fn a_model_directory_caches_its_tables_and_rebuilds_a_bad_cache() {
    let (_tmp, dir, _, tables) = set_up(&CompileOptions::default());
    assert_eq!(tables.len(), 1, "setup caches one tables file beside the SRS");
    let good = std::fs::read(&tables[0]).unwrap();
    // Corrupt the cache: the next load rebuilds it, and proofs still verify.
    let mut bad = good.clone();
    bad[8 + 12 + 5] ^= 1;
    std::fs::write(&tables[0], &bad).unwrap();
    let loaded = dir.load().unwrap();
    dir.check_vk(&loaded).unwrap();
    let params = dir.commit_params(&loaded, MsmChoice::Precomputed).unwrap();
    assert_eq!(params.msm().name(), "precomputed");
    assert_eq!(std::fs::read(&tables[0]).unwrap(), good, "rebuilt as it was");
    let pk = dir.load_pk(&loaded).unwrap();
    let q = loaded.model.quantize_inputs(&read("input.json")).unwrap();
    let env = zkinfer_prover::prove(&params, &pk, loaded.model.clone(), zkinfer_prover::Statement::unbound(q), loaded.bindings).unwrap();
    verify(&loaded.params, &loaded.vk, &env, loaded.bindings, loaded.model.num_instances()).unwrap();
    // Without a cache, verification's key check still works (with halo2's MSM).
    std::fs::remove_file(&tables[0]).unwrap();
    dir.check_vk(&loaded).unwrap();
}

/// `check_vk` ties the verifying key to the model with halo2's own MSM, not through the tables
/// cache, whose read checks the first window exactly but only 64 of the higher-window entries:
/// a cache with every other higher-window entry corrupted still reads, changes what is
/// committed through it, and changes nothing of what `check_vk` decides.
#[test]
fn check_vk_does_not_trust_the_tables_cache() {
    let (tmp, dir, compiled, tables) = set_up(&CompileOptions::default());
    let path = tables.into_iter().next().unwrap();
    tables::corrupt_unsampled_higher_windows(&path);
    let bytes = std::fs::read(&path).unwrap();
    let loaded = dir.load().unwrap();
    let tables = SrsTables::from_bytes(&bytes, &loaded.params).expect("the corrupted cache passes the read's checks");
    let through = CommitParams::new(loaded.params.clone(), CommitMsm::Precomputed(Arc::new(tables))).unwrap();
    let vk = zkinfer_prover::keys::regenerate_vk(&through, loaded.model.clone()).unwrap();
    assert_ne!(vk_hash(&vk), loaded.bindings.vk_hash, "committing through the corrupted cache gives another key");
    dir.check_vk(&loaded).expect("check_vk regenerates the model's own key regardless of the cache");

    // Another model's key in its place is refused, with the corrupted cache still there.
    let s = compiled.model.settings.scale_bits - 1;
    let (_tmp2, dir2, _, _) = set_up(&CompileOptions { scale_bits: Some(s), ..Default::default() });
    let foreign = dir2.load().unwrap();
    let foreign_vk = vk_bytes(&foreign.vk);
    std::fs::write(tmp.path().join("keys").join(&loaded.setup.key_id).join("vk.bin"), &foreign_vk).unwrap();
    let setup_path = tmp.path().join("setup.json");
    let mut setup: serde_json::Value = serde_json::from_slice(&std::fs::read(&setup_path).unwrap()).unwrap();
    setup["vk_sha256"] = serde_json::Value::String(hex::encode(vk_hash(&foreign.vk)));
    std::fs::write(&setup_path, serde_json::to_vec(&setup).unwrap()).unwrap();
    match dir.load() {
        Ok(swapped) => {
            let err = dir.check_vk(&swapped).unwrap_err();
            assert!(matches!(err, Error::Corrupt { what: "verifying key", .. }), "{err}");
        }
        Err(err) => assert!(matches!(err, Error::Corrupt { .. }), "the foreign key does not even load: {err}"),
    }
}
