//! Vision ops, lowered onto the existing chips: Conv as im2col + dot products, pooling as
//! window gathers with dot products (average) or a ReLU tree (max: `max(a, b) = relu(a − b) + b`),
//! BatchNormalization as a per-channel affine map.

use candle_onnx::onnx::NodeProto;

use super::ops::{attr_int, attr_ints, unsupported};
use super::{ImportCtx, Value};
use crate::error::Result;
use crate::ir::{broadcast_const, BinaryKind, ConstTensor, Op, Operand, TensorId};

/// 2-D window geometry of a conv or pool over an input `[1, C, H, W]`.
struct Window {
    c: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    pads: [usize; 4],
    out: [usize; 2],
}

impl Window {
    fn new(node: &NodeProto, shape: &[usize], kernel: [usize; 2], allow_pads: bool) -> Result<Self> {
        let [n, c, h, w] =
            <[usize; 4]>::try_from(shape).map_err(|_| unsupported(node, format!("input must be [N, C, H, W], got {shape:?}")))?;
        if n != 1 {
            return Err(unsupported(node, "batch must be 1"));
        }
        let pair = |name: &str, default: usize| -> Result<[usize; 2]> {
            match attr_ints(node, name) {
                None => Ok([default; 2]),
                Some(v) if v.len() == 2 && v.iter().all(|&x| x > 0) => Ok([v[0] as usize, v[1] as usize]),
                Some(v) => Err(unsupported(node, format!("{name} = {v:?}"))),
            }
        };
        let (stride, dilation) = (pair("strides", 1)?, pair("dilations", 1)?);
        let pads = match attr_ints(node, "pads") {
            None => [0; 4],
            Some(v) if v.len() == 4 && v.iter().all(|&x| x >= 0) => [v[0] as usize, v[1] as usize, v[2] as usize, v[3] as usize],
            Some(v) => return Err(unsupported(node, format!("pads = {v:?}"))),
        };
        if !allow_pads && pads != [0; 4] {
            return Err(unsupported(node, "padding is not supported for this op"));
        }
        if let Some(a) = super::ops::attr_str(node, "auto_pad") {
            if a != "NOTSET" && !a.is_empty() {
                return Err(unsupported(node, format!("auto_pad = {a}")));
            }
        }
        if attr_int(node, "ceil_mode", 0) != 0 {
            return Err(unsupported(node, "ceil_mode = 1"));
        }
        let span = |i: usize| dilation[i] * (kernel[i] - 1) + 1;
        let (ph, pw) = (h + pads[0] + pads[2], w + pads[1] + pads[3]);
        if span(0) > ph || span(1) > pw {
            return Err(unsupported(node, "kernel larger than the padded input"));
        }
        let out = [(ph - span(0)) / stride[0] + 1, (pw - span(1)) / stride[1] + 1];
        Ok(Window { c, h, w, k: kernel, stride, dilation, pads, out })
    }

    /// Input index of window element `(i, j)` of output `(oy, ox)` in channel `c`, or `None` in the padding.
    fn at(&self, c: usize, oy: usize, ox: usize, i: usize, j: usize) -> Option<usize> {
        let y = (oy * self.stride[0] + i * self.dilation[0]).checked_sub(self.pads[0])?;
        let x = (ox * self.stride[1] + j * self.dilation[1]).checked_sub(self.pads[1])?;
        (y < self.h && x < self.w).then_some(c * self.h * self.w + y * self.w + x)
    }

    fn positions(&self) -> usize {
        self.out[0] * self.out[1]
    }
}

fn act(node: &NodeProto, ctx: &ImportCtx, i: usize) -> Result<TensorId> {
    match ctx.input(node, i)? {
        Value::Act(id) => Ok(id),
        Value::Const(_) => Err(unsupported(node, format!("input {i} must depend on the model input"))),
    }
}

fn konst(node: &NodeProto, ctx: &ImportCtx, i: usize, what: &str) -> Result<ConstTensor> {
    match ctx.input(node, i)? {
        Value::Const(c) => Ok(c),
        Value::Act(_) => Err(unsupported(node, format!("{what} must be a constant"))),
    }
}

