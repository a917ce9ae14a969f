//! Sums, means and products of activations, lowered onto dot products with constant weights
//! and the elementwise chip: ReduceSum, ReduceMean, Div and Pow by constants, and MatMul of two
//! activations (exact products summed per output, rescaled once).

use candle_onnx::onnx::NodeProto;

use super::ops::{attr_int, attr_ints, unsupported};
use super::shape_ops::strides;
use super::{ImportCtx, Value};
use crate::error::{Error, Result};
use crate::ir::{BinaryKind, ConstTensor, Op, Operand, TensorId};

/// `out[r] = Σ_j weight · x[rows[r][j]]` for equally long rows, shaped `shape`.
fn weighted_rows(node: &NodeProto, ctx: &mut ImportCtx, x: TensorId, rows: Vec<Vec<usize>>, weight: f64, shape: Vec<usize>) -> Result<()> {
    let (n, width) = (rows.len(), rows.first().map_or(0, Vec::len));
    let index = rows.into_iter().flatten().map(Some).collect();
    let gathered = ctx.push_internal(node, "gather", Op::View { input: x, index }, vec![n, width]);
    let w = ConstTensor { shape: vec![width, 1], data: vec![weight; width] };
    let summed = ctx.push_internal(node, "sum", Op::Linear { input: gathered, weight: w, bias: None }, vec![n, 1]);
    ctx.push(node, Op::View { input: summed, index: (0..n).map(Some).collect() }, shape).map(|_| ())
}

fn reduce(node: &NodeProto, ctx: &mut ImportCtx, mean: bool) -> Result<()> {
    let Value::Act(x) = ctx.input(node, 0)? else {
        return Err(unsupported(node, "constant input (should have been folded)"));
    };
    let shape = ctx.shape(x).to_vec();
    let rank = shape.len();
    let raw = match ctx.optional_input(node, 1)? {
        Some(Value::Const(c)) => Some(c.data.iter().map(|&a| a as i64).collect::<Vec<_>>()),
        Some(Value::Act(_)) => return Err(unsupported(node, "axes must be a constant")),
        None => attr_ints(node, "axes"),
    };
    let axes: Vec<usize> = match raw {
        Some(r) if !r.is_empty() => r
            .iter()
            .map(|&a| {
                usize::try_from(if a < 0 { a + rank as i64 } else { a })
                    .ok()
                    .filter(|&a| a < rank)
                    .ok_or_else(|| unsupported(node, "axis out of range"))
            })
            .collect::<Result<_>>()?,
        _ if attr_int(node, "noop_with_empty_axes", 0) != 0 => (0..0).collect(),
        _ => (0..rank).collect(),
    };
    let keep = attr_int(node, "keepdims", 1) != 0;
    let kept: Vec<usize> = (0..rank).filter(|a| !axes.contains(a)).collect();
    let st = strides(&shape);
    let outer: usize = kept.iter().map(|&a| shape[a]).product();
    let inner: usize = axes.iter().map(|&a| shape[a]).product();
    let coords = |flat: usize, dims: &[usize]| -> Vec<usize> {
        let mut c = vec![0; dims.len()];
        let mut f = flat;
        for i in (0..dims.len()).rev() {
            c[i] = f % shape[dims[i]];
            f /= shape[dims[i]];
        }
        c
    };
    let rows = (0..outer)
        .map(|o| {
            let oc = coords(o, &kept);
            (0..inner)
                .map(|i| {
                    let ic = coords(i, &axes);
                    kept.iter().zip(&oc).map(|(&a, &c)| c * st[a]).sum::<usize>()
                        + axes.iter().zip(&ic).map(|(&a, &c)| c * st[a]).sum::<usize>()
                })
                .collect()
        })
        .collect();
    let out_shape = (0..rank).filter_map(|a| if axes.contains(&a) { keep.then_some(1) } else { Some(shape[a]) }).collect();
    let weight = if mean { 1.0 / inner as f64 } else { 1.0 };
    weighted_rows(node, ctx, x, rows, weight, out_shape)
}

pub(super) fn import_reduce_sum(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    reduce(node, ctx, false)
}

pub(super) fn import_reduce_mean(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    reduce(node, ctx, true)
}

pub(super) fn import_div(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let (a, b) = (ctx.input(node, 0)?, ctx.input(node, 1)?);
    let mut c = match (a.clone(), b) {
        (Value::Act(x), Value::Act(y)) => return divide_activations(node, ctx, x, y),
        (Value::Const(_), Value::Act(_)) => return Err(unsupported(node, "a constant divided by an activation is not supported")),
        (_, Value::Const(c)) => c,
    };
    if c.data.contains(&0.0) {
        return Err(unsupported(node, "division by zero"));
    }
    match a {
        Value::Const(mut x) => {
            let shape = crate::ir::broadcast_shape(&x.shape, &c.shape).ok_or_else(|| unsupported(node, "shapes do not broadcast"))?;
            x = crate::ir::broadcast_const(&x, &shape);
            let cb = crate::ir::broadcast_const(&c, &shape);
            ctx.define_const(node, ConstTensor { shape, data: x.data.iter().zip(&cb.data).map(|(p, q)| p / q).collect() })
        }
        Value::Act(id) => {
            // x / c = x · (1/c): the reciprocal is a constant like any other multiplier.
            c.data.iter_mut().for_each(|v| *v = 1.0 / *v);
            let shape = crate::ir::broadcast_shape(ctx.shape(id), &c.shape).ok_or_else(|| unsupported(node, "shapes do not broadcast"))?;
            if shape.as_slice() != ctx.shape(id) {
                return Err(unsupported(node, "the divisor may not broaden the activation's shape"));
            }
            let b = Operand::Const(crate::ir::broadcast_const(&c, &shape));
            ctx.push(node, Op::Binary { kind: BinaryKind::Mul, a: Operand::Tensor(id), b }, shape).map(|_| ())
        }
    }
}

