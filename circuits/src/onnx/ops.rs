//! One import function per supported ONNX op.

use candle_core::DType;
use candle_onnx::onnx::{attribute_proto::AttributeType, NodeProto, TensorProto};

use super::{mask, nonlinear, normalize, reduce, shape_ops, vision, ImportCtx, ImportFn, Value};
use crate::error::{Error, Result};
use crate::ir::{broadcast_const, broadcast_index, broadcast_shape, transpose2, BinaryKind, ConstTensor, Op, Operand};

/// ONNX op type → import function.
pub(super) static REGISTRY: &[(&str, ImportFn)] = &[
    ("Add", import_add),
    ("AveragePool", vision::import_average_pool),
    ("BatchNormalization", vision::import_batch_norm),
    ("Cast", shape_ops::import_cast),
    ("Concat", shape_ops::import_concat),
    ("Constant", import_constant),
    ("ConstantOfShape", shape_ops::import_constant_of_shape),
    ("Conv", vision::import_conv),
    ("Div", reduce::import_div),
    ("Erf", nonlinear::import_erf),
    ("Exp", nonlinear::import_exp),
    ("Expand", shape_ops::import_expand),
    ("Flatten", import_flatten),
    ("Gather", shape_ops::import_gather),
    ("Gelu", nonlinear::import_gelu),
    ("Gemm", import_gemm),
    ("GlobalAveragePool", vision::import_global_average_pool),
    ("Identity", import_identity),
    ("LayerNormalization", normalize::import_layer_norm),
    ("MatMul", import_matmul),
    ("MaxPool", vision::import_max_pool),
    ("Mul", import_mul),
    ("Pow", reduce::import_pow),
    ("ReduceMean", reduce::import_reduce_mean),
    ("ReduceSum", reduce::import_reduce_sum),
    ("Relu", import_relu),
    ("Reshape", import_reshape),
    ("Shape", shape_ops::import_shape),
    ("Sigmoid", nonlinear::import_sigmoid),
    ("Slice", shape_ops::import_slice),
    ("Softmax", normalize::import_softmax),
    ("Split", shape_ops::import_split),
    ("Sqrt", nonlinear::import_sqrt),
    ("Squeeze", shape_ops::import_squeeze),
    ("Sub", import_sub),
    ("Tanh", nonlinear::import_tanh),
    ("Transpose", shape_ops::import_transpose),
    ("Trilu", mask::import_trilu),
    ("Unsqueeze", shape_ops::import_unsqueeze),
    ("Where", mask::import_where),
];

pub(super) fn unsupported(node: &NodeProto, reason: impl Into<String>) -> Error {
    Error::UnsupportedNode { op_type: node.op_type.clone(), node: ImportCtx::node_name(node), reason: reason.into() }
}

