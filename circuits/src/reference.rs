//! Float reference inference with candle-onnx: what the quantized proof is compared against.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use prost::Message;

use crate::error::{Error, Result};
use crate::ir::Graph;

/// Runs the ONNX model in f32 with candle and returns each output, flattened.
pub fn candle_outputs(onnx: &[u8], graph: &Graph, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
    let model = candle_onnx::onnx::ModelProto::decode(onnx).map_err(|e| Error::MalformedOnnx { reason: e.to_string() })?;
    let proto = model.graph.as_ref().ok_or_else(|| Error::MalformedOnnx { reason: "model has no graph".into() })?;
    if inputs.len() != graph.inputs.len() {
        return Err(Error::InputCount { expected: graph.inputs.len(), got: inputs.len() });
    }
    let mut feeds = HashMap::new();
    for (&id, data) in graph.inputs.iter().zip(inputs) {
        let info = &graph.tensors[id];
        feeds.insert(info.name.clone(), Tensor::from_slice(data, info.shape.as_slice(), &Device::Cpu)?);
    }
    let mut outs = candle_onnx::simple_eval(&model, feeds)?;
    proto
        .output
        .iter()
        .map(|o| {
            let t = outs.remove(&o.name).ok_or_else(|| Error::MalformedOnnx { reason: format!("candle produced no `{}`", o.name) })?;
            Ok(t.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?)
        })
        .collect()
}
