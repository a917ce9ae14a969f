//! Shape-only ops: Transpose, Squeeze, Unsqueeze (re-indexings) and Shape (a constant).

use candle_onnx::onnx::NodeProto;

use super::ops::{attr_ints, reshape_value, unsupported, value_shape};
use super::{ImportCtx, Value};
use crate::error::Result;
use crate::ir::{ConstTensor, Op};

/// Row-major strides of a shape.
pub(super) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

pub(super) fn import_transpose(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let v = ctx.input(node, 0)?;
    let shape = value_shape(ctx, &v);
    let rank = shape.len();
    let perm: Vec<usize> = match attr_ints(node, "perm") {
        Some(p) => p.iter().map(|&a| a as usize).collect(),
        None => (0..rank).rev().collect(),
    };
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&a| a >= rank || std::mem::replace(&mut seen[a], true)) {
        return Err(unsupported(node, format!("perm {perm:?} for rank {rank}")));
    }
    let out_shape: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
    let (in_strides, numel) = (strides(&shape), shape.iter().product::<usize>());
    let out_strides = strides(&out_shape);
    let source: Vec<usize> =
        (0..numel).map(|flat| (0..rank).map(|d| (flat / out_strides[d]) % out_shape[d] * in_strides[perm[d]]).sum()).collect();
    match v {
        Value::Const(c) => ctx.define_const(node, ConstTensor { shape: out_shape, data: source.iter().map(|&i| c.data[i]).collect() }),
        Value::Act(id) => ctx.push(node, Op::View { input: id, index: source.into_iter().map(Some).collect() }, out_shape).map(|_| ()),
    }
}

/// Axes from the second input (opset ≥ 13) or the `axes` attribute, as given.
fn raw_axes(node: &NodeProto, ctx: &ImportCtx) -> Result<Option<Vec<i64>>> {
    match ctx.optional_input(node, 1)? {
        Some(Value::Const(c)) => Ok(Some(c.data.iter().map(|&a| a as i64).collect())),
        Some(Value::Act(_)) => Err(unsupported(node, "axes must be a constant")),
        None => Ok(attr_ints(node, "axes")),
    }
}

/// Axes normalized to `0..rank`.
fn axes(node: &NodeProto, ctx: &ImportCtx, rank: usize) -> Result<Option<Vec<usize>>> {
    raw_axes(node, ctx)?
        .map(|r| {
            r.iter()
                .map(|&a| {
                    let a = if a < 0 { a + rank as i64 } else { a };
                    usize::try_from(a).ok().filter(|&a| a < rank).ok_or_else(|| unsupported(node, format!("axis {a} out of range")))
                })
                .collect()
        })
        .transpose()
}

pub(super) fn import_squeeze(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let v = ctx.input(node, 0)?;
    let shape = value_shape(ctx, &v);
    let drop = axes(node, ctx, shape.len())?.unwrap_or_else(|| (0..shape.len()).filter(|&a| shape[a] == 1).collect());
    if drop.iter().any(|&a| shape[a] != 1) {
        return Err(unsupported(node, format!("cannot squeeze axes {drop:?} of {shape:?}")));
    }
    let out = shape.iter().enumerate().filter(|(a, _)| !drop.contains(a)).map(|(_, &d)| d).collect();
    reshape_value(node, ctx, v, out)
}

pub(super) fn import_unsqueeze(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let v = ctx.input(node, 0)?;
    let shape = value_shape(ctx, &v);
    let rank = shape.len() + raw_axes(node, ctx)?.map_or(0, |a| a.len());
    let add = axes(node, ctx, rank)?.ok_or_else(|| unsupported(node, "no axes"))?;
    let mut out = Vec::with_capacity(rank);
    let mut dims = shape.iter();
    for a in 0..rank {
        out.push(if add.contains(&a) { 1 } else { *dims.next().ok_or_else(|| unsupported(node, "repeated axes"))? });
    }
    reshape_value(node, ctx, v, out)
}

