//! Fixed-point quantization: every activation is an integer at scale `2^scale_bits`,
//! every constant gets its own power-of-two scale, and after each multiplication the
//! result is rescaled with rounding (the circuit constrains the rounding, see
//! [`crate::chips::requant`]).

mod bound;
pub use bound::F32_SLACK;
mod eval;
mod mutation;
mod validate;
pub use mutation::Mutation;
pub use validate::MAX_K;

pub use bound::ErrorBound;
pub use eval::{evaluation_count, quantize_input, requant, RequantValues, StepTrace, Trace};

use serde::{Deserialize, Serialize};

use crate::chips::function::{FunctionKind, FunctionSpec};
use crate::error::{Error, Result};
use crate::ir::{BinaryKind, ConstTensor, Graph, MatMulDims, Op, Operand, TensorId, TensorInfo};

/// Version of [`Settings`] and [`QModel`]; bump on any change that alters the circuit.
pub const SETTINGS_VERSION: u32 = 8;

/// What the public instances reveal about the inputs or the outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    /// Nothing: the values are witnesses only (inputs only).
    Private,
    /// The quantized values themselves are public instances.
    Public,
    /// A Poseidon commitment to the quantized values is the public instance.
    #[default]
    Hashed,
}

/// Circuit parameters: stored next to the keys and bound into the cache key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Format version ([`SETTINGS_VERSION`]).
    pub version: u32,
    /// log2 of the number of rows.
    pub k: u32,
    /// Activation scale: a real value `x` is the integer `round(x * 2^scale_bits)`.
    pub scale_bits: u32,
    /// Activations lie in `[-2^value_bits, 2^value_bits)`.
    pub value_bits: u32,
    /// The widest range-table tag: wider range checks are split into two limbs, so
    /// `value_bits` and every rescale shift are at most `2·lookup_bits`.
    pub lookup_bits: u32,
    /// Output neurons accumulated side by side in the dot-product chip.
    pub dot_lanes: usize,
    /// Advice columns.
    pub num_advice: usize,
    /// Fixed columns shared by the chips (weights, round constants, per-row parameters).
    pub num_fixed: usize,
    /// Bit-widths present in the tagged range table.
    pub table_tags: Vec<u32>,
    /// Function lookup tables (empty: the circuit has no function lookup).
    pub function_tables: Vec<FunctionSpec>,
    /// How the inputs appear in the public instances.
    pub input_visibility: Visibility,
    /// How the outputs appear in the public instances (`Public` or `Hashed`).
    pub output_visibility: Visibility,
    /// Second-phase advice columns of the random-challenge matrix-product check (0: none).
    #[serde(default)]
    pub challenge_advice: usize,
}

impl Settings {
    /// Every advice column of the circuit, both phases.
    pub fn total_advice(&self) -> usize {
        self.num_advice + self.challenge_advice
    }
}

/// An elementwise row: `z = cx·x + cy·y + cxy·x·y + c0`, all integers.
pub type Coeffs = [i64; 4];

/// One lowered operation on quantized integers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StepKind {
    /// `acc[m][j] = bias[m][j] + Σ_i x[m][i]·weight[i][j]`, then rescale by `2^shift`.
    Linear {
        /// The activation, viewed as `[rows, k]`.
        input: TensorId,
        /// Rows of the activation.
        rows: usize,
        /// Inner dimension.
        k: usize,
        /// Output features.
        n: usize,
        /// `[k][n]`, at scale `2^shift`.
        weight: Vec<i64>,
        /// `[rows][n]`, at scale `2^(scale_bits + shift)`.
        bias: Vec<i64>,
        /// Weight scale bits, removed again by the rescale.
        shift: u32,
        /// The sums checked with a random challenge in the second phase (the weights read from
        /// a fixed column there), not laid out by the dot chip.
        #[serde(default)]
        checked: bool,
    },
    /// Elementwise affine-product, then rescale by `2^shift`.
    Elementwise {
        /// First operand.
        x: TensorId,
        /// Second operand (when both operands are activations).
        y: Option<TensorId>,
        /// One row of coefficients per output element.
        coeffs: Vec<Coeffs>,
        /// Scale bits removed by the rescale.
        shift: u32,
    },
    /// `max(x, 0)`.
    Relu {
        /// The activation.
        input: TensorId,
    },
    /// `Σ_t a·b` per row of `width` products, rescaled once by `2^shift` (the activation scale).
    DotPairs {
        /// Left factors.
        a: TensorId,
        /// Right factors.
        b: TensorId,
        /// Products per output.
        width: usize,
        /// Scale bits removed by the single rescale.
        shift: u32,
        /// How the products are proven.
        #[serde(default)]
        layout: PairsLayout,
    },
    /// `f(x)` through the function table with this spec.
    Function {
        /// The activation.
        input: TensorId,
        /// The table.
        spec: FunctionSpec,
    },
    /// A re-indexing: `out[i] = input[index[i]]`, or the constant 0 for `None` (copy constraints only).
    View {
        /// The activation.
        input: TensorId,
        /// Source element of each output element (`None`: zero padding).
        index: Vec<Option<usize>>,
    },
}

