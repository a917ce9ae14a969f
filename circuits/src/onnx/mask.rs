//! Constant attention masks: `Softmax(x + M)` with a constant `M` that holds a large negative
//! value (an exporter's -1e4, `finfo.min` or -inf) where attention is forbidden, as torch.onnx
//! writes a causal or padding mask (an additive mask, or masked_fill's `Where`).
//!
//! Computed as written, `x + M` stretches the value range to |M|: every activation of the
//! circuit then needs about log2|M| more integer bits, and the exp table's inputs fall to a
//! coarse resolution. A masked entry's softmax weight is e^(x + M − max) < e^-100 whenever
//! |x| ≤ 450 (with M ≤ [`MASK_THRESHOLD`]), which is 0 at any scale the circuit proves. So the
//! softmax is taken over the unmasked entries only, and the masked outputs are the constant 0:
//! masked entries contribute exactly 0 and the range of `x` is untouched.

use candle_onnx::onnx::NodeProto;

use super::ops::{attr_int, unsupported, value_shape};
use super::{ImportCtx, Value};
use crate::error::{Error, Result};
use crate::ir::{broadcast_const, broadcast_index, broadcast_shape, BinaryKind, ConstTensor, Graph, Op, Operand, TensorId};

/// Mask entries at or below this value are masked out.
pub const MASK_THRESHOLD: f64 = -1e3;

/// Largest calibrated |score| for which a masked entry's weight, e^(2·450 − 1000), is
/// negligible: [`crate::compile`] refuses a masked softmax whose scores reach beyond it.
pub const MASK_SAFE_MAGNITUDE: f64 = 450.0;

/// A recognised mask in front of a softmax over rows of `width`.
pub(super) struct SoftmaxMask {
    /// The unmasked scores (`x`, or `x + M` restricted to the unmasked entries).
    pub scores: TensorId,
    /// Whether each entry takes part (false: masked out).
    pub keep: Vec<bool>,
}

/// Recognises `t = x + M` (or `M + x`) with a constant mask `M`, as [`SoftmaxMask`]. `None`
/// when `t` is not such an Add or `M` masks nothing. A row that is masked entirely (softmax
/// of equal offsets, uniform in float) keeps all its entries when its offsets are equal and
/// finite; otherwise the mask is not recognised and the softmax is computed as written.
pub(super) fn recognise(node: &NodeProto, ctx: &mut ImportCtx, t: TensorId, width: usize) -> Option<SoftmaxMask> {
    let producer = ctx.graph.nodes.iter().rev().find(|n| n.output == t)?;
    let Op::Binary { kind: BinaryKind::Add, a, b } = &producer.op else { return None };
    let (x, m) = match (a, b) {
        (Operand::Tensor(x), Operand::Const(m)) | (Operand::Const(m), Operand::Tensor(x)) => (*x, m.clone()),
        _ => return None,
    };
    if width == 0 || m.len() != ctx.shape(t).iter().product::<usize>() || m.len() % width != 0 {
        return None;
    }
    let masked = |v: f64| v <= MASK_THRESHOLD;
    if !m.data.iter().copied().any(masked) {
        return None;
    }
    let mut keep = Vec::with_capacity(m.len());
    let mut offsets = Vec::with_capacity(m.len());
    for row in m.data.chunks(width) {
        if row.iter().copied().all(masked) {
            // Softmax is shift-invariant: equal finite offsets cancel; anything else does not.
            if !row[0].is_finite() || row.iter().any(|&v| v != row[0]) {
                return None;
            }
            keep.extend(std::iter::repeat_n(true, width));
            offsets.extend(std::iter::repeat_n(0.0, width));
        } else {
            keep.extend(row.iter().map(|&v| !masked(v)));
            offsets.extend(row.iter().map(|&v| if masked(v) { 0.0 } else { v }));
        }
    }
    let scores = if offsets.iter().all(|&v| v == 0.0) {
        x
    } else {
        let c = ConstTensor { shape: m.shape.clone(), data: offsets };
        let shape = ctx.shape(t).to_vec();
        ctx.push_internal(
            node,
            "unmasked_offsets",
            Op::Binary { kind: BinaryKind::Add, a: Operand::Tensor(x), b: Operand::Const(c) },
            shape,
        )
    };
    Some(SoftmaxMask { scores, keep })
}

/// Name of the View through which a masked softmax reads its scores ([`masked_scores`]).
pub(super) const MASKED_ROWS: &str = "masked_rows";

/// The score tensor of every softmax behind a recognised mask, with the softmax's node name.
pub fn masked_scores(graph: &Graph) -> Vec<(String, TensorId)> {
    graph
        .nodes
        .iter()
        .filter(|n| n.op_type == "Softmax" && n.name.ends_with(&format!("/{MASKED_ROWS}")))
        .filter_map(|n| match &n.op {
            Op::View { input, .. } => Some((n.name.trim_end_matches(&format!("/{MASKED_ROWS}")).to_string(), *input)),
            _ => None,
        })
        .collect()
}