/// Converts an ONNX tensor (any numeric type) to f64 values.
pub(super) fn const_from_proto(t: &TensorProto) -> Result<ConstTensor> {
    let malformed = |why: String| Error::MalformedOnnx { reason: format!("tensor `{}`: {why}", t.name) };
    let shape: Vec<usize> =
        t.dims.iter().map(|&d| usize::try_from(d).map_err(|_| malformed(format!("negative dim {d}")))).collect::<Result<_>>()?;
    let numel = crate::ir::checked_numel(&shape)
        .ok_or_else(|| malformed(format!("shape {shape:?} has more than {} values", crate::ir::MAX_TENSOR_VALUES)))?;
    // BOOL (a mask), one byte per value or one int32 each; candle reads it as bytes only.
    if t.data_type == 9 {
        let data: Vec<f64> = if t.raw_data.is_empty() {
            t.int32_data.iter().map(|&v| f64::from(u8::from(v != 0))).collect()
        } else {
            t.raw_data.iter().map(|&v| f64::from(u8::from(v != 0))).collect()
        };
        if data.len() != numel {
            return Err(malformed(format!("{} values for shape {shape:?}", data.len())));
        }
        return Ok(ConstTensor { shape, data });
    }
    if !t.raw_data.is_empty() {
        let width = match t.data_type {
            1 | 6 => 4,  // FLOAT, INT32
            7 | 11 => 8, // INT64, DOUBLE
            other => return Err(malformed(format!("unsupported data type {other}"))),
        };
        if t.raw_data.len() != numel * width {
            return Err(malformed(format!("raw data has {} bytes, shape needs {}", t.raw_data.len(), numel * width)));
        }
    }
    let tensor = candle_onnx::eval::get_tensor(t, &t.name).map_err(|e| malformed(e.to_string()))?;
    let data =
        tensor.to_dtype(DType::F64).and_then(|x| x.flatten_all()).and_then(|x| x.to_vec1::<f64>()).map_err(|e| malformed(e.to_string()))?;
    if data.len() != numel {
        return Err(malformed(format!("{} values for shape {shape:?}", data.len())));
    }
    Ok(ConstTensor { shape, data })
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a candle_onnx::onnx::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

pub(super) fn attr_int(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

pub(super) fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

pub(super) fn attr_str(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

pub(super) fn attr_float(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

fn import_constant(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let a = node.attribute.first().ok_or_else(|| unsupported(node, "Constant without a value attribute"))?;
    let c = match (a.name.as_str(), AttributeType::try_from(a.r#type)) {
        ("value", _) => const_from_proto(a.t.as_ref().ok_or_else(|| unsupported(node, "value attribute has no tensor"))?)?,
        ("value_float", _) => ConstTensor { shape: vec![], data: vec![f64::from(a.f)] },
        ("value_int", _) => ConstTensor { shape: vec![], data: vec![a.i as f64] },
        ("value_floats", _) => ConstTensor { shape: vec![a.floats.len()], data: a.floats.iter().map(|&v| f64::from(v)).collect() },
        ("value_ints", _) => ConstTensor { shape: vec![a.ints.len()], data: a.ints.iter().map(|&v| v as f64).collect() },
        (other, _) => return Err(unsupported(node, format!("Constant attribute `{other}`"))),
    };
    ctx.define_const(node, c)
}

fn import_identity(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    match ctx.input(node, 0)? {
        Value::Const(c) => ctx.define_const(node, c),
        Value::Act(id) => {
            let shape = ctx.shape(id).to_vec();
            let index = (0..shape.iter().product()).map(Some).collect();
            ctx.push(node, Op::View { input: id, index }, shape).map(|_| ())
        }
    }
}

/// Reshapes an activation or constant to `shape` (row-major order is kept).
pub(super) fn reshape_value(node: &NodeProto, ctx: &mut ImportCtx, v: Value, shape: Vec<usize>) -> Result<()> {
    match v {
        Value::Const(c) => ctx.define_const(node, ConstTensor { shape, data: c.data }),
        Value::Act(id) => {
            let index = (0..shape.iter().product()).map(Some).collect();
            ctx.push(node, Op::View { input: id, index }, shape).map(|_| ())
        }
    }
}

pub(super) fn value_shape(ctx: &ImportCtx, v: &Value) -> Vec<usize> {
    match v {
        Value::Act(id) => ctx.shape(*id).to_vec(),
        Value::Const(c) => c.shape.clone(),
    }
}

fn import_reshape(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let data = ctx.input(node, 0)?;
    let Value::Const(target) = ctx.input(node, 1)? else {
        return Err(unsupported(node, "the target shape must be a constant"));
    };
    let in_shape = value_shape(ctx, &data);
    let numel: usize = in_shape.iter().product();
    let allow_zero = attr_int(node, "allowzero", 0) != 0;
    let mut shape = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.data.iter().enumerate() {
        let d = d as i64;
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                shape.push(1);
            }
            0 if !allow_zero => shape.push(*in_shape.get(i).ok_or_else(|| unsupported(node, "0 in shape beyond input rank"))?),
            d if d > 0 => shape.push(d as usize),
            _ => return Err(unsupported(node, format!("invalid target shape {:?}", target.data))),
        }
    }
    super::too_large(node, &shape)?;
    if let Some(i) = infer {
        let known: usize = shape.iter().product();
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(Error::ShapeMismatch { node: ImportCtx::node_name(node), lhs: in_shape, rhs: shape });
        }
        shape[i] = numel / known;
    }
    if shape.iter().product::<usize>() != numel {
        return Err(Error::ShapeMismatch { node: ImportCtx::node_name(node), lhs: in_shape, rhs: shape });
    }
    reshape_value(node, ctx, data, shape)
}

fn import_flatten(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let data = ctx.input(node, 0)?;
    let in_shape = value_shape(ctx, &data);
    let rank = in_shape.len() as i64;
    let mut axis = attr_int(node, "axis", 1);
    if axis < 0 {
        axis += rank;
    }
    if !(0..=rank).contains(&axis) {
        return Err(unsupported(node, format!("axis {axis} out of range for rank {rank}")));
    }
    let (outer, inner) = in_shape.split_at(axis as usize);
    reshape_value(node, ctx, data, vec![outer.iter().product(), inner.iter().product()])
}

fn import_relu(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    match ctx.input(node, 0)? {
        Value::Const(mut c) => {
            c.data.iter_mut().for_each(|v| *v = v.max(0.0));
            ctx.define_const(node, c)
        }
        Value::Act(id) => {
            let shape = ctx.shape(id).to_vec();
            ctx.push(node, Op::Relu { input: id }, shape).map(|_| ())
        }
    }
}

fn import_binary(node: &NodeProto, ctx: &mut ImportCtx, kind: BinaryKind) -> Result<()> {
    let (a, b) = (ctx.input(node, 0)?, ctx.input(node, 1)?);
    let (sa, sb) = (value_shape(ctx, &a), value_shape(ctx, &b));
    let shape = broadcast_shape(&sa, &sb).ok_or_else(|| Error::ShapeMismatch {
        node: ImportCtx::node_name(node),
        lhs: sa.clone(),
        rhs: sb.clone(),
    })?;
    let mut operand = |v: Value, src: &[usize], tag: &str| -> Operand {
        match v {
            Value::Const(c) => Operand::Const(broadcast_const(&c, &shape)),
            Value::Act(id) if src == shape.as_slice() => Operand::Tensor(id),
            Value::Act(id) => {
                let index = broadcast_index(src, &shape).into_iter().map(Some).collect();
                Operand::Tensor(ctx.push_internal(node, tag, Op::View { input: id, index }, shape.clone()))
            }
        }
    };
    let (oa, ob) = (operand(a, &sa, "broadcast_a"), operand(b, &sb, "broadcast_b"));
    if let (Operand::Const(ca), Operand::Const(cb)) = (&oa, &ob) {
        let data = ca.data.iter().zip(&cb.data).map(|(&x, &y)| kind.apply(x, y)).collect();
        return ctx.define_const(node, ConstTensor { shape, data });
    }
    ctx.push(node, Op::Binary { kind, a: oa, b: ob }, shape).map(|_| ())
}

fn import_add(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    import_binary(node, ctx, BinaryKind::Add)
}

fn import_sub(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    import_binary(node, ctx, BinaryKind::Sub)
}

fn import_mul(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    import_binary(node, ctx, BinaryKind::Mul)
}

/// Folds `a · b` for rank-2 constants.
fn const_matmul(a: &ConstTensor, b: &ConstTensor) -> ConstTensor {
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1]);
    let mut data = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            data[i * n + j] = (0..k).map(|t| a.data[i * k + t] * b.data[t * n + j]).sum();
        }
    }
    ConstTensor { shape: vec![m, n], data }
}