pub(super) fn import_conv(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let x = act(node, ctx, 0)?;
    let weight = konst(node, ctx, 1, "the weight")?;
    if attr_int(node, "group", 1) != 1 {
        return Err(unsupported(node, "group != 1"));
    }
    let [m, cg, kh, kw] =
        <[usize; 4]>::try_from(weight.shape.as_slice()).map_err(|_| unsupported(node, "weight must be [M, C, kH, kW]"))?;
    let win = Window::new(node, ctx.shape(x), [kh, kw], true)?;
    if cg != win.c {
        return Err(unsupported(node, format!("weight has {cg} input channels, the input {}", win.c)));
    }
    let (p, k) = (win.positions(), win.c * kh * kw);
    // im2col: one row per output position, one column per (channel, kernel row, kernel column).
    let mut index = Vec::with_capacity(p * k);
    for oy in 0..win.out[0] {
        for ox in 0..win.out[1] {
            for c in 0..win.c {
                for i in 0..kh {
                    for j in 0..kw {
                        index.push(win.at(c, oy, ox, i, j));
                    }
                }
            }
        }
    }
    let cols = ctx.push_internal(node, "im2col", Op::View { input: x, index }, vec![p, k]);
    // Weight [M, K] → [K, M].
    let mut w = vec![0.0; k * m];
    for o in 0..m {
        for t in 0..k {
            w[t * m + o] = weight.data[o * k + t];
        }
    }
    let bias = match ctx.optional_input(node, 2)? {
        None => None,
        Some(Value::Const(b)) if b.len() == m => Some(broadcast_const(&b, &[p, m])),
        Some(_) => return Err(unsupported(node, "the bias must be a constant of length M")),
    };
    let lin =
        ctx.push_internal(node, "matmul", Op::Linear { input: cols, weight: ConstTensor { shape: vec![k, m], data: w }, bias }, vec![p, m]);
    // [P, M] → [1, M, OH, OW].
    let index = (0..m).flat_map(|o| (0..p).map(move |q| Some(q * m + o))).collect();
    ctx.push(node, Op::View { input: lin, index }, vec![1, m, win.out[0], win.out[1]]).map(|_| ())
}

fn kernel(node: &NodeProto) -> Result<[usize; 2]> {
    match attr_ints(node, "kernel_shape") {
        Some(v) if v.len() == 2 && v.iter().all(|&x| x > 0) => Ok([v[0] as usize, v[1] as usize]),
        other => Err(unsupported(node, format!("kernel_shape = {other:?}"))),
    }
}

/// Gathers every pooling window: `[C·OH·OW, kH·kW]`.
fn windows(node: &NodeProto, ctx: &mut ImportCtx, x: TensorId, win: &Window) -> TensorId {
    let mut index = Vec::new();
    for c in 0..win.c {
        for oy in 0..win.out[0] {
            for ox in 0..win.out[1] {
                for i in 0..win.k[0] {
                    for j in 0..win.k[1] {
                        index.push(win.at(c, oy, ox, i, j));
                    }
                }
            }
        }
    }
    let rows = win.c * win.positions();
    ctx.push_internal(node, "windows", Op::View { input: x, index }, vec![rows, win.k[0] * win.k[1]])
}

fn average(node: &NodeProto, ctx: &mut ImportCtx, x: TensorId, win: Window) -> Result<()> {
    let kk = win.k[0] * win.k[1];
    let cols = windows(node, ctx, x, &win);
    let weight = ConstTensor { shape: vec![kk, 1], data: vec![1.0 / kk as f64; kk] };
    let rows = win.c * win.positions();
    let lin = ctx.push_internal(node, "mean", Op::Linear { input: cols, weight, bias: None }, vec![rows, 1]);
    let index = (0..rows).map(Some).collect();
    ctx.push(node, Op::View { input: lin, index }, vec![1, win.c, win.out[0], win.out[1]]).map(|_| ())
}

pub(super) fn import_average_pool(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let x = act(node, ctx, 0)?;
    let win = Window::new(node, ctx.shape(x), kernel(node)?, false)?;
    average(node, ctx, x, win)
}

