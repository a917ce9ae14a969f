//! Exact integer evaluation of a [`QModel`]: the values the circuit will constrain.

use rayon::prelude::*;

use super::{QModel, StepKind};
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

/// Every activation's quantized values after an evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// Values per tensor id.
    pub values: Vec<Vec<i64>>,
}

impl Trace {
    /// The model outputs, flattened.
    pub fn outputs(&self, model: &QModel) -> Vec<Vec<i64>> {
        model.outputs.iter().map(|&o| self.values[o].clone()).collect()
    }
}

impl QModel {
    fn overflow(&self, node: &str, value: i128, scale_bits: u32) -> Error {
        let limit = 1i128 << self.settings.value_bits;
        let scale = (1u64 << scale_bits) as f64;
        Error::Overflow { node: node.to_string(), value, float: value as f64 / scale, limit, float_limit: limit as f64 / scale, scale_bits }
    }

    fn requant_checked(&self, node: &str, a: i128, shift: u32, relu: bool) -> Result<i64> {
        requant(a, shift, relu, self.settings.value_bits)
            .map(|r| r.y)
            .ok_or_else(|| self.overflow(node, a >> shift, self.settings.scale_bits))
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
        Ok(crate::circuit::salted_commitment(&self.quantize_inputs(inputs)?, salt))
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
        if quantized.len() != self.inputs.len() {
            return Err(Error::InputCount { expected: self.inputs.len(), got: quantized.len() });
        }
        let mut values: Vec<Vec<i64>> = vec![Vec::new(); self.tensors.len()];
        for (index, (&id, q)) in self.inputs.iter().zip(quantized).enumerate() {
            let info = &self.tensors[id];
            if q.len() != info.numel() {
                return Err(Error::InputLength { index, got: q.len(), expected: info.numel(), shape: info.shape.clone() });
            }
            let node = format!("input `{}`", info.name);
            values[id] = q.iter().map(|&v| self.requant_checked(&node, i128::from(v), 0, false)).collect::<Result<_>>()?;
        }
        for step in &self.steps {
            let out = self.eval_step(&step.node, &step.kind, &values)?;
            values[step.output] = out;
        }
        Ok(Trace { values })
    }

    fn eval_step(&self, node: &str, kind: &StepKind, values: &[Vec<i64>]) -> Result<Vec<i64>> {
        match kind {
            StepKind::Linear { input, rows, k, n, weight, bias, shift } => {
                let x = &values[*input];
                (0..rows * n)
                    .into_par_iter()
                    .map(|idx| {
                        let (m, j) = (idx / n, idx % n);
                        let acc =
                            (0..*k).fold(i128::from(bias[idx]), |acc, i| acc + i128::from(x[m * k + i]) * i128::from(weight[i * n + j]));
                        self.requant_checked(node, acc, *shift, false)
                    })
                    .collect()
            }
            StepKind::Elementwise { x, y, coeffs, shift } => coeffs
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let xv = i128::from(values[*x][i]);
                    let yv = y.map_or(0, |y| i128::from(values[y][i]));
                    let z = i128::from(c[0]) * xv + i128::from(c[1]) * yv + i128::from(c[2]) * xv * yv + i128::from(c[3]);
                    self.requant_checked(node, z, *shift, false)
                })
                .collect(),
            StepKind::DotPairs { a, b, width, shift } => values[*a]
                .chunks(*width)
                .zip(values[*b].chunks(*width))
                .map(|(x, y)| {
                    let acc = x.iter().zip(y).fold(0i128, |s, (&p, &q)| s + i128::from(p) * i128::from(q));
                    self.requant_checked(node, acc, *shift, false)
                })
                .collect(),
            StepKind::Relu { input } => values[*input].iter().map(|&v| self.requant_checked(node, i128::from(v), 0, true)).collect(),
            StepKind::Function { input, spec } => values[*input]
                .iter()
                .map(|&x| {
                    // As the circuit does: a table finer than the activations is a malformed model.
                    let shift = self.settings.scale_bits.checked_sub(spec.in_scale).ok_or_else(|| Error::MalformedModel {
                        reason: format!(
                            "node `{node}`: table scale {} finer than the activations' {}",
                            spec.in_scale, self.settings.scale_bits
                        ),
                    })?;
                    let x = self.requant_checked(node, i128::from(x), shift, false)?;
                    spec.apply(x).ok_or_else(|| Error::OutsideTable {
                        node: node.to_string(),
                        value: x as f64 / (1u64 << spec.in_scale) as f64,
                        lo: spec.lo as f64 / (1u64 << spec.in_scale) as f64,
                        hi: spec.hi as f64 / (1u64 << spec.in_scale) as f64,
                    })
                })
                .collect(),
            StepKind::View { input, index } => Ok(index.iter().map(|i| i.map_or(0, |i| values[*input][i])).collect()),
        }
    }
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
}
