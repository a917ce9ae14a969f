//! ONNX import: protobuf → typed [`Graph`] with static shapes and folded constants.
//!
//! Each supported op type has one import function in [`ops`], found through
//! [`registry`]; there is no match on op-name strings.

mod mask;
mod nonlinear;
mod normalize;
mod ops;
mod reduce;
mod shape_ops;
mod vision;

use std::collections::HashMap;

use candle_onnx::onnx::{self, NodeProto};
use prost::Message;

use crate::error::{Error, Result};
use crate::ir::{ConstTensor, Graph, Node, Op, TensorId, TensorInfo};

pub use mask::{masked_scores, MASK_SAFE_MAGNITUDE, MASK_THRESHOLD};

/// A value during import: an activation or a folded constant.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Act(TensorId),
    Const(ConstTensor),
}

/// The signature of every op's import function.
pub(crate) type ImportFn = fn(&NodeProto, &mut ImportCtx) -> Result<()>;

/// The typed op registry: ONNX op type → import function.
pub fn registry() -> &'static [(&'static str, ImportFnPub)] {
    ops::REGISTRY
}

/// Public alias of the import function type (the context is crate-private).
pub type ImportFnPub = ImportFn;

/// The ONNX op types this build can import, sorted.
pub fn supported_ops() -> Vec<&'static str> {
    let mut v: Vec<_> = registry().iter().map(|(name, _)| *name).collect();
    v.sort_unstable();
    v
}

/// Import state: the graph being built and the name → value map.
#[derive(Debug)]
pub struct ImportCtx {
    graph: Graph,
    values: HashMap<String, Value>,
}

impl ImportCtx {
    pub(crate) fn node_name(node: &NodeProto) -> String {
        if node.name.is_empty() {
            node.output.first().cloned().unwrap_or_else(|| node.op_type.clone())
        } else {
            node.name.clone()
        }
    }

    /// The value of a node's `i`-th input.
    pub(crate) fn input(&self, node: &NodeProto, i: usize) -> Result<Value> {
        let name = node.input.get(i).filter(|n| !n.is_empty()).ok_or_else(|| Error::UnsupportedNode {
            op_type: node.op_type.clone(),
            node: Self::node_name(node),
            reason: format!("missing input {i}"),
        })?;
        self.values.get(name).cloned().ok_or_else(|| Error::MissingTensor { node: Self::node_name(node), tensor: name.clone() })
    }

    /// The value of an optional input, `None` when absent or empty.
    pub(crate) fn optional_input(&self, node: &NodeProto, i: usize) -> Result<Option<Value>> {
        match node.input.get(i) {
            Some(n) if !n.is_empty() => self.input(node, i).map(Some),
            _ => Ok(None),
        }
    }

    pub(crate) fn shape(&self, id: TensorId) -> &[usize] {
        &self.graph.tensors[id].shape
    }

    /// Binds the node's first output to a constant.
    pub(crate) fn define_const(&mut self, node: &NodeProto, c: ConstTensor) -> Result<()> {
        let name = first_output(node)?;
        self.values.insert(name, Value::Const(c));
        Ok(())
    }

    /// Adds an activation-producing node (named after the ONNX node) and returns its output id.
    pub(crate) fn push(&mut self, node: &NodeProto, op: Op, shape: Vec<usize>) -> Result<TensorId> {
        self.push_named(node, Self::node_name(node), op, shape)
    }

    /// Like [`Self::push`] with an explicit node name (for ops lowered into several nodes).
    pub(crate) fn push_named(&mut self, node: &NodeProto, name: String, op: Op, shape: Vec<usize>) -> Result<TensorId> {
        too_large(node, &shape)?;
        let id = self.graph.tensors.len();
        let out = first_output(node)?;
        self.graph.tensors.push(TensorInfo { name: out.clone(), shape });
        self.graph.nodes.push(Node { name, op_type: node.op_type.clone(), op, output: id });
        self.values.insert(out, Value::Act(id));
        Ok(id)
    }

    /// Binds the node's `i`-th output (of several, as Split's) to a constant or a new node.
    pub(crate) fn define_output(
        &mut self,
        node: &NodeProto,
        i: usize,
        value: std::result::Result<Op, ConstTensor>,
        shape: Vec<usize>,
    ) -> Result<()> {
        let out = node.output.get(i).filter(|o| !o.is_empty()).cloned().ok_or_else(|| Error::UnsupportedNode {
            op_type: node.op_type.clone(),
            node: Self::node_name(node),
            reason: format!("output {i} has no name"),
        })?;
        match value {
            Err(c) => {
                self.values.insert(out, Value::Const(c));
            }
            Ok(op) => {
                too_large(node, &shape)?;
                let id = self.graph.tensors.len();
                self.graph.tensors.push(TensorInfo { name: out.clone(), shape });
                self.graph.nodes.push(Node {
                    name: format!("{}/{out}", Self::node_name(node)),
                    op_type: node.op_type.clone(),
                    op,
                    output: id,
                });
                self.values.insert(out, Value::Act(id));
            }
        }
        Ok(())
    }

    /// Adds an intermediate node whose output has no ONNX name.
    pub(crate) fn push_internal(&mut self, node: &NodeProto, suffix: &str, op: Op, shape: Vec<usize>) -> TensorId {
        let id = self.graph.tensors.len();
        let name = format!("{}/{}", Self::node_name(node), suffix);
        self.graph.tensors.push(TensorInfo { name: name.clone(), shape });
        self.graph.nodes.push(Node { name, op_type: node.op_type.clone(), op, output: id });
        id
    }
}

