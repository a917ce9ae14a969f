//! Exact integer evaluation of a [`QModel`]: the values the circuit will constrain.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use super::{Mutation, QModel, StepKind};
use crate::error::{Error, Result};

/// The cells of one rescale row (see [`crate::chips::requant`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequantValues {
    /// The input accumulator.
    pub a: i128,
    /// `floor((a + 2^(shift-1)) / 2^shift)`: `a / 2^shift` rounded half up.
    pub q: i64,
    /// `a + 2^(shift-1) - q·2^shift`, in `[0, 2^shift)`.
    pub rem: i64,
    /// Sign bit: `q >= 0`.
    pub b: bool,
    /// `q + 2^value_bits·(1 - b)`, in `[0, 2^value_bits)`.
    pub u: i64,
    /// The output: `q`, or `b·q` when the row applies ReLU.
    pub y: i64,
}

/// Rescales `a` by `2^shift` with rounding, range-checks it and optionally applies ReLU.
/// Returns `None` when the result leaves `[-2^value_bits, 2^value_bits)`.
pub fn requant(a: i128, shift: u32, relu: bool, value_bits: u32) -> Option<RequantValues> {
    let half = if shift == 0 { 0 } else { 1i128 << (shift - 1) };
    let shifted = a.checked_add(half)?;
    // Arithmetic shift is floor division for negative values too.
    let q = shifted >> shift;
    let rem = shifted - (q << shift);
    let limit = 1i128 << value_bits;
    if q < -limit || q >= limit {
        return None;
    }
    let q = q as i64;
    let b = q >= 0;
    let u = if b { q } else { q + limit as i64 };
    let y = if relu && !b { 0 } else { q };
    Some(RequantValues { a, q, rem: rem as i64, b, u, y })
}

/// Quantizes a real input value at `2^scale_bits` (round half away from zero).
pub fn quantize_input(x: f32, scale_bits: u32) -> i64 {
    (f64::from(x) * (1u64 << scale_bits) as f64).round() as i64
}

/// One step's witness values, as the circuit lays them out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepTrace {
    /// The rescale rows, one per output element (for a function: the rescale to its table's
    /// input scale); empty for a view.
    pub rescale: Vec<RequantValues>,
    /// For a product of two activations: the exact products `a_i·b_i`, in row order.
    pub products: Vec<i128>,
}

/// The whole witness of one evaluation: every activation, the input range-check rows and each
/// step's rows. The circuit lays these values out and computes none of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// Values per tensor id.
    pub values: Vec<Vec<i64>>,
    /// The range-check rows of each model input.
    pub inputs: Vec<Vec<RequantValues>>,
    /// Per step, in order.
    pub steps: Vec<StepTrace>,
}

/// Evaluations since the process started (every [`QModel::eval_mutated`] call), so that a
/// test can show that one proof evaluates its model once.
static EVALUATIONS: AtomicU64 = AtomicU64::new(0);

/// How many times this process has evaluated a model.
pub fn evaluation_count() -> u64 {
    EVALUATIONS.load(Ordering::Relaxed)
}

impl Trace {
    /// The model outputs, flattened.
    pub fn outputs(&self, model: &QModel) -> Vec<Vec<i64>> {
        model.outputs.iter().map(|&o| self.values[o].clone()).collect()
    }

    /// A trace of the model's shapes that holds zeros: for key generation, which reads no
    /// witness value (a zero input need not evaluate: it may fall outside a function table).
    pub fn placeholder(model: &QModel) -> Self {
        let zero = RequantValues { a: 0, q: 0, rem: 0, b: true, u: 0, y: 0 };
        let numel = |id: usize| model.tensors[id].numel();
        let steps = model
            .steps
            .iter()
            .map(|s| match &s.kind {
                StepKind::View { .. } => StepTrace::default(),
                StepKind::DotPairs { a, .. } => StepTrace { rescale: vec![zero; numel(s.output)], products: vec![0; numel(*a)] },
                _ => StepTrace { rescale: vec![zero; numel(s.output)], products: Vec::new() },
            })
            .collect();
        Trace {
            values: (0..model.tensors.len()).map(|id| vec![0; numel(id)]).collect(),
            inputs: model.input_sizes().into_iter().map(|n| vec![zero; n]).collect(),
            steps,
        }
    }
}