impl StepKind {
    /// The activations the step copies in, in operand order (a view copies nothing: its
    /// cells are its input's).
    pub fn operands(&self) -> Vec<TensorId> {
        match self {
            StepKind::Linear { input, .. } | StepKind::Relu { input } | StepKind::Function { input, .. } => vec![*input],
            StepKind::Elementwise { x, y, .. } => std::iter::once(*x).chain(*y).collect(),
            StepKind::DotPairs { a, b, .. } => vec![*a, *b],
            StepKind::View { .. } => Vec::new(),
        }
    }
}

/// A lowered node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The ONNX node it comes from.
    pub node: String,
    /// The ONNX op type.
    pub op_type: String,
    /// What it does.
    pub kind: StepKind,
    /// The tensor it defines.
    pub output: TensorId,
}

/// A quantized model: everything the circuit and the witness generator need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QModel {
    /// Circuit parameters.
    pub settings: Settings,
    /// All activation tensors (shapes, names).
    pub tensors: Vec<TensorInfo>,
    /// Input tensors.
    pub inputs: Vec<TensorId>,
    /// Output tensors.
    pub outputs: Vec<TensorId>,
    /// Lowered steps in order.
    pub steps: Vec<Step>,
    /// Worst-case error bound of each output against float inference, for inputs
    /// within the calibrated range (see [`ErrorBound`]).
    pub error_bound: Vec<f64>,
    /// Largest absolute activation seen in calibration.
    pub calibrated_max_abs: f64,
}

impl QModel {
    /// Whether the circuit has the shared zero cell: zero padding reads it, and so does `y` of
    /// an elementwise step without a second operand.
    pub fn uses_zero_cell(&self) -> bool {
        self.steps.iter().any(|s| match &s.kind {
            StepKind::View { index, .. } => index.iter().any(Option::is_none),
            StepKind::Elementwise { y, .. } => y.is_none(),
            _ => false,
        })
    }

    /// Flattened size of every input.
    pub fn input_sizes(&self) -> Vec<usize> {
        self.inputs.iter().map(|&i| self.tensors[i].numel()).collect()
    }

    /// Public instances that describe the inputs (they come first).
    pub fn input_instances(&self) -> usize {
        match self.settings.input_visibility {
            Visibility::Private => 0,
            Visibility::Public => self.input_sizes().iter().sum(),
            Visibility::Hashed => 1,
        }
    }

    /// The first instance row of the payee binding (after the input part).
    pub fn binding_offset(&self) -> usize {
        self.input_instances()
    }

    /// The first instance row of the output part (after the payee binding).
    pub fn output_offset(&self) -> usize {
        self.input_instances() + crate::circuit::BINDING_INSTANCES
    }

    /// Total number of public instances: the input part, the payee binding, the output part.
    pub fn num_instances(&self) -> usize {
        let outputs = match self.settings.output_visibility {
            Visibility::Hashed => 1,
            _ => self.output_shapes().iter().map(|s| s.iter().product::<usize>()).sum(),
        };
        self.output_offset() + outputs
    }

