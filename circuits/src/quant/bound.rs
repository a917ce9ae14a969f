//! A worst-case bound on |dequantized circuit output − exact real output|.
//!
//! The bound holds for any input whose activations stay within the magnitudes seen in
//! calibration (`mag`). Every step adds at most half an LSB of rounding at the activation
//! scale, and the constants' own rounding errors are known exactly at compile time.

use serde::{Deserialize, Serialize};

use super::{Coeffs, StepKind};
use crate::ir::{BinaryKind, Graph, Op, Operand};

/// Per-output error bounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBound {
    /// One bound per model output (max over its elements).
    pub per_output: Vec<f64>,
}

/// Relative slack for candle's f32 arithmetic, which the bound is compared against.
pub const F32_SLACK: f64 = 1e-5;

impl ErrorBound {
    /// Propagates error bounds through the lowered steps.
    ///
    /// `mag[t]` is the largest absolute real value of tensor `t` (from calibration).
    pub fn compute(graph: &Graph, steps: &[super::Step], scale_bits: u32, mag: &[f64]) -> Self {
        let lsb = 1.0 / (1u64 << scale_bits) as f64;
        let mut err = vec![0.0f64; graph.tensors.len()];
        for &i in &graph.inputs {
            err[i] = lsb / 2.0;
        }
        for (node, step) in graph.nodes.iter().zip(steps) {
            err[node.output] = match (&node.op, &step.kind) {
                (Op::Linear { input, weight, bias }, StepKind::Linear { n, k, weight: wq, bias: bq, shift, .. }) => {
                    let ws = (1u64 << shift) as f64;
                    let bs = ws / lsb;
                    let (e_x, m_x) = (err[*input], mag[*input]);
                    let worst = (0..*n)
                        .map(|j| {
                            let (mut l1, mut dw) = (0.0, 0.0);
                            for i in 0..*k {
                                let w = weight.data[i * n + j];
                                l1 += w.abs();
                                dw += (wq[i * n + j] as f64 / ws - w).abs();
                            }
                            let db = bias.as_ref().map_or(0.0, |b| {
                                (0..b.len() / n).map(|m| (bq[m * n + j] as f64 / bs - b.data[m * n + j]).abs()).fold(0.0, f64::max)
                            });
                            l1 * e_x + dw * (m_x + e_x) + db
                        })
                        .fold(0.0, f64::max);
                    worst + lsb / 2.0
                }
                (Op::Binary { kind, a, b }, StepKind::Elementwise { coeffs, shift, .. }) => {
                    binary_bound(*kind, a, b, coeffs, *shift, scale_bits, &err, mag)
                }
                (Op::Relu { input }, _) | (Op::View { input, .. }, _) => err[*input],
                (Op::DotPairs { a, b, width, .. }, _) => {
                    let ((ea, ma), (eb, mb)) = ((err[*a], mag[*a]), (err[*b], mag[*b]));
                    *width as f64 * (ma * eb + (mb + eb) * ea) + lsb / 2.0
                }
                // An exact index picks its value; only the value's own rounding remains.
                (Op::Table { input, .. }, StepKind::Function { .. }) if err[*input] < 0.5 => lsb / 2.0,
                (Op::Table { .. }, StepKind::Function { .. }) => f64::INFINITY,
                (Op::Function { input, .. }, StepKind::Function { spec, .. }) => {
                    // A coarser table input adds the rounding of the rescale before the lookup.
                    let rounding = if spec.in_scale < scale_bits { 0.5 / (1u64 << spec.in_scale) as f64 } else { 0.0 };
                    lipschitz(spec) * (err[*input] + rounding) + lsb / 2.0
                }
                _ => f64::INFINITY, // unreachable: steps are lowered one per node
            };
        }
        let per_output = graph.outputs.iter().map(|&o| err[o] + F32_SLACK * (1.0 + mag[o])).collect();
        ErrorBound { per_output }
    }
}

/// Largest slope of the function over its table range (finite differences on the real function).
fn lipschitz(spec: &crate::chips::function::FunctionSpec) -> f64 {
    let scale = (1u64 << spec.in_scale) as f64;
    let (lo, hi) = (spec.lo as f64 / scale, spec.hi as f64 / scale);
    let n = 4096;
    let h = (hi - lo) / n as f64;
    if h <= 0.0 {
        return 0.0;
    }
    (0..n).map(|i| lo + i as f64 * h).map(|x| ((spec.kind.eval(x + h) - spec.kind.eval(x)) / h).abs()).fold(0.0, f64::max) * 1.01
}

#[allow(clippy::too_many_arguments)]
fn binary_bound(
    kind: BinaryKind,
    a: &Operand,
    b: &Operand,
    coeffs: &[Coeffs],
    shift: u32,
    scale_bits: u32,
    err: &[f64],
    mag: &[f64],
) -> f64 {
    let lsb = 1.0 / (1u64 << scale_bits) as f64;
    let em = |o: &Operand| match o {
        Operand::Tensor(t) => (err[*t], mag[*t]),
        Operand::Const(_) => (0.0, 0.0),
    };
    let konst = match (a, b) {
        (Operand::Const(c), _) | (_, Operand::Const(c)) => Some(c),
        _ => None,
    };
    match (kind, konst) {
        (BinaryKind::Add | BinaryKind::Sub, None) => em(a).0 + em(b).0,
        (BinaryKind::Mul, None) => {
            let ((ea, ma), (eb, mb)) = (em(a), em(b));
            ma * eb + (mb + eb) * ea + lsb / 2.0
        }
        (BinaryKind::Add | BinaryKind::Sub, Some(c)) => {
            let (e, _) = if matches!(a, Operand::Tensor(_)) { em(a) } else { em(b) };
            let dc = c.data.iter().zip(coeffs).map(|(v, q)| (q[3].abs() as f64 * lsb - v.abs()).abs()).fold(0.0, f64::max);
            e + dc
        }
        (BinaryKind::Mul, Some(c)) => {
            let (e, m) = if matches!(a, Operand::Tensor(_)) { em(a) } else { em(b) };
            let cs = (1u64 << shift) as f64;
            c.data.iter().zip(coeffs).map(|(v, q)| v.abs() * e + (q[0] as f64 / cs - v).abs() * (m + e)).fold(0.0, f64::max) + lsb / 2.0
        }
    }
}
