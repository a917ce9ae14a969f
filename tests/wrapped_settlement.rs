//! The MLP example's job settled in one contract (issue #15): its proof wrapped by a one-proof
//! aggregation at k = 23, whose verifier is one contract of about 16 KB costing about 340k gas.
//! Making that wrapped proof takes minutes and 20 GiB, so the aggregation's outputs are a
//! fixture (`tests/fixtures/wrapped_mlp`, written by `ZKINFER_AGG_FIXTURE=... scripts/aggregation.sh
//! 1 23` with `ZKINFER_AGG_MODEL=examples/mlp`), and this test checks everything downstream of
//! the proving on every run, as a user would:
//!
//! - the fixture is of the shipped example: its one member is the model `zkinfer compile` and
//!   `setup --dev-srs` make from `examples/mlp` today (else it is stale: regenerate it);
//! - `zkinfer verify` accepts the wrapped proof against the batch key (its pairing included);
//! - `zkinfer solidity --aggregation` writes, from the batch key, exactly the fixture's
//!   verifier, one contract within EIP-170;
//! - on anvil (EIP-170 enforced) it accepts `zkinfer calldata`'s calldata and rejects every
//!   flipped proof byte, every changed instance and every instance plus r.

#![allow(clippy::unwrap_used)]

mod tamper;

use std::path::{Path, PathBuf};
use std::process::Command;

use alloy::primitives::U256;
use zkinfer_aggregate::{BatchRecord, Member};
use zkinfer_prover::{ModelDir, Srs};
use zkinfer_verifier_contract::chain::{LocalChain, DEFAULT_HARDFORK, EIP170_CODE_SIZE_LIMIT};
use zkinfer_verifier_contract::solc::Toolchain;

const BIN: &str = env!("CARGO_BIN_EXE_zkinfer");

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("runs");
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_mlp_jobs_wrapped_proof_settles_in_one_contract_and_nothing_tampered_passes() {
    let fixture = repo("tests/fixtures/wrapped_mlp");
    let regenerate = "regenerate tests/fixtures/wrapped_mlp: ZKINFER_AGG_MODEL=examples/mlp \
                      ZKINFER_AGG_FIXTURE=$PWD/tests/fixtures/wrapped_mlp scripts/aggregation.sh 1 23";
    let record: BatchRecord = serde_json::from_slice(&std::fs::read(fixture.join("batch.json")).unwrap()).unwrap();
    assert_eq!((record.members.len(), record.fan_in, record.config.num_advice), (1, None, 1));

    // The member is today's examples/mlp.
    let tmp = tempfile::tempdir().unwrap();
    let (ex, model) = (repo("examples/mlp"), tmp.path().join("model"));
    ok(&["compile", s(&ex.join("model.onnx")), "-o", s(&model), "--calibration", s(&ex.join("calibration.json"))]);
    ok(&["setup", s(&model), "--dev-srs"]);
    let loaded = ModelDir::new(&model).load().unwrap();
    assert_eq!(Member::of(&loaded), record.members[0], "examples/mlp changed since the fixture was made: {regenerate}");

    // The batch key: the fixture's record and verifying key, with the development SRS at its k.
    let keys = tmp.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    for f in ["batch.json", "vk.bin"] {
        std::fs::copy(fixture.join(f), keys.join(f)).unwrap();
    }
    Srs::dev(record.config.degree).unwrap().save_params(&keys.join("params.srs")).unwrap();
    let batch = fixture.join("batch.zkb");
    assert!(ok(&["verify", s(&keys), s(&batch)]).starts_with("VALID"));

    let sol = tmp.path().join("sol");
    ok(&["solidity", "--aggregation", s(&keys), "-o", s(&sol)]);
    let written = std::fs::read_to_string(sol.join("Verifier.bin")).unwrap();
    let fixed = std::fs::read_to_string(fixture.join("Verifier.bin")).unwrap();
    assert_eq!(written.trim(), fixed.trim(), "`solidity --aggregation` writes another verifier now: {regenerate}");
    let code = hex::decode(written.trim()).unwrap();
    assert!(code.len() <= EIP170_CODE_SIZE_LIMIT, "{} bytes: not one contract", code.len());
    assert!(!std::fs::read_dir(&sol).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("Part")), "a split verifier");

    let tc = Toolchain::in_repo().expect("run scripts/setup.sh");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let chain = LocalChain::start(&tc.anvil().unwrap(), DEFAULT_HARDFORK).unwrap();
    let at = rt.block_on(chain.deployer(0).deploy(code)).unwrap();
    let calldata = hex::decode(ok(&["calldata", s(&batch)]).trim().trim_start_matches("0x")).unwrap();
    let mined = rt.block_on(chain.transact(0, at, calldata.clone(), U256::ZERO, Some(3_000_000))).unwrap();
    assert!(mined.success);
    println!("the MLP job's wrapped proof: one contract, {} gas ({}, with calldata)", mined.gas_used, chain.hardfork);

    let instances = record.num_instances();
    assert_eq!(instances, 12 + loaded.model.num_instances());
    let rejects = |data: Vec<u8>| rt.block_on(chain.call(at, data, 3_000_000)).is_err();
    // Every proof byte flipped, every instance changed and every instance plus r.
    for (what, bad) in tamper::tampered(&calldata, instances) {
        assert!(rejects(bad), "{what} was accepted");
    }
    let mut long = calldata.clone();
    long.push(0);
    assert!(rejects(long), "a trailing byte was accepted");
}