    /// Shapes of the outputs.
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        self.outputs.iter().map(|&i| self.tensors[i].shape.clone()).collect()
    }

    /// Converts a quantized value back to a real number.
    pub fn dequantize(&self, v: i64) -> f64 {
        v as f64 / (1u64 << self.settings.scale_bits) as f64
    }

    /// Multiply-accumulates of all linear steps.
    pub fn macs(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match &s.kind {
                StepKind::Linear { rows, k, n, .. } => rows * k * n,
                _ => 0,
            })
            .sum()
    }

    /// Range-table widths the circuit needs: the value range and each shift's remainder parts.
    pub fn required_table_tags(&self) -> Vec<u32> {
        let (v, l) = (self.settings.value_bits, self.settings.lookup_bits);
        let mut tags: Vec<u32> = self.shifts().into_iter().flat_map(|s| crate::chips::requant::remainder_tags(s, l)).collect();
        tags.extend(crate::chips::requant::value_tags(v, l));
        tags.retain(|&t| t > 0);
        tags.sort_unstable();
        tags.dedup();
        tags
    }

    /// The distinct rescale shifts used by the steps (each needs a table tag).
    pub fn shifts(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Linear { shift, .. } | StepKind::Elementwise { shift, .. } | StepKind::DotPairs { shift, .. } => Some(*shift),
                StepKind::Function { spec, .. } => Some(self.settings.scale_bits - spec.in_scale),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Largest power-of-two scale (at most `max_bits`) at which the constant stays below `2^limit_bits`.
pub fn const_scale_bits(c: &ConstTensor, max_bits: u32, limit_bits: u32) -> u32 {
    let m = c.max_abs();
    if m == 0.0 {
        return max_bits;
    }
    let headroom = (f64::from(limit_bits) - m.log2().ceil()).floor();
    (headroom.max(0.0) as u32).min(max_bits)
}

/// Quantizes a constant; an out-of-range value is an error naming the node (never clamped).
fn quantize_const(node: &str, v: f64, scale_bits: u32) -> Result<i64> {
    // (powi, not a shift: a scale of 64 bits or more is an error below, not an overflow)
    let x = (v * 2f64.powi(i32::try_from(scale_bits).unwrap_or(i32::MAX))).round();
    if !x.is_finite() || x.abs() > (1u64 << 62) as f64 {
        return Err(Error::Settings(format!("node `{node}`: constant {v} does not fit at scale 2^{scale_bits}")));
    }
    Ok(x as i64)
}

/// Largest quantized constant magnitude: 2^40 keeps every accumulator far below the field size.
const CONST_LIMIT_BITS: u32 = 40;

/// How a [`StepKind::DotPairs`] step is proven.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PairsLayout {
    /// Every product in a row of its own, summed per output by single-lane dot groups:
    /// `2·width + 1` rows per output.
    #[default]
    Direct,
    /// The sums of a matrix product, checked with a random challenge in second-phase columns
    /// (Freivalds' check, [`crate::chips::freivalds`]): `k·n + m·n + m·(k+1)` rows of three
    /// cells per product, and one rescale row per output.
    Freivalds(MatMulDims),
}

/// Which layout matrix products of two activations get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatMulLayout {
    /// Per node, the layout with fewer advice cells.
    #[default]
    Auto,
    /// Always the direct products.
    Direct,
    /// Always the random-challenge check.
    Freivalds,
}

impl MatMulLayout {
    /// The layout lowering gives a DotPairs node gathered from the matrix product `matmul` (if
    /// it is one); `Auto` starts direct, and `compile` then checks the products whose check
    /// lowers the circuit's size (`compile::checks`).
    pub fn initial(self, matmul: Option<MatMulDims>) -> PairsLayout {
        match (self, matmul) {
            (MatMulLayout::Freivalds, Some(d)) => PairsLayout::Freivalds(d),
            _ => PairsLayout::Direct,
        }
    }
}

/// The fixed-point format of a lowering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Precision {
    /// Activation scale bits.
    pub scale_bits: u32,
    /// Activations lie in `[-2^value_bits, 2^value_bits)`.
    pub value_bits: u32,
    /// Widest range-table tag (rescale shifts are at most twice this).
    pub lookup_bits: u32,
    /// Rows all function tables together may use.
    pub function_rows: usize,
    /// The layout of activation × activation matrix products.
    pub matmul: MatMulLayout,
}

/// Lowers a float graph to integer steps at the given precision.
/// `(mag, min)`: per tensor, the largest |value| and the smallest value seen in calibration.
/// Function tables start at the activation scale; while they exceed `function_rows`, the
/// largest one takes its input one bit coarser (a rescale before the lookup).
pub fn lower(graph: &Graph, p: Precision, (mag, min): (&[f64], &[f64])) -> Result<Vec<Step>> {
    let mut steps = lower_at(graph, p, (mag, min), &|_| p.scale_bits)?;
    let mut in_scale: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    loop {
        let tables: Vec<(&String, usize, u32, bool)> = steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Function { spec, .. } => Some((&s.node, spec.rows(), spec.in_scale, spec.kind == FunctionKind::Table)),
                _ => None,
            })
            .collect();
        if tables.iter().map(|t| t.1).sum::<usize>() <= p.function_rows {
            return Ok(steps);
        }
        // A gathered column's table is indexed by integers: it cannot take coarser inputs.
        let Some(&(node, _, scale, _)) = tables.iter().filter(|t| !t.3).max_by_key(|t| t.1).or_else(|| tables.iter().max_by_key(|t| t.1))
        else {
            return Ok(steps);
        };
        if scale == 0 {
            return Err(Error::Settings(format!("node `{node}`: its function table does not fit in {} rows", p.function_rows)));
        }
        in_scale.insert(node.clone(), scale - 1);
        steps = lower_at(graph, p, (mag, min), &|n| in_scale.get(n).copied().unwrap_or(p.scale_bits))?;
    }
}

