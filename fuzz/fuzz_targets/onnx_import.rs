//! ONNX import, as `zkinfer compile` and a coordinator's model registration run it on a file
//! they were given; a small graph that imports goes on to be compiled.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zkinfer_circuits::compile::{compile, CompileOptions};

/// Graphs with at most this many values in all are compiled too (calibration runs candle).
const COMPILE_MAX_VALUES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(graph) = zkinfer_circuits::onnx::import_bytes(data) else { return };
    let values: usize = graph.tensors.iter().map(|t| t.numel()).sum();
    if values <= COMPILE_MAX_VALUES {
        let _ = compile(data, None, &CompileOptions::default());
    }
});