fn import_gemm(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let (alpha, beta) = (f64::from(attr_float(node, "alpha", 1.0)), f64::from(attr_float(node, "beta", 1.0)));
    let (trans_a, trans_b) = (attr_int(node, "transA", 0) != 0, attr_int(node, "transB", 0) != 0);
    let a = ctx.input(node, 0)?;
    let Value::Const(b) = ctx.input(node, 1)? else {
        return Err(unsupported(node, "B must be a constant (activation × activation Gemm is not supported yet)"));
    };
    if b.shape.len() != 2 || value_shape(ctx, &a).len() != 2 {
        return Err(unsupported(node, "Gemm operands must be rank 2"));
    }
    let mut weight = if trans_b { transpose2(&b) } else { b };
    weight.data.iter_mut().for_each(|w| *w *= alpha);
    let c = ctx.optional_input(node, 2)?;
    let (m, n) = {
        let sa = value_shape(ctx, &a);
        (if trans_a { sa[1] } else { sa[0] }, weight.shape[1])
    };
    let k_a = {
        let sa = value_shape(ctx, &a);
        if trans_a {
            sa[0]
        } else {
            sa[1]
        }
    };
    if k_a != weight.shape[0] {
        return Err(Error::ShapeMismatch { node: ImportCtx::node_name(node), lhs: value_shape(ctx, &a), rhs: weight.shape.clone() });
    }
    let bias = match &c {
        None => None,
        Some(Value::Const(c)) => {
            let s = broadcast_shape(&c.shape, &[m, n]).filter(|s| s == &[m, n]).ok_or_else(|| Error::ShapeMismatch {
                node: ImportCtx::node_name(node),
                lhs: c.shape.clone(),
                rhs: vec![m, n],
            })?;
            let mut bc = broadcast_const(c, &s);
            bc.data.iter_mut().for_each(|v| *v *= beta);
            Some(bc)
        }
        Some(Value::Act(_)) => return Err(unsupported(node, "C must be a constant")),
    };
    let input = match a {
        Value::Const(a) => {
            let a = if trans_a { transpose2(&a) } else { a };
            let mut out = const_matmul(&a, &weight);
            if let Some(bias) = &bias {
                out.data.iter_mut().zip(&bias.data).for_each(|(o, b)| *o += b);
            }
            return ctx.define_const(node, out);
        }
        Value::Act(id) if trans_a => {
            let t = transpose2(&ConstTensor { shape: vec![k_a, m], data: (0..k_a * m).map(|i| i as f64).collect() });
            let index = t.data.iter().map(|&i| Some(i as usize)).collect();
            ctx.push_internal(node, "transA", Op::View { input: id, index }, vec![m, k_a])
        }
        Value::Act(id) => id,
    };
    ctx.push(node, Op::Linear { input, weight, bias }, vec![m, n]).map(|_| ())
}

