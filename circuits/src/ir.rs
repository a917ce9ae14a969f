//! A typed graph IR with static shapes, produced by the ONNX importer.
//!
//! Constants are folded during import, so every node here reads at least one
//! activation (a tensor that depends on the model input).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Index of an activation tensor in [`Graph::tensors`].
pub type TensorId = usize;

/// The shape of a batched matrix product `[batch, m, k] · [batch, k, n]`.
///
/// A [`Op::DotPairs`] with these dimensions multiplies the factors gathered in this order:
/// pair `((b·m + i)·n + j)·k + t` is `A[b][i][t]·B[b][t][j]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatMulDims {
    /// Independent products.
    pub batch: usize,
    /// Rows of `A` and `C`.
    pub m: usize,
    /// The inner dimension.
    pub k: usize,
    /// Columns of `B` and `C`.
    pub n: usize,
}

impl MatMulDims {
    /// Multiply-accumulates of the product.
    pub fn macs(&self) -> usize {
        self.batch * self.m * self.k * self.n
    }
}

/// A constant tensor (weights, biases, folded constants), stored as f64.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstTensor {
    /// The shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f64>,
}

impl ConstTensor {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Largest absolute value (0 for an empty tensor).
    pub fn max_abs(&self) -> f64 {
        self.data.iter().fold(0.0, |m, v| m.max(v.abs()))
    }
}

/// An operand of an elementwise op: an activation or a constant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Operand {
    /// An activation tensor.
    Tensor(TensorId),
    /// A folded constant.
    Const(ConstTensor),
}

/// The elementwise binary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryKind {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
}

impl BinaryKind {
    /// Applies the operation to floats.
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            BinaryKind::Add => a + b,
            BinaryKind::Sub => a - b,
            BinaryKind::Mul => a * b,
        }
    }
}

/// A typed operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// `out[m][n] = sum_k x[m][k] * weight[k][n] + bias[m][n]`, with `x` viewed as `[rows, k]`.
    Linear {
        /// The activation.
        input: TensorId,
        /// Weight, shape `[k, n]`.
        weight: ConstTensor,
        /// Bias, shape `[rows, n]` (already broadcast).
        bias: Option<ConstTensor>,
    },
    /// Elementwise `a ∘ b` with numpy broadcasting resolved into the output shape.
    Binary {
        /// Which operation.
        kind: BinaryKind,
        /// Left operand.
        a: Operand,
        /// Right operand.
        b: Operand,
    },
    /// `max(x, 0)`.
    Relu {
        /// The activation.
        input: TensorId,
    },
    /// Row-wise dot products of two activations: `out[r] = Σ_t a[r·w + t]·b[r·w + t]`
    /// (the core of an activation × activation MatMul).
    DotPairs {
        /// Left factors, `rows·width` values.
        a: TensorId,
        /// Right factors, same length.
        b: TensorId,
        /// Products per output.
        width: usize,
        /// The matrix product whose gathered factors `a` and `b` are (`None`: plain pairs).
        matmul: Option<MatMulDims>,
    },
    /// A nonlinear function through a lookup table.
    Function {
        /// Which function.
        kind: crate::chips::function::FunctionKind,
        /// The activation.
        input: TensorId,
        /// Known bounds of the input (e.g. `x − max(x) ≤ 0` in a softmax), tightening the
        /// calibrated table range.
        bounds: (Option<f64>, Option<f64>),
    },
    /// `out[i] = values[x[i]]` for an activation holding integers in `0..values.len()`: a
    /// Gather from a constant by an activation (an embedding by token ids), one table per
    /// gathered column. NaN for any other input.
    Table {
        /// The activation holding the indices.
        input: TensorId,
        /// The value at each index.
        values: Vec<f64>,
    },
    /// A pure re-indexing (Reshape, Flatten, Identity, Transpose, im2col, ...):
    /// `out[i] = input[index[i]]`, or 0 where the index is `None` (zero padding).
    View {
        /// The activation.
        input: TensorId,
        /// For each output element, the input element it reads (`None`: the constant 0).
        index: Vec<Option<usize>>,
    },
}

/// One node of the graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The ONNX node name (or its first output when unnamed).
    pub name: String,
    /// The ONNX op type it came from.
    pub op_type: String,
    /// The typed operation.
    pub op: Op,
    /// The activation it defines.
    pub output: TensorId,
}

/// Shape and name of an activation tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorInfo {
    /// The ONNX value name.
    pub name: String,
    /// The static shape.
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A model graph with static shapes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Every activation tensor.
    pub tensors: Vec<TensorInfo>,
    /// The model inputs, in ONNX order.
    pub inputs: Vec<TensorId>,
    /// The model outputs, in ONNX order.
    pub outputs: Vec<TensorId>,
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
}

impl Graph {
    /// Evaluates the graph in f64 and returns every activation tensor's values.
    pub fn eval_f64(&self, inputs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::InputCount { expected: self.inputs.len(), got: inputs.len() });
        }
        let mut values: Vec<Vec<f64>> = vec![Vec::new(); self.tensors.len()];
        for (index, (&id, data)) in self.inputs.iter().zip(inputs).enumerate() {
            let info = &self.tensors[id];
            if data.len() != info.numel() {
                return Err(Error::InputLength { index, got: data.len(), expected: info.numel(), shape: info.shape.clone() });
            }
            values[id] = data.clone();
        }
        for node in &self.nodes {
            let out_shape = &self.tensors[node.output].shape;
            values[node.output] = eval_node_f64(&node.op, out_shape, &self.tensors, &values);
        }
        Ok(values)
    }

    /// Multiply-accumulates of all linear layers.
    pub fn macs(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                Op::Linear { input, weight, .. } => {
                    let k = weight.shape[0];
                    (self.tensors[*input].numel() / k) * weight.len()
                }
                _ => 0,
            })
            .sum()
    }
}

