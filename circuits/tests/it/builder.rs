//! A small ONNX graph builder for tests (protobuf types from candle-onnx).

use candle_onnx::onnx::{
    attribute_proto::AttributeType, tensor_shape_proto::dimension, tensor_shape_proto::Dimension, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub(crate) fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub(crate) fn uniform(rng: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(lo..hi)).collect()
}

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    typed_value_info(name, dims, 1)
}

fn typed_value_info(name: &str, dims: &[i64], elem_type: i32) -> ValueInfoProto {
    let dim = dims.iter().map(|&d| Dimension { value: Some(dimension::Value::DimValue(d)), ..Default::default() }).collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type, shape: Some(TensorShapeProto { dim }) })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[derive(Default)]
pub(crate) struct Builder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
}

pub(crate) enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
}

impl Builder {
    pub(crate) fn input(mut self, name: &str, dims: &[i64]) -> Self {
        self.inputs.push(value_info(name, dims));
        self
    }

    /// An INT64 input (token ids).
    pub(crate) fn input_i64(mut self, name: &str, dims: &[i64]) -> Self {
        self.inputs.push(typed_value_info(name, dims, 7));
        self
    }

    pub(crate) fn output(mut self, name: &str, dims: &[i64]) -> Self {
        self.outputs.push(value_info(name, dims));
        self
    }

    pub(crate) fn init(mut self, name: &str, dims: &[i64], data: Vec<f32>) -> Self {
        self.inits.push(TensorProto { name: name.into(), dims: dims.to_vec(), data_type: 1, float_data: data, ..Default::default() });
        self
    }

    pub(crate) fn init_i64(self, name: &str, data: Vec<i64>) -> Self {
        let dims = vec![data.len() as i64];
        self.init_i64_dims(name, &dims, data)
    }

    pub(crate) fn init_i64_dims(mut self, name: &str, dims: &[i64], data: Vec<i64>) -> Self {
        self.inits.push(TensorProto { name: name.into(), dims: dims.to_vec(), data_type: 7, int64_data: data, ..Default::default() });
        self
    }

    /// A BOOL initializer (a mask), one byte per value as numpy's `from_array` writes it.
    pub(crate) fn init_bool(mut self, name: &str, dims: &[i64], data: &[bool]) -> Self {
        let raw_data = data.iter().map(|&b| u8::from(b)).collect();
        self.inits.push(TensorProto { name: name.into(), dims: dims.to_vec(), data_type: 9, raw_data, ..Default::default() });
        self
    }

    pub(crate) fn node(self, op: &str, name: &str, inputs: &[&str], output: &str, attrs: &[(&str, Attr)]) -> Self {
        self.node_outputs(op, name, inputs, &[output], attrs)
    }

    pub(crate) fn node_outputs(mut self, op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: &[(&str, Attr)]) -> Self {
        let attribute = attrs
            .iter()
            .map(|(n, a)| match a {
                Attr::Int(i) => AttributeProto { name: (*n).into(), r#type: AttributeType::Int as i32, i: *i, ..Default::default() },
                Attr::Float(f) => AttributeProto { name: (*n).into(), r#type: AttributeType::Float as i32, f: *f, ..Default::default() },
                Attr::Ints(v) => {
                    AttributeProto { name: (*n).into(), r#type: AttributeType::Ints as i32, ints: v.clone(), ..Default::default() }
                }
            })
            .collect();
        self.nodes.push(NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|s| (*s).into()).collect(),
            output: outputs.iter().map(|s| (*s).into()).collect(),
            attribute,
            ..Default::default()
        });
        self
    }

    pub(crate) fn build(self) -> Vec<u8> {
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
            graph: Some(GraphProto {
                node: self.nodes,
                initializer: self.inits,
                input: self.inputs,
                output: self.outputs,
                name: "test".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }
}
