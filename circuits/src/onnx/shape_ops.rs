//! Shape-only ops: Transpose, Squeeze, Unsqueeze, Slice, Split, Expand, Gather (re-indexings),
//! Concat, and Shape, ConstantOfShape, Cast (folded constants).

use candle_onnx::onnx::NodeProto;

use super::ops::{attr_int, attr_ints, reshape_value, unsupported, value_shape};
use super::{ImportCtx, Value};
use crate::error::Result;
use crate::ir::{BinaryKind, ConstTensor, Op, Operand};

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
    let indices = match (ctx.input(node, 1)?, data.clone()) {
        (Value::Const(indices), _) => indices,
        (Value::Act(ids), Value::Const(table)) => return gather_by_activation(node, ctx, &table, ids),
        (Value::Act(_), Value::Act(_)) => {
            return Err(unsupported(node, "indices that are an activation need constant data (an embedding table)"))
        }
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

/// `table[ids]` along axis 0, with `ids` an activation holding token ids. The ids are first
/// looked up in the table `0..rows` (which holds only valid ids, so an id out of range has no
/// witness), then `key = id + c·rows` for each column `c` (a Linear with weight 1 and bias
/// `c·rows`) indexes one table holding the columns one after another.
fn gather_by_activation(node: &NodeProto, ctx: &mut ImportCtx, table: &ConstTensor, ids: usize) -> Result<()> {
    let rank = table.shape.len() as i64;
    let axis = attr_int(node, "axis", 0);
    if axis != 0 && axis != -rank {
        return Err(unsupported(node, "indices that are an activation gather along axis 0 only"));
    }
    let Some((&rows, rest)) = table.shape.split_first() else {
        return Err(unsupported(node, "a scalar table"));
    };
    let width: usize = rest.iter().product();
    let n: usize = ctx.shape(ids).iter().product();
    let out_shape: Vec<usize> = ctx.shape(ids).iter().chain(rest).copied().collect();
    super::too_large(node, &out_shape)?;
    if rows == 0 || width == 0 {
        return Err(unsupported(node, "an empty table"));
    }
    let valid = ctx.push_internal(node, "ids", Op::Table { input: ids, values: (0..rows).map(|r| r as f64).collect() }, vec![n, 1]);
    let weight = ConstTensor { shape: vec![1, width], data: vec![1.0; width] };
    let bias = ConstTensor { shape: vec![n, width], data: (0..n * width).map(|k| ((k % width) * rows) as f64).collect() };
    let key = ctx.push_internal(node, "keys", Op::Linear { input: valid, weight, bias: Some(bias) }, vec![n, width]);
    let values = (0..width * rows).map(|k| table.data[(k % rows) * width + k / rows]).collect();
    ctx.push(node, Op::Table { input: key, values }, out_shape).map(|_| ())
}

/// For each output position of a concatenation, which input and which of its elements.
/// A concatenation's output shape, and each input's (offset, length) along the axis.
type ConcatLayout = (Vec<usize>, Vec<(usize, usize)>);

fn concat_layout(node: &NodeProto, shapes: &[Vec<usize>]) -> Result<ConcatLayout> {
    let first = shapes.first().ok_or_else(|| unsupported(node, "no inputs"))?;
    let rank = first.len() as i64;
    let axis = super::ops::attr_int(node, "axis", 0);
    let axis = usize::try_from(if axis < 0 { axis + rank } else { axis })
        .ok()
        .filter(|&a| a < first.len())
        .ok_or_else(|| unsupported(node, "axis out of range"))?;
    let same_rest = |s: &Vec<usize>| s.len() == first.len() && (0..s.len()).all(|d| d == axis || s[d] == first[d]);
    if !shapes.iter().all(same_rest) {
        return Err(unsupported(node, format!("inputs {shapes:?} differ outside axis {axis}")));
    }
    let outer: usize = first[..axis].iter().product();
    let mut shape = first.clone();
    shape[axis] = shapes.iter().map(|s| s[axis]).sum();
    let mut layout = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for (p, s) in shapes.iter().enumerate() {
            let chunk: usize = s[axis..].iter().product();
            layout.extend((0..chunk).map(|t| (p, o * chunk + t)));
        }
    }
    Ok((shape, layout))
}