/// Lowers every node; `table_scale(node)` is the input scale of a function node's table.
fn lower_at(graph: &Graph, p: Precision, (mag, min): (&[f64], &[f64]), table_scale: &dyn Fn(&str) -> u32) -> Result<Vec<Step>> {
    let (scale_bits, value_bits) = (p.scale_bits, p.value_bits);
    let mut next_table = 0u32;
    // The rescale range-checks remainders of up to 2·lookup_bits bits (two table lookups).
    let weight_max_bits = 2 * p.lookup_bits;
    graph
        .nodes
        .iter()
        .map(|node| {
            let kind = match &node.op {
                Op::Linear { input, weight, bias } => {
                    let mut kind = lower_linear(&node.name, graph, *input, weight, bias.as_ref(), (scale_bits, weight_max_bits))?;
                    // Forced checks apply where they can save work: a sequence of rows.
                    if let StepKind::Linear { rows, checked, .. } = &mut kind {
                        *checked = p.matmul == MatMulLayout::Freivalds && *rows > 1;
                    }
                    kind
                }
                Op::Binary { kind, a, b } => {
                    lower_binary(&node.name, graph.tensors[node.output].numel(), *kind, a, b, scale_bits, weight_max_bits)?
                }
                Op::Relu { input } => StepKind::Relu { input: *input },
                Op::DotPairs { a, b, width, matmul } => {
                    StepKind::DotPairs { a: *a, b: *b, width: *width, shift: scale_bits, layout: p.matmul.initial(*matmul) }
                }
                Op::Function { kind, input, bounds } => {
                    next_table += 1;
                    let scales = (table_scale(&node.name).min(scale_bits), scale_bits, value_bits);
                    let spec = function_spec(&node.name, *kind, next_table, (mag[*input], min[*input]), *bounds, scales)?;
                    StepKind::Function { input: *input, spec }
                }
                Op::View { input, index } => StepKind::View { input: *input, index: index.clone() },
                Op::Table { input, values } => {
                    next_table += 1;
                    StepKind::Function { input: *input, spec: table_spec(&node.name, next_table, values, scale_bits, value_bits)? }
                }
            };
            Ok(Step { node: node.name.clone(), op_type: node.op_type.clone(), kind, output: node.output })
        })
        .collect()
}

/// The table of a Gather by an activation: integer inputs `0..values.len()`, outputs at the
/// activation scale.
fn table_spec(node: &str, id: u32, values: &[f64], s: u32, v: u32) -> Result<FunctionSpec> {
    let limit = (1i64 << v) - 1;
    let scale = (1u64 << s) as f64;
    let quantized: Vec<i64> = values.iter().map(|&x| (x * scale).round() as i64).collect();
    if let Some(&worst) = quantized.iter().find(|q| q.abs() > limit) {
        return Err(Error::Settings(format!(
            "node `{node}`: a gathered value {:.3} is beyond the value range ±{:.3}",
            worst as f64 / scale,
            limit as f64 / scale
        )));
    }
    let hi = i64::try_from(values.len()).map_err(|_| Error::Settings(format!("node `{node}`: table too large")))? - 1;
    Ok(FunctionSpec { id, kind: FunctionKind::Table, in_scale: 0, out_scale: s, lo: 0, hi, values: quantized })
}

/// Input headroom over the calibrated magnitude for function tables.
const FUNCTION_HEADROOM: f64 = 1.25;

