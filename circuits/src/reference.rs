//! Float reference inference with candle-onnx: what the quantized proof is compared against.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use prost::Message;

use crate::error::{Error, Result};
use crate::ir::Graph;

/// Runs the ONNX model in f32 with candle and returns each output, flattened.
pub fn candle_outputs(onnx: &[u8], graph: &Graph, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
    let mut model = candle_onnx::onnx::ModelProto::decode(onnx).map_err(|e| Error::MalformedOnnx { reason: e.to_string() })?;
    give_gemms_a_bias(&mut model);
    let proto = model.graph.as_ref().ok_or_else(|| Error::MalformedOnnx { reason: "model has no graph".into() })?;
    if inputs.len() != graph.inputs.len() {
        return Err(Error::InputCount { expected: graph.inputs.len(), got: inputs.len() });
    }
    let mut feeds = HashMap::new();
    for (&id, data) in graph.inputs.iter().zip(inputs) {
        let info = &graph.tensors[id];
        let mut t = Tensor::from_slice(data, info.shape.as_slice(), &Device::Cpu)?;
        // Integer inputs (token ids) go in as the integers they hold.
        let elem = proto.input.iter().find(|i| i.name == info.name).and_then(|i| match i.r#type.as_ref()?.value.as_ref()? {
            candle_onnx::onnx::type_proto::Value::TensorType(tt) => Some(tt.elem_type),
            _ => None,
        });
        if matches!(elem, Some(6 | 7)) {
            t = t.to_dtype(candle_core::DType::I64)?;
        }
        feeds.insert(info.name.clone(), t);
    }
    // candle-onnx indexes some optional inputs unchecked: a panic there is its failure, not
    // ours. (Unwind-safe: the model and the feeds are not used after a panic.)
    let mut outs = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| candle_onnx::simple_eval(&model, feeds)))
        .map_err(|_| Error::MalformedOnnx { reason: "candle-onnx could not run the model (it panicked)".into() })??;
    proto
        .output
        .iter()
        .map(|o| {
            let t = outs.remove(&o.name).ok_or_else(|| Error::MalformedOnnx { reason: format!("candle produced no `{}`", o.name) })?;
            Ok(t.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?)
        })
        .collect()
}

/// ONNX's Gemm takes its bias `C` as an optional third input (since opset 11); candle-onnx
/// reads `input[2]` unchecked. A Gemm without one gets a scalar zero, which changes nothing.
fn give_gemms_a_bias(model: &mut candle_onnx::onnx::ModelProto) {
    const ZERO: &str = "zkinfer::gemm_zero_bias";
    let Some(graph) = model.graph.as_mut() else { return };
    let mut used = false;
    for node in graph.node.iter_mut().filter(|n| n.op_type == "Gemm") {
        match node.input.len() {
            2 => node.input.push(ZERO.into()),
            3 if node.input[2].is_empty() => node.input[2] = ZERO.into(),
            _ => continue,
        }
        used = true;
    }
    if used {
        graph.initializer.push(candle_onnx::onnx::TensorProto {
            name: ZERO.into(),
            data_type: 1,
            float_data: vec![0.0],
            ..Default::default()
        });
    }
}