/// Concat: constants fold; activations are placed by zero-padded re-indexings that are
/// then added (exact: the supports are disjoint, no rounding), constants added last.
pub(super) fn import_concat(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let values: Vec<Value> = (0..node.input.len()).map(|i| ctx.input(node, i)).collect::<Result<_>>()?;
    let shapes: Vec<Vec<usize>> = values.iter().map(|v| value_shape(ctx, v)).collect();
    let (shape, layout) = concat_layout(node, &shapes)?;
    // The constant inputs in place, zero where an activation goes.
    let konst = || -> Vec<f64> { layout.iter().map(|&(p, i)| if let Value::Const(c) = &values[p] { c.data[i] } else { 0.0 }).collect() };
    let acts: Vec<(usize, crate::ir::TensorId)> =
        values.iter().enumerate().filter_map(|(p, v)| if let Value::Act(id) = v { Some((p, *id)) } else { None }).collect();
    if acts.is_empty() {
        return ctx.define_const(node, ConstTensor { shape, data: konst() });
    }
    let has_const = acts.len() < values.len();
    let mut acc: Option<crate::ir::TensorId> = None;
    for (k, &(p, id)) in acts.iter().enumerate() {
        let index = layout.iter().map(|&(q, i)| (q == p).then_some(i)).collect();
        let last = k + 1 == acts.len() && !has_const;
        let placed = if last && acc.is_none() {
            return ctx.push(node, Op::View { input: id, index }, shape).map(|_| ());
        } else {
            ctx.push_internal(node, &format!("place{p}"), Op::View { input: id, index }, shape.clone())
        };
        acc = Some(match acc {
            None => placed,
            Some(a) => {
                let op = Op::Binary { kind: BinaryKind::Add, a: Operand::Tensor(a), b: Operand::Tensor(placed) };
                if last {
                    return ctx.push(node, op, shape).map(|_| ());
                }
                ctx.push_internal(node, &format!("join{p}"), op, shape.clone())
            }
        });
    }
    let a = acc.ok_or_else(|| unsupported(node, "no inputs"))?;
    let c = ConstTensor { shape: shape.clone(), data: konst() };
    ctx.push(node, Op::Binary { kind: BinaryKind::Add, a: Operand::Tensor(a), b: Operand::Const(c) }, shape).map(|_| ())
}

/// A constant input as integers, or `None` when the input is absent.
fn const_ints(node: &NodeProto, ctx: &ImportCtx, i: usize, what: &str) -> Result<Option<Vec<i64>>> {
    match ctx.optional_input(node, i)? {
        None => Ok(None),
        Some(Value::Const(c)) => Ok(Some(c.data.iter().map(|&x| x as i64).collect())),
        Some(Value::Act(_)) => Err(unsupported(node, format!("{what} must be a constant"))),
    }
}

/// The indices one Slice axis keeps, ONNX's clamping rules included.
fn slice_axis(node: &NodeProto, dim: usize, start: i64, end: i64, step: i64) -> Result<Vec<usize>> {
    let d = dim as i64;
    let wrap = |x: i64| if x < 0 { x + d } else { x };
    let (s, e) = (wrap(start), wrap(end));
    Ok(match step {
        0 => return Err(unsupported(node, "step 0")),
        st if st > 0 => (s.clamp(0, d)..e.clamp(0, d)).step_by(st as usize).map(|i| i as usize).collect(),
        st => {
            let (mut i, e) = (s.clamp(-1, d - 1), e.clamp(-1, d - 1));
            let mut out = Vec::new();
            while i > e {
                out.push(i as usize);
                i += st;
            }
            out
        }
    })
}

