//! The committed ABI the escrow's bindings are generated from (`abi/InferenceEscrow.abi.json`)
//! is the ABI of the contract's source. `ZKINFER_BLESS=1` rewrites it after a contract change.

use zkinfer_verifier_contract::solc::{Compiler, Toolchain};

#[test]
fn the_committed_escrow_abi_is_the_sources_abi() {
    let tc = Toolchain::in_repo().expect("run scripts/setup.sh (npm ci --prefix verifier-contract)");
    let built = tc.compile_one(Compiler::Escrow, &tc.escrow_source(), "InferenceEscrow", Some(200)).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("abi/InferenceEscrow.abi.json");
    if std::env::var_os("ZKINFER_BLESS").is_some() {
        std::fs::write(&path, format!("{}\n", built.abi.trim_end())).unwrap();
    }
    let committed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let fresh: serde_json::Value = serde_json::from_str(&built.abi).unwrap();
    assert_eq!(committed, fresh, "abi/InferenceEscrow.abi.json is stale: rerun with ZKINFER_BLESS=1");
}