pub(super) fn import_global_average_pool(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let x = act(node, ctx, 0)?;
    let shape = ctx.shape(x).to_vec();
    let k = [*shape.get(2).unwrap_or(&1), *shape.get(3).unwrap_or(&1)];
    let win = Window::new(node, &shape, k, false)?;
    average(node, ctx, x, win)
}

pub(super) fn import_max_pool(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    if node.output.get(1).is_some_and(|o| !o.is_empty()) {
        return Err(unsupported(node, "the Indices output"));
    }
    let x = act(node, ctx, 0)?;
    let win = Window::new(node, ctx.shape(x), kernel(node)?, false)?;
    let (rows, kk) = (win.c * win.positions(), win.k[0] * win.k[1]);
    let cols = windows(node, ctx, x, &win);
    let acc = row_max(node, ctx, cols, rows, kk);
    let index = (0..rows).map(Some).collect();
    ctx.push(node, Op::View { input: acc, index }, vec![1, win.c, win.out[0], win.out[1]]).map(|_| ())
}

/// The maximum of each row of a `[rows, width]` activation, as `[rows]`:
/// `max(a, b) = relu(a − b) + b`, exact on integers, every step range-checked.
pub(super) fn row_max(node: &NodeProto, ctx: &mut ImportCtx, cols: TensorId, rows: usize, width: usize) -> TensorId {
    let column = |ctx: &mut ImportCtx, t: usize| {
        let index = (0..rows).map(|r| Some(r * width + t)).collect();
        ctx.push_internal(node, &format!("col{t}"), Op::View { input: cols, index }, vec![rows])
    };
    let mut acc = column(ctx, 0);
    for t in 1..width {
        let b = column(ctx, t);
        let d = ctx.push_internal(
            node,
            &format!("sub{t}"),
            Op::Binary { kind: BinaryKind::Sub, a: Operand::Tensor(acc), b: Operand::Tensor(b) },
            vec![rows],
        );
        let r = ctx.push_internal(node, &format!("relu{t}"), Op::Relu { input: d }, vec![rows]);
        acc = ctx.push_internal(
            node,
            &format!("max{t}"),
            Op::Binary { kind: BinaryKind::Add, a: Operand::Tensor(r), b: Operand::Tensor(b) },
            vec![rows],
        );
    }
    acc
}

pub(super) fn import_batch_norm(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    let x = act(node, ctx, 0)?;
    let [scale, bias, mean, var] = [1, 2, 3, 4].map(|i| konst(node, ctx, i, "scale, bias, mean and variance"));
    let (scale, bias, mean, var) = (scale?, bias?, mean?, var?);
    let eps = f64::from(super::ops::attr_float(node, "epsilon", 1e-5));
    let shape = ctx.shape(x).to_vec();
    let c = *shape.get(1).ok_or_else(|| unsupported(node, "input rank < 2"))?;
    if [&scale, &bias, &mean, &var].iter().any(|t| t.len() != c) {
        return Err(unsupported(node, "parameters must have one value per channel"));
    }
    // y = x·a + b with a = scale/√(var+ε), b = bias − mean·a, broadcast over [C, 1, …].
    let a: Vec<f64> = (0..c).map(|i| scale.data[i] / (var.data[i] + eps).sqrt()).collect();
    let b: Vec<f64> = (0..c).map(|i| bias.data[i] - mean.data[i] * a[i]).collect();
    let mut cshape = vec![1; shape.len() - 1];
    cshape[0] = c;
    let per_channel = |data: Vec<f64>| broadcast_const(&ConstTensor { shape: cshape.clone(), data }, &shape);
    let scaled = ctx.push_internal(
        node,
        "scale",
        Op::Binary { kind: BinaryKind::Mul, a: Operand::Tensor(x), b: Operand::Const(per_channel(a)) },
        shape.clone(),
    );
    ctx.push(node, Op::Binary { kind: BinaryKind::Add, a: Operand::Tensor(scaled), b: Operand::Const(per_channel(b)) }, shape).map(|_| ())
}