pub(super) fn import_slice(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let v = ctx.input(node, 0)?;
    let shape = value_shape(ctx, &v);
    let from = |i: usize, name: &str| -> Result<Option<Vec<i64>>> { Ok(const_ints(node, ctx, i, name)?.or_else(|| attr_ints(node, name))) };
    let starts = from(1, "starts")?.ok_or_else(|| unsupported(node, "no starts"))?;
    let ends = from(2, "ends")?.ok_or_else(|| unsupported(node, "no ends"))?;
    let axes = from(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = const_ints(node, ctx, 4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
    if [ends.len(), axes.len(), steps.len()].iter().any(|&n| n != starts.len()) {
        return Err(unsupported(node, "starts, ends, axes and steps differ in length"));
    }
    let mut keep: Vec<Vec<usize>> = shape.iter().map(|&d| (0..d).collect()).collect();
    for (((&a, &s), &e), &st) in axes.iter().zip(&starts).zip(&ends).zip(&steps) {
        let a = if a < 0 { a + shape.len() as i64 } else { a };
        let a = usize::try_from(a).ok().filter(|&a| a < shape.len()).ok_or_else(|| unsupported(node, format!("axis {a} out of range")))?;
        keep[a] = slice_axis(node, shape[a], s, e, st)?;
    }
    let st = strides(&shape);
    let mut source = vec![0usize];
    for (d, idx) in keep.iter().enumerate() {
        let stride = st[d];
        source = source.iter().flat_map(|&b| idx.iter().map(move |&i| b + i * stride)).collect();
    }
    let out_shape: Vec<usize> = keep.iter().map(Vec::len).collect();
    match v {
        Value::Const(c) => ctx.define_const(node, ConstTensor { shape: out_shape, data: source.iter().map(|&i| c.data[i]).collect() }),
        Value::Act(id) => ctx.push(node, Op::View { input: id, index: source.into_iter().map(Some).collect() }, out_shape).map(|_| ()),
    }
}

pub(super) fn import_constant_of_shape(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let shape = const_ints(node, ctx, 0, "the shape")?.ok_or_else(|| unsupported(node, "no shape"))?;
    let shape: Vec<usize> =
        shape.iter().map(|&d| usize::try_from(d).map_err(|_| unsupported(node, format!("dimension {d}")))).collect::<Result<_>>()?;
    let value = match node.attribute.iter().find(|a| a.name == "value").and_then(|a| a.t.as_ref()) {
        Some(t) => *super::ops::const_from_proto(t)?.data.first().ok_or_else(|| unsupported(node, "empty value"))?,
        None => 0.0,
    };
    let numel = super::too_large(node, &shape)?;
    ctx.define_const(node, ConstTensor { data: vec![value; numel], shape })
}

pub(super) fn import_cast(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    const FLOAT: i64 = 1;
    const DOUBLE: i64 = 11;
    let to = super::ops::attr_int(node, "to", FLOAT);
    match ctx.input(node, 0)? {
        Value::Const(mut c) => {
            // BOOL is nonzero-ness; integer targets truncate toward zero, as ONNX does.
            const BOOL: i64 = 9;
            if to == BOOL {
                c.data.iter_mut().for_each(|v| *v = f64::from(u8::from(*v != 0.0)));
            } else if to != FLOAT && to != DOUBLE {
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

/// The axis attribute, normalised against `rank`.
fn axis_attr(node: &NodeProto, rank: usize, default: i64) -> Result<usize> {
    let axis = attr_int(node, "axis", default);
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(a).ok().filter(|&a| a < rank).ok_or_else(|| unsupported(node, format!("axis {axis} out of range for rank {rank}")))
}

/// Split along an axis into the given sizes (the `split` input, the opset-11 attribute, or
/// equal parts: `num_outputs` or one per output, the last one smaller when uneven).
pub(super) fn import_split(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let data = ctx.input(node, 0)?;
    let shape = value_shape(ctx, &data);
    let axis = axis_attr(node, shape.len(), 0)?;
    let dim = shape[axis];
    let parts = usize::try_from(attr_int(node, "num_outputs", node.output.len() as i64)).unwrap_or(0);
    let sizes: Vec<usize> = match const_ints(node, ctx, 1, "split")?.or_else(|| attr_ints(node, "split")) {
        Some(s) => {
            s.iter().map(|&v| usize::try_from(v).map_err(|_| unsupported(node, format!("split size {v}")))).collect::<Result<_>>()?
        }
        None if parts == 0 => return Err(unsupported(node, "no outputs")),
        None => {
            let chunk = dim.div_ceil(parts);
            (0..parts).map(|i| chunk.min(dim.saturating_sub(i * chunk))).collect()
        }
    };
    if sizes.iter().sum::<usize>() != dim || sizes.len() != node.output.len() || sizes.contains(&0) {
        return Err(unsupported(node, format!("split sizes {sizes:?} into {} outputs of an axis of {dim}", node.output.len())));
    }
    let (outer, inner): (usize, usize) = (shape[..axis].iter().product(), shape[axis + 1..].iter().product());
    let mut start = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let mut out_shape = shape.clone();
        out_shape[axis] = size;
        let index: Vec<usize> =
            (0..outer).flat_map(|o| (start..start + size).flat_map(move |a| (0..inner).map(move |t| (o * dim + a) * inner + t))).collect();
        let value = match &data {
            Value::Const(c) => Err(ConstTensor { shape: out_shape.clone(), data: index.iter().map(|&j| c.data[j]).collect() }),
            Value::Act(id) => Ok(Op::View { input: *id, index: index.into_iter().map(Some).collect() }),
        };
        ctx.define_output(node, i, value, out_shape)?;
        start += size;
    }
    Ok(())
}

/// Expand: numpy broadcasting of the input against a constant shape.
pub(super) fn import_expand(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let data = ctx.input(node, 0)?;
    let target = const_ints(node, ctx, 1, "shape")?.ok_or_else(|| unsupported(node, "missing shape"))?;
    let target: Vec<usize> =
        target.iter().map(|&d| usize::try_from(d).map_err(|_| unsupported(node, format!("dimension {d}")))).collect::<Result<_>>()?;
    let shape = value_shape(ctx, &data);
    let out_shape = crate::ir::broadcast_shape(&shape, &target)
        .ok_or_else(|| unsupported(node, format!("shape {shape:?} does not expand to {target:?} (or the result is too large)")))?;
    match data {
        Value::Const(c) => ctx.define_const(node, crate::ir::broadcast_const(&c, &out_shape)),
        Value::Act(id) => {
            let index = crate::ir::broadcast_index(&shape, &out_shape).into_iter().map(Some).collect();
            ctx.push(node, Op::View { input: id, index }, out_shape).map(|_| ())
        }
    }
}
