//! Softmax (last axis) and LayerNormalization (last axis), composed from dot products, the
//! elementwise chip, the ReLU max tree and function tables.

use candle_onnx::onnx::NodeProto;

use super::ops::{attr_float, attr_int, unsupported};
use super::vision::row_max;
use super::{ImportCtx, Value};
use crate::chips::function::FunctionKind;
use crate::error::Result;
use crate::ir::{broadcast_const, BinaryKind, ConstTensor, Op, Operand, TensorId};

/// Checks the axis is the last one and returns (rows, width).
fn last_axis(node: &NodeProto, shape: &[usize], default: i64) -> Result<(usize, usize)> {
    let rank = shape.len() as i64;
    let axis = attr_int(node, "axis", default);
    if rank == 0 || (axis != -1 && axis != rank - 1) {
        return Err(unsupported(node, format!("axis {axis}: only the last axis is supported")));
    }
    let width = shape[shape.len() - 1];
    Ok((shape.iter().product::<usize>() / width, width))
}

/// `[rows]` → `[rows·width]`, each value repeated `width` times.
fn spread(node: &NodeProto, ctx: &mut ImportCtx, v: TensorId, rows: usize, width: usize, tag: &str) -> TensorId {
    let index = (0..rows * width).map(|i| Some(i / width)).collect();
    ctx.push_internal(node, tag, Op::View { input: v, index }, vec![rows * width])
}

/// `Σ_j weight·x[r][j]` per row, as `[rows]`.
fn row_sum(node: &NodeProto, ctx: &mut ImportCtx, x: TensorId, rows: usize, width: usize, weight: f64, tag: &str) -> TensorId {
    let w = ConstTensor { shape: vec![width, 1], data: vec![weight; width] };
    let grid = ctx.push_internal(
        node,
        &format!("{tag}_rows"),
        Op::View { input: x, index: (0..rows * width).map(Some).collect() },
        vec![rows, width],
    );
    ctx.push_internal(node, tag, Op::Linear { input: grid, weight: w, bias: None }, vec![rows, 1])
}

fn binary(node: &NodeProto, ctx: &mut ImportCtx, kind: BinaryKind, a: TensorId, b: Operand, n: usize, tag: &str) -> TensorId {
    ctx.push_internal(node, tag, Op::Binary { kind, a: Operand::Tensor(a), b }, vec![n])
}

fn activation(node: &NodeProto, ctx: &ImportCtx) -> Result<TensorId> {
    match ctx.input(node, 0)? {
        Value::Act(id) => Ok(id),
        Value::Const(_) => Err(unsupported(node, "constant input")),
    }
}

/// softmax(x) = e / Σe with e = exp(x − max x): the shift keeps exp's input ≤ 0. Behind a
/// constant attention mask, over the unmasked entries only ([`super::mask`]).
pub(super) fn import_softmax(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let x = activation(node, ctx)?;
    let shape = ctx.shape(x).to_vec();
    let (rows, width) = last_axis(node, &shape, -1)?;
    if let Some(mask) = super::mask::recognise(node, ctx, x, width) {
        return masked_softmax(node, ctx, &mask, &shape, width);
    }
    let n = rows * width;
    let grid = ctx.push_internal(node, "rows", Op::View { input: x, index: (0..n).map(Some).collect() }, vec![rows, width]);
    let max = row_max(node, ctx, grid, rows, width);
    let max_all = spread(node, ctx, max, rows, width, "max_spread");
    let flat = ctx.push_internal(node, "flat", Op::View { input: x, index: (0..n).map(Some).collect() }, vec![n]);
    let shifted = binary(node, ctx, BinaryKind::Sub, flat, Operand::Tensor(max_all), n, "shifted");
    let e = ctx.push_internal(node, "exp", Op::Function { kind: FunctionKind::Exp, input: shifted, bounds: (None, Some(0.0)) }, vec![n]);
    let sum = row_sum(node, ctx, e, rows, width, 1.0, "sum");
    // Σe ≥ 1 (the maximum contributes e^0); 0.5 leaves room for rounding.
    let inv = ctx.push_internal(
        node,
        "reciprocal",
        Op::Function { kind: FunctionKind::Reciprocal, input: sum, bounds: (Some(0.5), Some(width as f64 + 0.5)) },
        vec![rows, 1],
    );
    let inv_all = spread(node, ctx, inv, rows, width, "inv_spread");
    let y = binary(node, ctx, BinaryKind::Mul, e, Operand::Tensor(inv_all), n, "normalized");
    ctx.push(node, Op::View { input: y, index: (0..n).map(Some).collect() }, shape).map(|_| ())
}