/// Refuses a shape with more than [`crate::ir::MAX_TENSOR_VALUES`] values, naming the node.
pub(crate) fn too_large(node: &NodeProto, shape: &[usize]) -> Result<usize> {
    crate::ir::checked_numel(shape).ok_or_else(|| Error::UnsupportedNode {
        op_type: node.op_type.clone(),
        node: ImportCtx::node_name(node),
        reason: format!("shape {shape:?} has more than {} values", crate::ir::MAX_TENSOR_VALUES),
    })
}

fn first_output(node: &NodeProto) -> Result<String> {
    node.output.first().cloned().ok_or_else(|| Error::UnsupportedNode {
        op_type: node.op_type.clone(),
        node: ImportCtx::node_name(node),
        reason: "node has no output".into(),
    })
}

/// Decodes ONNX bytes into a typed graph.
pub fn import_bytes(bytes: &[u8]) -> Result<Graph> {
    let model = onnx::ModelProto::decode(bytes).map_err(|e| Error::MalformedOnnx { reason: e.to_string() })?;
    import_model(&model)
}

/// Reads and imports an ONNX file.
pub fn import_file(path: &std::path::Path) -> Result<Graph> {
    let bytes = std::fs::read(path).map_err(|e| Error::MalformedOnnx { reason: format!("{}: {e}", path.display()) })?;
    import_bytes(&bytes)
}

/// Imports a decoded model.
pub fn import_model(model: &onnx::ModelProto) -> Result<Graph> {
    let graph = model.graph.as_ref().ok_or_else(|| Error::MalformedOnnx { reason: "model has no graph".into() })?;
    if graph.node.is_empty() {
        return Err(Error::MalformedOnnx { reason: "graph has no nodes".into() });
    }
    let mut ctx = ImportCtx {
        graph: Graph { tensors: Vec::new(), inputs: Vec::new(), outputs: Vec::new(), nodes: Vec::new() },
        values: HashMap::new(),
    };
    for init in &graph.initializer {
        let c = ops::const_from_proto(init)?;
        ctx.values.insert(init.name.clone(), Value::Const(c));
    }
    for input in &graph.input {
        if ctx.values.contains_key(&input.name) {
            continue; // an initializer listed as input (older exporters)
        }
        let shape = static_input_shape(input)?;
        let id = ctx.graph.tensors.len();
        ctx.graph.tensors.push(TensorInfo { name: input.name.clone(), shape });
        ctx.graph.inputs.push(id);
        ctx.values.insert(input.name.clone(), Value::Act(id));
    }
    if ctx.graph.inputs.is_empty() {
        return Err(Error::MalformedOnnx { reason: "graph has no non-constant input".into() });
    }
    let table: HashMap<&str, ImportFn> = registry().iter().copied().collect();
    for node in &graph.node {
        let import = table
            .get(node.op_type.as_str())
            .ok_or_else(|| Error::UnsupportedOp { op_type: node.op_type.clone(), node: ImportCtx::node_name(node) })?;
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            return Err(Error::UnsupportedOp { op_type: format!("{}::{}", node.domain, node.op_type), node: ImportCtx::node_name(node) });
        }
        import(node, &mut ctx)?;
    }
    for out in &graph.output {
        match ctx.values.get(&out.name) {
            Some(Value::Act(id)) => ctx.graph.outputs.push(*id),
            Some(Value::Const(_)) => {
                return Err(Error::MalformedOnnx { reason: format!("output `{}` does not depend on the input", out.name) })
            }
            None => return Err(Error::MalformedOnnx { reason: format!("output `{}` is never produced", out.name) }),
        }
    }
    crate::fold::fold_affine_into_linear(&mut ctx.graph);
    // A recognised attention mask leaves its Add unread: it must not widen the ranges.
    crate::fold::prune_unread(&mut ctx.graph);
    Ok(ctx.graph)
}

fn static_input_shape(input: &onnx::ValueInfoProto) -> Result<Vec<usize>> {
    use onnx::tensor_shape_proto::dimension::Value as Dim;
    use onnx::type_proto::Value as Ty;
    let malformed = |why: &str| Error::MalformedOnnx { reason: format!("input `{}`: {why}", input.name) };
    let ty = input.r#type.as_ref().and_then(|t| t.value.as_ref()).ok_or_else(|| malformed("no type"))?;
    let Ty::TensorType(tensor) = ty else {
        return Err(malformed("not a tensor"));
    };
    let dims = tensor.shape.as_ref().ok_or_else(|| malformed("no shape"))?;
    let shape: Vec<usize> = dims
        .dim
        .iter()
        .enumerate()
        .map(|(axis, d)| match d.value {
            Some(Dim::DimValue(v)) if v > 0 => Ok(v as usize),
            // A symbolic or unknown batch axis is proven for batch size 1.
            _ if axis == 0 => Ok(1),
            _ => Err(Error::DynamicShape { input: input.name.clone(), axis }),
        })
        .collect::<Result<_>>()?;
    crate::ir::checked_numel(&shape)
        .ok_or_else(|| malformed(&format!("shape {shape:?} has more than {} values", crate::ir::MAX_TENSOR_VALUES)))?;
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed() {
        let err = import_bytes(b"definitely not a protobuf \xff\xff\xff").unwrap_err();
        assert!(matches!(err, Error::MalformedOnnx { .. }), "{err}");
    }

    #[test]
    fn registry_has_issue_ops() {
        let ops = supported_ops();
        for op in ["Gemm", "MatMul", "Add", "Sub", "Mul", "Relu", "Reshape", "Flatten", "Identity", "Constant"] {
            assert!(ops.contains(&op), "{op} missing");
        }
    }
}