/// `values` with `delta` added at `element`, or an error naming the mutation when there is none.
fn bump<T: std::ops::AddAssign + From<i64>>(values: &mut [T], element: usize, delta: i64, m: &Mutation) -> Result<()> {
    *values.get_mut(element).ok_or(Error::NoSuchMutationTarget(*m))? += T::from(delta);
    Ok(())
}

impl QModel {
    fn overflow(&self, node: &str, value: i128, scale_bits: u32) -> Error {
        let limit = 1i128 << self.settings.value_bits;
        let scale = (1u64 << scale_bits) as f64;
        Error::Overflow { node: node.to_string(), value, float: value as f64 / scale, limit, float_limit: limit as f64 / scale, scale_bits }
    }

    fn requant_row(&self, node: &str, a: i128, shift: u32, relu: bool) -> Result<RequantValues> {
        requant(a, shift, relu, self.settings.value_bits).ok_or_else(|| self.overflow(node, a >> shift, self.settings.scale_bits))
    }

    fn requant_checked(&self, node: &str, a: i128, shift: u32, relu: bool) -> Result<i64> {
        self.requant_row(node, a, shift, relu).map(|r| r.y)
    }

    /// Splits one flat list (every model input flattened, in ONNX input order, as the market
    /// sends them) into the model's inputs.
    pub fn split_inputs(&self, flat: &[f32]) -> Result<Vec<Vec<f32>>> {
        let sizes = self.input_sizes();
        let expected: usize = sizes.iter().sum();
        if flat.len() != expected {
            let shape = if sizes.len() == 1 { self.tensors[self.inputs[0]].shape.clone() } else { vec![expected] };
            return Err(Error::InputLength { index: 0, got: flat.len(), expected, shape });
        }
        let mut rest = flat;
        Ok(sizes
            .iter()
            .map(|&n| {
                let (head, tail) = rest.split_at(n);
                rest = tail;
                head.to_vec()
            })
            .collect())
    }

    /// The Poseidon commitment to the inputs with `salt` (design.md §1.2): the first public
    /// value of a proof with a hashed input, which customers recompute from the public model.
    pub fn input_commitment(
        &self,
        inputs: &[Vec<f32>],
        salt: halo2_proofs::halo2curves::bn256::Fr,
    ) -> Result<halo2_proofs::halo2curves::bn256::Fr> {
        Ok(crate::circuit::salted_commitment(&self.quantize_inputs(inputs)?, salt, self.settings.value_bits))
    }

