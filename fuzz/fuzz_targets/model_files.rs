//! The files of a model directory, as `zkinfer verify` and an executor read them (an executor
//! fetches `model.zkm` from a coordinator it does not trust): the compiled model, the setup
//! record and the verifying key. The first byte picks the file. A compiled model that reads
//! goes on to what setup does with it: its hash, the fit check, and keygen when it is small.

#![no_main]

#[path = "common.rs"]
mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use zkinfer_circuits::circuit::check_fits;
use zkinfer_circuits::quant::QModel;
use zkinfer_prover::keys::{read_vk, regenerate_vk};
use zkinfer_prover::{model_hash, ModelDir, Srs};

/// Keygen runs for circuits up to this k, so that one run stays in milliseconds.
const KEYGEN_MAX_K: u32 = 10;

fn dev_srs(k: u32) -> Arc<Srs> {
    static SRS: OnceLock<Mutex<HashMap<u32, Arc<Srs>>>> = OnceLock::new();
    let mut cache = SRS.get_or_init(Default::default).lock().expect("not poisoned");
    cache.entry(k).or_insert_with(|| Arc::new(Srs::dev(k).expect("dev SRS"))).clone()
}

fn set_up(model: QModel) {
    let _ = model_hash(&model);
    let _ = model.num_instances();
    if check_fits(&model).is_ok() && model.settings.k <= KEYGEN_MAX_K {
        let srs = dev_srs(model.settings.k);
        let _ = regenerate_vk(&srs.params, Arc::new(model));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let path = Path::new("fuzzed");
    match which % 3 {
        0 => {
            if let Ok(compiled) = ModelDir::decode_compiled(rest, path) {
                set_up(compiled.model);
            }
        }
        1 => {
            let _ = ModelDir::decode_setup(rest, path);
        }
        _ => {
            let _ = read_vk(rest, &common::tiny().loaded.model, "fuzzed");
        }
    }
});