/// One operand of a `Where`, broadcast to the output: per element, an activation's element
/// or a constant value.
enum Pick {
    Act(TensorId, Vec<usize>),
    Const(Vec<f64>),
}

fn pick(ctx: &ImportCtx, v: Value, shape: &[usize]) -> Pick {
    match v {
        Value::Act(id) => Pick::Act(id, broadcast_index(ctx.shape(id), shape)),
        Value::Const(c) => Pick::Const(broadcast_const(&c, shape).data),
    }
}

/// `Where(condition, X, Y)` with a constant condition (a mask): each output element is
/// X's or Y's. A constant branch becomes a constant added to a View of the other, which is
/// how masked_fill's `Where(mask, -inf, scores)` reaches [`recognise`].
pub(super) fn import_where(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let Value::Const(cond) = ctx.input(node, 0)? else {
        return Err(unsupported(node, "the condition must be a constant (a mask)"));
    };
    let (x, y) = (ctx.input(node, 1)?, ctx.input(node, 2)?);
    let (sx, sy) = (value_shape(ctx, &x), value_shape(ctx, &y));
    let mismatch =
        |lhs: &[usize], rhs: &[usize]| Error::ShapeMismatch { node: ImportCtx::node_name(node), lhs: lhs.to_vec(), rhs: rhs.to_vec() };
    let xy = broadcast_shape(&sx, &sy).ok_or_else(|| mismatch(&sx, &sy))?;
    let shape = broadcast_shape(&cond.shape, &xy).ok_or_else(|| mismatch(&cond.shape, &xy))?;
    let take_x: Vec<bool> = broadcast_const(&cond, &shape).data.iter().map(|&c| c != 0.0).collect();
    let (px, py) = (pick(ctx, x, &shape), pick(ctx, y, &shape));
    let n = take_x.len();
    let constant = |i: usize| match (&px, &py, take_x[i]) {
        (Pick::Const(c), _, true) | (_, Pick::Const(c), false) => c[i],
        _ => 0.0,
    };
    let from = |p: &Pick, want: bool| -> Option<(TensorId, Vec<Option<usize>>)> {
        let Pick::Act(id, index) = p else { return None };
        Some((*id, (0..n).map(|i| (take_x[i] == want).then(|| index[i])).collect()))
    };
    let offsets: Vec<f64> = (0..n).map(constant).collect();
    match (from(&px, true), from(&py, false)) {
        (None, None) => ctx.define_const(node, ConstTensor { shape, data: offsets }),
        (Some((id, index)), None) | (None, Some((id, index))) => {
            if offsets.iter().all(|&v| v == 0.0) {
                return ctx.push(node, Op::View { input: id, index }, shape).map(|_| ());
            }
            let v = ctx.push_internal(node, "selected", Op::View { input: id, index }, shape.clone());
            let c = Operand::Const(ConstTensor { shape: shape.clone(), data: offsets });
            ctx.push(node, Op::Binary { kind: BinaryKind::Add, a: Operand::Tensor(v), b: c }, shape).map(|_| ())
        }
        (Some((a, ia)), Some((b, ib))) => {
            let va = ctx.push_internal(node, "selected_x", Op::View { input: a, index: ia }, shape.clone());
            let vb = ctx.push_internal(node, "selected_y", Op::View { input: b, index: ib }, shape.clone());
            ctx.push(node, Op::Binary { kind: BinaryKind::Add, a: Operand::Tensor(va), b: Operand::Tensor(vb) }, shape).map(|_| ())
        }
    }
}

/// `Trilu(input, k)`: keeps the upper (`upper = 1`) or lower triangle of the last two axes,
/// from diagonal `k`, and zeroes the rest (a causal mask's source).
pub(super) fn import_trilu(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let data = ctx.input(node, 0)?;
    let shape = value_shape(ctx, &data);
    let k = match ctx.optional_input(node, 1)? {
        None => 0,
        Some(Value::Const(c)) if c.len() == 1 && c.data[0].fract() == 0.0 => c.data[0] as i64,
        Some(_) => return Err(unsupported(node, "k must be a constant integer")),
    };
    let upper = attr_int(node, "upper", 1) != 0;
    let [.., rows, cols] = shape[..] else {
        return Err(unsupported(node, format!("input of rank {} (needs at least 2)", shape.len())));
    };
    let keep = |i: usize| {
        let (r, c) = (((i / cols) % rows) as i64, (i % cols) as i64);
        if upper {
            c - r >= k
        } else {
            c - r <= k
        }
    };
    let n: usize = shape.iter().product();
    match data {
        Value::Const(c) => {
            ctx.define_const(node, ConstTensor { shape, data: (0..n).map(|i| if keep(i) { c.data[i] } else { 0.0 }).collect() })
        }
        Value::Act(id) => ctx.push(node, Op::View { input: id, index: (0..n).map(|i| keep(i).then_some(i)).collect() }, shape).map(|_| ()),
    }
}