    /// Checks input lengths and quantizes them.
    pub fn quantize_inputs(&self, inputs: &[Vec<f32>]) -> Result<Vec<Vec<i64>>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::InputCount { expected: self.inputs.len(), got: inputs.len() });
        }
        let s = self.settings.scale_bits;
        inputs
            .iter()
            .zip(&self.inputs)
            .enumerate()
            .map(|(index, (data, &id))| {
                let info = &self.tensors[id];
                if data.len() != info.numel() {
                    return Err(Error::InputLength { index, got: data.len(), expected: info.numel(), shape: info.shape.clone() });
                }
                data.iter()
                    .enumerate()
                    .map(|(position, &x)| {
                        if !x.is_finite() {
                            return Err(Error::NonFinite { index, position, value: x });
                        }
                        let q = quantize_input(x, s);
                        let node = format!("input `{}`", info.name);
                        self.requant_checked(&node, i128::from(q), 0, false)
                    })
                    .collect()
            })
            .collect()
    }

    /// Evaluates the model on real-valued inputs, exactly as the circuit computes it.
    pub fn eval(&self, inputs: &[Vec<f32>]) -> Result<Trace> {
        let quantized = self.quantize_inputs(inputs)?;
        self.eval_quantized(&quantized)
    }

    /// Evaluates the model on already-quantized inputs (checked for length and range).
    pub fn eval_quantized(&self, quantized: &[Vec<i64>]) -> Result<Trace> {
        self.eval_mutated(quantized, None)
    }

    /// Evaluates the model with one deliberately wrong value (none: the honest witness); every
    /// value after it follows it honestly (see [`Mutation`]). Fails as the honest evaluation
    /// does when a value leaves its range, and with [`Error::NoSuchMutationTarget`] when the
    /// mutation names an element or step that does not exist.
    pub fn eval_mutated(&self, quantized: &[Vec<i64>], mutation: Option<&Mutation>) -> Result<Trace> {
        EVALUATIONS.fetch_add(1, Ordering::Relaxed);
        if quantized.len() != self.inputs.len() {
            return Err(Error::InputCount { expected: self.inputs.len(), got: quantized.len() });
        }
        if let Some(m) = mutation {
            self.check_mutation(m)?;
        }
        let mut values: Vec<Vec<i64>> = vec![Vec::new(); self.tensors.len()];
        let mut inputs = Vec::with_capacity(quantized.len());
        let mut first = 0;
        for (index, (&id, q)) in self.inputs.iter().zip(quantized).enumerate() {
            let info = &self.tensors[id];
            if q.len() != info.numel() {
                return Err(Error::InputLength { index, got: q.len(), expected: info.numel(), shape: info.shape.clone() });
            }
            let mut acc: Vec<i128> = q.iter().map(|&v| i128::from(v)).collect();
            if let Some(m @ Mutation::Input { element, delta }) = mutation {
                if let Some(e) = element.checked_sub(first).filter(|e| *e < acc.len()) {
                    bump(&mut acc, e, *delta, m)?;
                }
            }
            first += q.len();
            let node = format!("input `{}`", info.name);
            let rows: Vec<RequantValues> = acc.iter().map(|&a| self.requant_row(&node, a, 0, false)).collect::<Result<_>>()?;
            values[id] = rows.iter().map(|r| r.y).collect();
            inputs.push(rows);
        }
        let zero = match mutation {
            Some(Mutation::Zero { delta }) => *delta,
            _ => 0,
        };
        let mut steps = Vec::with_capacity(self.steps.len());
        for (index, step) in self.steps.iter().enumerate() {
            let m = mutation.filter(|m| m.step() == Some(index));
            let (out, st) = self.eval_step(index, &step.node, &step.kind, &values, m, zero)?;
            values[step.output] = out;
            steps.push(st);
        }
        Ok(Trace { values, inputs, steps })
    }

    /// Refuses a mutation that would change nothing: a step, operand, input element or zero
    /// cell the model does not have, or a change the step kind has no place for (an elements'
    /// bounds are checked where it is applied).
    fn check_mutation(&self, m: &Mutation) -> Result<()> {
        let n_in: usize = self.input_sizes().iter().sum();
        let kind = m.step().and_then(|s| self.steps.get(s)).map(|s| &s.kind);
        let ok = match (m, kind) {
            (Mutation::Input { element, .. }, _) => *element < n_in,
            (Mutation::Zero { .. }, _) => self.uses_zero_cell(),
            (Mutation::Read { operand, .. }, Some(k)) => *operand < k.operands().len(),
            (Mutation::Accumulator { .. }, Some(k)) => {
                matches!(k, StepKind::Linear { .. } | StepKind::Elementwise { .. } | StepKind::DotPairs { .. })
            }
            (Mutation::Output { .. } | Mutation::Quotient { .. }, Some(k)) => !matches!(k, StepKind::View { .. }),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::NoSuchMutationTarget(*m))
        }
    }

    fn eval_step(
        &self,
        index: usize,
        node: &str,
        kind: &StepKind,
        values: &[Vec<i64>],
        m: Option<&Mutation>,
        zero: i64,
    ) -> Result<(Vec<i64>, StepTrace)> {
        // What the step reads: its producers' values, one of them shifted by a wrong read.
        let read = |id: usize, operand: usize| -> Result<Cow<'_, [i64]>> {
            match m.and_then(|m| m.read_at(index, operand).map(|r| (m, r))) {
                Some((m, (element, delta))) => {
                    let mut v = values[id].clone();
                    bump(&mut v, element, delta, m)?;
                    Ok(Cow::Owned(v))
                }
                None => Ok(Cow::Borrowed(&values[id])),
            }
        };
        let edit_acc = |acc: &mut [i128]| match m {
            Some(m @ Mutation::Accumulator { element, delta, .. }) => bump(acc, *element, *delta, m),
            _ => Ok(()),
        };
        let mut products = Vec::new();
        let (acc, shift, relu) = match kind {
            StepKind::Linear { input, rows, k, n, weight, bias, shift, .. } => {
                let x = read(*input, 0)?;
                let mut acc: Vec<i128> = (0..rows * n)
                    .into_par_iter()
                    .map(|idx| {
                        let (m, j) = (idx / n, idx % n);
                        (0..*k).fold(i128::from(bias[idx]), |acc, i| acc + i128::from(x[m * k + i]) * i128::from(weight[i * n + j]))
                    })
                    .collect();
                edit_acc(&mut acc)?;
                (acc, *shift, false)
            }
            StepKind::Elementwise { x, y, coeffs, shift } => {
                let xs = read(*x, 0)?;
                let ys = y.map(|y| read(y, 1)).transpose()?;
                let mut acc: Vec<i128> = coeffs
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        // Without a second operand the circuit reads the zero cell.
                        let (xv, yv) = (i128::from(xs[i]), i128::from(ys.as_ref().map_or(zero, |y| y[i])));
                        i128::from(c[0]) * xv + i128::from(c[1]) * yv + i128::from(c[2]) * xv * yv + i128::from(c[3])
                    })
                    .collect();
                edit_acc(&mut acc)?;
                (acc, *shift, false)
            }
            StepKind::DotPairs { a, b, width, shift, .. } => {
                let (a, b) = (read(*a, 0)?, read(*b, 1)?);
                products = a.iter().zip(b.iter()).map(|(&p, &q)| i128::from(p) * i128::from(q)).collect();
                edit_acc(&mut products)?;
                (products.chunks(*width).map(|row| row.iter().sum()).collect(), *shift, false)
            }
            StepKind::Relu { input } => (read(*input, 0)?.iter().map(|&v| i128::from(v)).collect(), 0, true),
            StepKind::Function { input, spec } => {
                // As the circuit does: a table finer than the activations is a malformed model.
                let shift = self.settings.scale_bits.checked_sub(spec.in_scale).ok_or_else(|| Error::MalformedModel {
                    reason: format!(
                        "node `{node}`: table scale {} finer than the activations' {}",
                        spec.in_scale, self.settings.scale_bits
                    ),
                })?;
                (read(*input, 0)?.iter().map(|&v| i128::from(v)).collect(), shift, false)
            }
            StepKind::View { input, index } => {
                let out = index.iter().map(|i| i.map_or(zero, |i| values[*input][i])).collect();
                return Ok((out, StepTrace::default()));
            }
        };
        let mut rescale: Vec<RequantValues> = acc.iter().map(|&a| self.requant_row(node, a, shift, relu)).collect::<Result<_>>()?;
        if let Some(m @ Mutation::Quotient { element, delta, .. }) = m {
            let r = rescale.get_mut(*element).ok_or(Error::NoSuchMutationTarget(*m))?;
            let old = *r;
            *r = shift_quotient(old, *delta, shift, relu, self.settings.value_bits)
                .ok_or_else(|| self.overflow(node, (old.a >> shift) + i128::from(*delta), self.settings.scale_bits))?;
        }
        let is_function = matches!(kind, StepKind::Function { .. });
        if let (Some(m @ Mutation::Output { element, delta, .. }), false) = (m, is_function) {
            rescale.get_mut(*element).ok_or(Error::NoSuchMutationTarget(*m))?.y += delta;
        }
        let mut out: Vec<i64> = rescale.iter().map(|r| r.y).collect();
        if let StepKind::Function { spec, .. } = kind {
            out = out.iter().map(|&x| self.table_output(node, spec, x)).collect::<Result<_>>()?;
            if let Some(m @ Mutation::Output { element, delta, .. }) = m {
                bump(&mut out, *element, *delta, m)?;
            }
        }
        Ok((out, StepTrace { rescale, products }))
    }

    fn table_output(&self, node: &str, spec: &crate::chips::function::FunctionSpec, x: i64) -> Result<i64> {
        spec.apply(x).ok_or_else(|| Error::OutsideTable {
            node: node.to_string(),
            value: x as f64 / (1u64 << spec.in_scale) as f64,
            lo: spec.lo as f64 / (1u64 << spec.in_scale) as f64,
            hi: spec.hi as f64 / (1u64 << spec.in_scale) as f64,
        })
    }
}