/// Softmax over the entries `mask.keep` marks, per row of `width`; masked outputs are the
/// constant 0. The row maximum reads each masked position as the row's first kept entry
/// (which leaves the maximum unchanged); exp, the sum and the normalisation see kept entries only.
fn masked_softmax(node: &NodeProto, ctx: &mut ImportCtx, mask: &super::mask::SoftmaxMask, shape: &[usize], width: usize) -> Result<()> {
    let n = mask.keep.len();
    let rows = n / width;
    let kept: Vec<usize> = (0..n).filter(|&i| mask.keep[i]).collect();
    // Position of each entry among the kept ones.
    let mut slot = vec![None; n];
    kept.iter().enumerate().for_each(|(s, &i)| slot[i] = Some(s));
    let first_kept: Vec<usize> = (0..rows).map(|r| (r * width..(r + 1) * width).find(|&i| mask.keep[i]).unwrap_or(r * width)).collect();
    let view = |ctx: &mut ImportCtx, input, index: Vec<Option<usize>>, shape: Vec<usize>, tag: &str| {
        ctx.push_internal(node, tag, Op::View { input, index }, shape)
    };
    let grid_index = (0..n).map(|i| Some(if mask.keep[i] { i } else { first_kept[i / width] })).collect();
    let grid = view(ctx, mask.scores, grid_index, vec![rows, width], super::mask::MASKED_ROWS);
    let max = row_max(node, ctx, grid, rows, width);
    let nk = kept.len();
    let row_of_kept: Vec<Option<usize>> = kept.iter().map(|&i| Some(i / width)).collect();
    let max_kept = view(ctx, max, row_of_kept.clone(), vec![nk], "max_spread");
    let scores = view(ctx, mask.scores, kept.iter().map(|&i| Some(i)).collect(), vec![nk], "unmasked");
    let shifted = binary(node, ctx, BinaryKind::Sub, scores, Operand::Tensor(max_kept), nk, "shifted");
    let e = ctx.push_internal(node, "exp", Op::Function { kind: FunctionKind::Exp, input: shifted, bounds: (None, Some(0.0)) }, vec![nk]);
    let e_grid = view(ctx, e, slot.clone(), vec![rows, width], "exp_rows");
    let ones = ConstTensor { shape: vec![width, 1], data: vec![1.0; width] };
    let sum = ctx.push_internal(node, "sum", Op::Linear { input: e_grid, weight: ones, bias: None }, vec![rows, 1]);
    let widest = (0..rows).map(|r| mask.keep[r * width..(r + 1) * width].iter().filter(|&&k| k).count()).max().unwrap_or(width);
    let inv = ctx.push_internal(
        node,
        "reciprocal",
        Op::Function { kind: FunctionKind::Reciprocal, input: sum, bounds: (Some(0.5), Some(widest as f64 + 0.5)) },
        vec![rows, 1],
    );
    let inv_kept = view(ctx, inv, row_of_kept, vec![nk], "inv_spread");
    let y = binary(node, ctx, BinaryKind::Mul, e, Operand::Tensor(inv_kept), nk, "normalized");
    ctx.push(node, Op::View { input: y, index: slot }, shape.to_vec()).map(|_| ())
}

/// LayerNormalization over the last axis: (x − μ)·rsqrt(σ² + ε)·γ + β.
pub(super) fn import_layer_norm(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    if node.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err(unsupported(node, "the Mean and InvStdDev outputs"));
    }
    let x = activation(node, ctx)?;
    let shape = ctx.shape(x).to_vec();
    let (rows, width) = last_axis(node, &shape, -1)?;
    let n = rows * width;
    let konst = |i: usize, ctx: &ImportCtx| -> Result<Option<ConstTensor>> {
        match ctx.optional_input(node, i)? {
            None => Ok(None),
            Some(Value::Const(c)) if c.len() == width || c.len() == 1 => Ok(Some(broadcast_const(&c, &[rows, width]))),
            Some(_) => Err(unsupported(node, "scale and bias must be constants over the last axis")),
        }
    };
    let (gamma, beta) = (konst(1, ctx)?, konst(2, ctx)?);
    let eps = f64::from(attr_float(node, "epsilon", 1e-5));
    let mean = row_sum(node, ctx, x, rows, width, 1.0 / width as f64, "mean");
    let mean_all = spread(node, ctx, mean, rows, width, "mean_spread");
    let flat = ctx.push_internal(node, "flat", Op::View { input: x, index: (0..n).map(Some).collect() }, vec![n]);
    let centered = binary(node, ctx, BinaryKind::Sub, flat, Operand::Tensor(mean_all), n, "centered");
    let squared = binary(node, ctx, BinaryKind::Mul, centered, Operand::Tensor(centered), n, "squared");
    let var = row_sum(node, ctx, squared, rows, width, 1.0 / width as f64, "variance");
    let eps_c = ConstTensor { shape: vec![rows, 1], data: vec![eps; rows] };
    let var_eps = ctx.push_internal(
        node,
        "variance_eps",
        Op::Binary { kind: BinaryKind::Add, a: Operand::Tensor(var), b: Operand::Const(eps_c) },
        vec![rows, 1],
    );
    let inv = ctx.push_internal(
        node,
        "rsqrt",
        Op::Function { kind: FunctionKind::Rsqrt, input: var_eps, bounds: (Some(0.0), None) },
        vec![rows, 1],
    );
    let inv_all = spread(node, ctx, inv, rows, width, "rsqrt_spread");
    let mut y = binary(node, ctx, BinaryKind::Mul, centered, Operand::Tensor(inv_all), n, "normalized");
    let flat_const = |c: ConstTensor| ConstTensor { shape: vec![n], data: c.data };
    if let Some(g) = gamma {
        y = binary(node, ctx, BinaryKind::Mul, y, Operand::Const(flat_const(g)), n, "scaled");
    }
    if let Some(b) = beta {
        y = binary(node, ctx, BinaryKind::Add, y, Operand::Const(flat_const(b)), n, "shifted");
    }
    ctx.push(node, Op::View { input: y, index: (0..n).map(Some).collect() }, shape).map(|_| ())
}