/// `a / b = a · (1/b)` with a reciprocal table on `b`'s calibrated (positive) range.
fn divide_activations(node: &NodeProto, ctx: &mut ImportCtx, a: TensorId, b: TensorId) -> Result<()> {
    let shape = ctx.shape(a).to_vec();
    let sb = ctx.shape(b).to_vec();
    let full = crate::ir::broadcast_shape(&shape, &sb)
        .filter(|s| *s == shape)
        .ok_or_else(|| unsupported(node, "the divisor must broadcast to the dividend's shape"))?;
    let recip = ctx.push_internal(
        node,
        "reciprocal",
        Op::Function { kind: crate::chips::function::FunctionKind::Reciprocal, input: b, bounds: (None, None) },
        sb.clone(),
    );
    let spread = if sb == full {
        recip
    } else {
        let index = crate::ir::broadcast_index(&sb, &full).into_iter().map(Some).collect();
        ctx.push_internal(node, "reciprocal_spread", Op::View { input: recip, index }, full.clone())
    };
    ctx.push(node, Op::Binary { kind: BinaryKind::Mul, a: Operand::Tensor(a), b: Operand::Tensor(spread) }, full).map(|_| ())
}

pub(super) fn import_pow(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let Value::Const(e) = ctx.input(node, 1)? else {
        return Err(unsupported(node, "the exponent must be a constant"));
    };
    let exp = match e.data.as_slice() {
        [v] if v.fract() == 0.0 && (1.0..=4.0).contains(v) => *v as usize,
        other => return Err(unsupported(node, format!("exponent {other:?}: only the integers 1 to 4 are supported"))),
    };
    match ctx.input(node, 0)? {
        Value::Const(mut c) => {
            c.data.iter_mut().for_each(|v| *v = v.powi(exp as i32));
            ctx.define_const(node, c)
        }
        Value::Act(x) => {
            let shape = ctx.shape(x).to_vec();
            let mut acc = x;
            for i in 1..exp {
                let op = Op::Binary { kind: BinaryKind::Mul, a: Operand::Tensor(acc), b: Operand::Tensor(x) };
                acc = if i + 1 == exp {
                    ctx.push(node, op, shape.clone())?
                } else {
                    ctx.push_internal(node, &format!("pow{}", i + 1), op, shape.clone())
                };
            }
            if exp == 1 {
                ctx.push(node, Op::View { input: x, index: (0..shape.iter().product()).map(Some).collect() }, shape)?;
            }
            Ok(())
        }
    }
}

/// MatMul of two activations `[.., M, K] · [.., K, N]` with equal leading dimensions.
pub(super) fn matmul_activations(node: &NodeProto, ctx: &mut ImportCtx, a: TensorId, b: TensorId) -> Result<()> {
    let (sa, sb) = (ctx.shape(a).to_vec(), ctx.shape(b).to_vec());
    if sa.len() < 2 || sa.len() != sb.len() || sa[..sa.len() - 2] != sb[..sb.len() - 2] || sa[sa.len() - 1] != sb[sb.len() - 2] {
        return Err(Error::ShapeMismatch { node: ImportCtx::node_name(node), lhs: sa, rhs: sb });
    }
    let r = sa.len();
    let (m, k, n) = (sa[r - 2], sa[r - 1], sb[r - 1]);
    let batch: usize = sa[..r - 2].iter().product();
    let (mut ia, mut ib) = (Vec::new(), Vec::new());
    for bt in 0..batch {
        for i in 0..m {
            for j in 0..n {
                for t in 0..k {
                    ia.push(Some(bt * m * k + i * k + t));
                    ib.push(Some(bt * k * n + t * n + j));
                }
            }
        }
    }
    let len = ia.len();
    let ga = ctx.push_internal(node, "lhs", Op::View { input: a, index: ia }, vec![len]);
    let gb = ctx.push_internal(node, "rhs", Op::View { input: b, index: ib }, vec![len]);
    // Exact products summed per output, then one rounding (not one per product).
    let sums = ctx.push_internal(
        node,
        "dot_pairs",
        Op::DotPairs { a: ga, b: gb, width: k, matmul: Some(crate::ir::MatMulDims { batch, m, k, n }) },
        vec![batch * m * n],
    );
    let mut out = sa[..r - 2].to_vec();
    out.extend([m, n]);
    ctx.push(node, Op::View { input: sums, index: (0..batch * m * n).map(Some).collect() }, out).map(|_| ())
}