/// The rescale row with its quotient `delta` more and its remainder `delta·2^shift` less (the
/// rounding identity still holds); `None` when the quotient leaves the value range.
fn shift_quotient(r: RequantValues, delta: i64, shift: u32, relu: bool, value_bits: u32) -> Option<RequantValues> {
    let q = r.q.checked_add(delta)?;
    let limit = 1i64 << value_bits;
    if q < -limit || q >= limit {
        return None;
    }
    let rem = r.rem.checked_sub(delta.checked_mul(1i64.checked_shl(shift)?)?)?;
    let b = q >= 0;
    Some(RequantValues { a: r.a, q, rem, b, u: if b { q } else { q + limit }, y: if relu && !b { 0 } else { q } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requant_rounds_half_up_and_checks_range() {
        // 2.5 → 3, -2.5 → -2, 2.49 → 2 at shift 2 (divide by 4)
        assert_eq!(requant(10, 2, false, 8).map(|r| r.q), Some(3));
        assert_eq!(requant(-10, 2, false, 8).map(|r| r.q), Some(-2));
        assert_eq!(requant(9, 2, false, 8).map(|r| r.q), Some(2));
        let r = requant(-11, 2, true, 8).unwrap();
        assert_eq!((r.q, r.rem, r.b, r.y), (-3, 3, false, 0));
        assert_eq!(r.a + 2, i128::from(r.q) * 4 + i128::from(r.rem));
        assert_eq!(requant(255, 0, false, 8).map(|r| r.u), Some(255));
        assert_eq!(requant(-256, 0, false, 8).map(|r| r.u), Some(0));
        assert!(requant(256, 0, false, 8).is_none());
        assert!(requant(-257, 0, false, 8).is_none());
    }

    #[test]
    fn requant_matches_float_rounding() {
        for a in -5000i128..5000 {
            let r = requant(a, 5, false, 12).unwrap();
            let expected = ((a as f64) / 32.0 + 0.5).floor() as i64;
            assert_eq!(r.q, expected, "a={a}");
            assert!((0..32).contains(&r.rem));
        }
    }

    #[test]
    fn a_shifted_quotient_keeps_the_rounding_identity_and_only_the_remainder_leaves_its_range() {
        for (a, shift, relu) in [(-11i128, 2, false), (37, 3, true), (-40, 3, true), (5, 0, false)] {
            let r = requant(a, shift, relu, 8).unwrap();
            for delta in [1, -1] {
                let s = shift_quotient(r, delta, shift, relu, 8).unwrap();
                let half = if shift == 0 { 0 } else { 1i128 << (shift - 1) };
                assert_eq!(s.a + half, i128::from(s.q) * (1 << shift) + i128::from(s.rem), "{a} {shift} {delta}");
                assert!(!(0..1i64 << shift).contains(&s.rem), "the remainder should leave [0, 2^shift)");
                assert_eq!((s.q, s.y), (r.q + delta, if relu && s.q < 0 { 0 } else { s.q }));
                assert_eq!(s.u, if s.b { s.q } else { s.q + 256 });
            }
        }
        // A quotient pushed out of the value range has no witness at all.
        assert!(shift_quotient(requant(255, 0, false, 8).unwrap(), 1, 0, false, 8).is_none());
    }
}
