//! Elementwise nonlinear functions through lookup tables (see `chips::function`).

use candle_onnx::onnx::NodeProto;

use super::{ImportCtx, Value};
use crate::chips::function::FunctionKind;
use crate::error::Result;
use crate::ir::Op;

fn unary(node: &NodeProto, ctx: &mut ImportCtx, kind: FunctionKind) -> Result<()> {
    match ctx.input(node, 0)? {
        Value::Const(mut c) => {
            c.data.iter_mut().for_each(|v| *v = kind.eval(*v));
            ctx.define_const(node, c)
        }
        Value::Act(id) => {
            let shape = ctx.shape(id).to_vec();
            ctx.push(node, Op::Function { kind, input: id, bounds: (None, None) }, shape).map(|_| ())
        }
    }
}

pub(super) fn import_exp(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    unary(node, ctx, FunctionKind::Exp)
}

pub(super) fn import_sigmoid(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    unary(node, ctx, FunctionKind::Sigmoid)
}

pub(super) fn import_tanh(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    unary(node, ctx, FunctionKind::Tanh)
}

pub(super) fn import_erf(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    unary(node, ctx, FunctionKind::Erf)
}

pub(super) fn import_gelu(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    if super::ops::attr_str(node, "approximate").is_some_and(|a| a != "none") {
        return Err(super::ops::unsupported(node, "approximate = tanh"));
    }
    unary(node, ctx, FunctionKind::Gelu)
}

pub(super) fn import_sqrt(node: &NodeProto, ctx: &mut ImportCtx) -> Result<()> {
    unary(node, ctx, FunctionKind::Sqrt)
}