fn operand_at(op: &Operand, values: &[Vec<f64>], idx: usize) -> f64 {
    match op {
        Operand::Tensor(id) => values[*id][idx],
        Operand::Const(c) => c.data[idx],
    }
}

/// Evaluates one op in f64. Operands of `Binary` are already broadcast to the output shape.
fn eval_node_f64(op: &Op, out_shape: &[usize], tensors: &[TensorInfo], values: &[Vec<f64>]) -> Vec<f64> {
    let numel: usize = out_shape.iter().product();
    match op {
        Op::Linear { input, weight, bias } => {
            let (k, n) = (weight.shape[0], weight.shape[1]);
            let x = &values[*input];
            let rows = tensors[*input].numel() / k;
            let mut out = vec![0.0; rows * n];
            for m in 0..rows {
                for j in 0..n {
                    let mut acc = bias.as_ref().map_or(0.0, |b| b.data[m * n + j]);
                    for i in 0..k {
                        acc += x[m * k + i] * weight.data[i * n + j];
                    }
                    out[m * n + j] = acc;
                }
            }
            out
        }
        Op::Binary { kind, a, b } => (0..numel).map(|i| kind.apply(operand_at(a, values, i), operand_at(b, values, i))).collect(),
        Op::Relu { input } => values[*input].iter().map(|v| v.max(0.0)).collect(),
        Op::DotPairs { a, b, width, .. } => {
            values[*a].chunks(*width).zip(values[*b].chunks(*width)).map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum()).collect()
        }
        Op::Function { kind, input, .. } => values[*input].iter().map(|&v| kind.eval(v)).collect(),
        Op::View { input, index } => index.iter().map(|i| i.map_or(0.0, |i| values[*input][i])).collect(),
        Op::Table { input, values: table } => values[*input].iter().map(|&x| table_value(table, x).unwrap_or(f64::NAN)).collect(),
    }
}

/// `table[x]` when `x` is an integer index into `table`.
pub fn table_value(table: &[f64], x: f64) -> Option<f64> {
    (x.fract() == 0.0 && x >= 0.0).then_some(x as usize).and_then(|i| table.get(i)).copied()
}

/// Most values one tensor may hold: 2^26, the rows of a circuit larger than any this machine
/// proves (`compile` stops at 2^22 rows by default). A shape beyond it is refused at import,
/// before anything is allocated for it.
pub const MAX_TENSOR_VALUES: usize = 1 << 26;

/// The number of elements of `shape`, or `None` when it exceeds [`MAX_TENSOR_VALUES`] (or
/// would overflow).
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).filter(|&n| n <= MAX_TENSOR_VALUES)
}

/// Numpy-style broadcast of two shapes (`None` also when the result is larger than
/// [`MAX_TENSOR_VALUES`]).
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    checked_numel(&out).map(|_| out)
}

/// For each element of `out_shape`, the flat index it reads from a tensor of shape `src`
/// broadcast to `out_shape`. Assumes `src` broadcasts to `out_shape`.
pub fn broadcast_index(src: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let rank = out_shape.len();
    let numel: usize = out_shape.iter().product();
    let offset = rank - src.len();
    let mut strides = vec![0usize; rank];
    let mut s = 1;
    for i in (0..src.len()).rev() {
        strides[i + offset] = if src[i] == 1 { 0 } else { s };
        s *= src[i];
    }
    let mut out = Vec::with_capacity(numel);
    let mut coord = vec![0usize; rank];
    for _ in 0..numel {
        out.push(coord.iter().zip(&strides).map(|(c, s)| c * s).sum());
        for d in (0..rank).rev() {
            coord[d] += 1;
            if coord[d] < out_shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    out
}

/// Broadcasts a constant to `out_shape`.
pub fn broadcast_const(c: &ConstTensor, out_shape: &[usize]) -> ConstTensor {
    let data = broadcast_index(&c.shape, out_shape).into_iter().map(|i| c.data[i]).collect();
    ConstTensor { shape: out_shape.to_vec(), data }
}

/// Transposes a rank-2 constant.
pub fn transpose2(c: &ConstTensor) -> ConstTensor {
    let (r, k) = (c.shape[0], c.shape[1]);
    let mut data = vec![0.0; r * k];
    for i in 0..r {
        for j in 0..k {
            data[j * r + i] = c.data[i * k + j];
        }
    }
    ConstTensor { shape: vec![k, r], data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules() {
        assert_eq!(broadcast_shape(&[1, 8], &[8]), Some(vec![1, 8]));
        assert_eq!(broadcast_shape(&[2, 1], &[1, 3]), Some(vec![2, 3]));
        assert_eq!(broadcast_shape(&[2, 3], &[4]), None);
        assert_eq!(broadcast_index(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_index(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_index(&[], &[2]), vec![0, 0]);
    }

    #[test]
    fn transpose_is_involution() {
        let c = ConstTensor { shape: vec![2, 3], data: vec![1., 2., 3., 4., 5., 6.] };
        let t = transpose2(&c);
        assert_eq!(t.data, vec![1., 4., 2., 5., 3., 6.]);
        assert_eq!(transpose2(&t), c);
    }
}