fn import_matmul(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let (a, b) = (ctx.input(node, 0)?, ctx.input(node, 1)?);
    let b = match (&a, b) {
        (Value::Act(x), Value::Act(y)) => return reduce::matmul_activations(node, ctx, *x, y),
        (_, Value::Act(_)) => return Err(unsupported(node, "constant × activation MatMul is not supported")),
        (_, Value::Const(b)) => b,
    };
    let Value::Act(id) = a else {
        if let Value::Const(a) = a {
            if a.shape.len() == 2 && b.shape.len() == 2 {
                return ctx.define_const(node, const_matmul(&a, &b));
            }
        }
        return Err(unsupported(node, "constant × activation MatMul is not supported"));
    };
    let sa = ctx.shape(id).to_vec();
    let (weight, drop_last) = match b.shape.len() {
        1 => (ConstTensor { shape: vec![b.shape[0], 1], data: b.data }, true),
        2 => (b, false),
        _ => return Err(unsupported(node, "batched constant operands are not supported")),
    };
    let k = *sa.last().ok_or_else(|| unsupported(node, "rank-0 operand"))?;
    if k != weight.shape[0] {
        return Err(Error::ShapeMismatch { node: ImportCtx::node_name(node), lhs: sa, rhs: weight.shape });
    }
    let mut shape = sa.clone();
    if sa.len() == 1 {
        shape.clear();
    } else {
        shape.pop();
    }
    if !drop_last {
        shape.push(weight.shape[1]);
    }
    ctx.push(node, Op::Linear { input: id, weight, bias: None }, shape).map(|_| ())
}