pub(super) fn import_shape(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let v = ctx.input(node, 0)?;
    let shape = value_shape(ctx, &v);
    ctx.define_const(node, ConstTensor { shape: vec![shape.len()], data: shape.iter().map(|&d| d as f64).collect() })
}

pub(super) fn import_gather(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let data = ctx.input(node, 0)?;
    let Value::Const(indices) = ctx.input(node, 1)? else {
        return Err(unsupported(node, "indices must be a constant"));
    };
    let shape = value_shape(ctx, &data);
    let rank = shape.len() as i64;
    let axis = super::ops::attr_int(node, "axis", 0);
    let axis = usize::try_from(if axis < 0 { axis + rank } else { axis })
        .ok()
        .filter(|&a| a < shape.len())
        .ok_or_else(|| unsupported(node, "axis out of range"))?;
    let dim = shape[axis] as i64;
    let idx: Vec<usize> = indices
        .data
        .iter()
        .map(|&i| {
            let i = i as i64;
            let i = if i < 0 { i + dim } else { i };
            usize::try_from(i).ok().filter(|&i| i < shape[axis]).ok_or_else(|| unsupported(node, format!("index {i} out of range")))
        })
        .collect::<Result<_>>()?;
    let (outer, inner): (usize, usize) = (shape[..axis].iter().product(), shape[axis + 1..].iter().product());
    let mut source = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in &idx {
            source.extend((0..inner).map(|t| (o * shape[axis] + i) * inner + t));
        }
    }
    let out_shape: Vec<usize> = shape[..axis].iter().chain(&indices.shape).chain(&shape[axis + 1..]).copied().collect();
    match data {
        Value::Const(c) => ctx.define_const(node, ConstTensor { shape: out_shape, data: source.iter().map(|&i| c.data[i]).collect() }),
        Value::Act(id) => ctx.push(node, Op::View { input: id, index: source.into_iter().map(Some).collect() }, out_shape).map(|_| ()),
    }
}

pub(super) fn import_concat(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let mut parts = Vec::with_capacity(node.input.len());
    for i in 0..node.input.len() {
        match ctx.input(node, i)? {
            Value::Const(c) => parts.push(c),
            Value::Act(_) => return Err(unsupported(node, "Concat of activations is not supported yet (constants only)")),
        }
    }
    let first = parts.first().ok_or_else(|| unsupported(node, "no inputs"))?;
    let rank = first.shape.len() as i64;
    let axis = super::ops::attr_int(node, "axis", 0);
    let axis = usize::try_from(if axis < 0 { axis + rank } else { axis })
        .ok()
        .filter(|&a| a < first.shape.len())
        .ok_or_else(|| unsupported(node, "axis out of range"))?;
    let outer: usize = first.shape[..axis].iter().product();
    let mut shape = first.shape.clone();
    shape[axis] = parts.iter().map(|p| p.shape.get(axis).copied().unwrap_or(0)).sum();
    let mut data = Vec::new();
    for o in 0..outer {
        for p in &parts {
            let chunk = p.data.len() / outer.max(1);
            data.extend_from_slice(&p.data[o * chunk..(o + 1) * chunk]);
        }
    }
    ctx.define_const(node, ConstTensor { shape, data })
}

pub(super) fn import_cast(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    const FLOAT: i64 = 1;
    const DOUBLE: i64 = 11;
    let to = super::ops::attr_int(node, "to", FLOAT);
    match ctx.input(node, 0)? {
        Value::Const(mut c) => {
            // Integer targets truncate toward zero, as ONNX does for float → int.
            if to != FLOAT && to != DOUBLE {
                c.data.iter_mut().for_each(|v| *v = v.trunc());
            }
            ctx.define_const(node, c)
        }
        Value::Act(id) if to == FLOAT => {
            let shape = ctx.shape(id).to_vec();
            let index = (0..shape.iter().product()).map(Some).collect();
            ctx.push(node, Op::View { input: id, index }, shape).map(|_| ())
        }
        Value::Act(_) => Err(unsupported(node, format!("Cast of an activation to type {to}"))),
    }
}