/// The table of a function node: inputs in ±1.25·(calibrated magnitude) at the table's input
/// scale `s_in` (clipped to the value range and to the function's domain), outputs at the
/// activation scale `s`.
fn function_spec(
    node: &str,
    kind: FunctionKind,
    id: u32,
    (mag, min): (f64, f64),
    bounds: (Option<f64>, Option<f64>),
    (s_in, s, v): (u32, u32, u32),
) -> Result<FunctionSpec> {
    let limit = (1i64 << v) - 1;
    let in_limit = limit >> (s - s_in);
    let scale = (1u64 << s_in) as f64;
    let reach = ((mag * FUNCTION_HEADROOM).max(1.0) * scale).ceil() as i64;
    // Both bounds known (a softmax's row sum lies in [1, width]): they are the domain, so no
    // input the op can produce falls outside the table, whatever calibration saw.
    let reach = match bounds {
        (Some(l), Some(h)) => ((l.abs().max(h.abs())) * scale).ceil() as i64,
        _ => reach,
    };
    let hi = bounds.1.map_or(reach, |b| (b * scale).floor() as i64).min(reach).min(in_limit);
    let floor = match kind {
        FunctionKind::Sqrt => 0,
        // Poles at 0: start at a quarter of the smallest calibrated input (at least one LSB).
        FunctionKind::Reciprocal | FunctionKind::Rsqrt => ((0.25 * min.max(0.0) * scale).ceil() as i64).max(1),
        _ => -in_limit,
    };
    let lo = bounds.0.map_or(-reach, |b| (b * scale).ceil() as i64).max(-reach).max(floor);
    let spec = FunctionSpec { id, kind, in_scale: s_in, out_scale: s, lo, hi, values: Vec::new() };
    let worst = (lo..=hi)
        .step_by(((hi - lo) as usize / 4096).max(1))
        .chain([lo, hi])
        .filter_map(|x| spec.apply(x))
        .map(i64::abs)
        .max()
        .unwrap_or(0);
    if worst > limit {
        return Err(Error::Settings(format!(
            "node `{node}`: {kind:?} reaches {:.3} on its calibrated input range, beyond the value range ±{:.3}",
            worst as f64 / (1u64 << s) as f64,
            limit as f64 / (1u64 << s) as f64
        )));
    }
    Ok(spec)
}

fn lower_linear(
    node: &str,
    graph: &Graph,
    input: TensorId,
    weight: &ConstTensor,
    bias: Option<&ConstTensor>,
    (s_a, max_bits): (u32, u32),
) -> Result<StepKind> {
    let (k, n) = (weight.shape[0], weight.shape[1]);
    let rows = graph.tensors[input].numel() / k;
    let shift = const_scale_bits(weight, max_bits, CONST_LIMIT_BITS.saturating_sub(s_a));
    let weight_q = weight.data.iter().map(|&w| quantize_const(node, w, shift)).collect::<Result<_>>()?;
    let bias_q = match bias {
        Some(b) => b.data.iter().map(|&v| quantize_const(node, v, s_a + shift)).collect::<Result<_>>()?,
        None => vec![0; rows * n],
    };
    Ok(StepKind::Linear { input, rows, k, n, weight: weight_q, bias: bias_q, shift, checked: false })
}

fn lower_binary(node: &str, numel: usize, kind: BinaryKind, a: &Operand, b: &Operand, s_a: u32, max_bits: u32) -> Result<StepKind> {
    let settings_err = |why: &str| Error::Settings(format!("node `{node}`: {why}"));
    Ok(match (a, b) {
        (Operand::Tensor(x), Operand::Tensor(y)) => {
            let (c, shift) = match kind {
                BinaryKind::Add => ([1, 1, 0, 0], 0),
                BinaryKind::Sub => ([1, -1, 0, 0], 0),
                BinaryKind::Mul => ([0, 0, 1, 0], s_a),
            };
            StepKind::Elementwise { x: *x, y: Some(*y), coeffs: vec![c; numel], shift }
        }
        (Operand::Tensor(x), Operand::Const(c)) | (Operand::Const(c), Operand::Tensor(x)) => {
            let const_first = matches!(a, Operand::Const(_));
            match kind {
                BinaryKind::Mul => {
                    let shift = const_scale_bits(c, max_bits, CONST_LIMIT_BITS.saturating_sub(s_a));
                    let coeffs = c.data.iter().map(|&v| Ok([quantize_const(node, v, shift)?, 0, 0, 0])).collect::<Result<_>>()?;
                    StepKind::Elementwise { x: *x, y: None, coeffs, shift }
                }
                BinaryKind::Add | BinaryKind::Sub => {
                    let sign_x = if kind == BinaryKind::Sub && const_first { -1 } else { 1 };
                    let sign_c = if kind == BinaryKind::Sub && !const_first { -1 } else { 1 };
                    let coeffs =
                        c.data.iter().map(|&v| Ok([sign_x, 0, 0, sign_c * quantize_const(node, v, s_a)?])).collect::<Result<_>>()?;
                    StepKind::Elementwise { x: *x, y: None, coeffs, shift: 0 }
                }
            }
        }
        (Operand::Const(_), Operand::Const(_)) => return Err(settings_err("constant op survived folding")),
    })
}
