//! Proof files: any bytes that read as an envelope write back to the same envelope, and
//! whatever verifies against the tiny model's key claims the honest statement (its instances:
//! the input commitment, the empty binding and the model's outputs for that input).

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use zkinfer_prover::{verify, ProofEnvelope};

fuzz_target!(|data: &[u8]| {
    let Ok(env) = ProofEnvelope::from_bytes(data) else { return };
    let bytes = env.to_bytes().expect("an envelope that reads also writes");
    let again = ProofEnvelope::from_bytes(&bytes).expect("a written envelope reads");
    assert_eq!(again, env, "an envelope changed on a write and a read");
    let t = common::tiny();
    let l = &t.loaded;
    if verify(&l.params, &l.vk, &env, l.bindings, l.model.num_instances()).is_ok() {
        assert_eq!(env.instances, t.proof.instances, "a proof of another statement verified");
    }
});
