//! Structural checks of a decoded [`QModel`]: a compiled model is also a file that others
//! hand us (an executor fetches `model.zkm` from a coordinator, an auditor verifies against a
//! directory it was sent), and everything after decoding indexes tensors, shifts by scales
//! and multiplies sizes on the assumption that the model is well formed. [`QModel::validate`]
//! makes that assumption true or says which part is not.

use super::{PairsLayout, QModel, Settings, StepKind, Visibility, SETTINGS_VERSION};
use crate::chips::freivalds::{check_rows, COLUMNS as FREIVALDS_COLUMNS};
use crate::circuit::check_fits;
use crate::error::{Error, Result};

/// Largest circuit size: the 2-adicity of BN254's scalar field.
pub const MAX_K: u32 = 28;
/// Largest range-table tag and scale, in bits (tables hold `2^bits` rows; values are i64).
const MAX_BITS: u32 = 30;
/// Largest number of advice or fixed columns, or dot lanes.
const MAX_COLUMNS: usize = 256;

fn bad(reason: impl Into<String>) -> Error {
    Error::MalformedModel { reason: reason.into() }
}

fn product(factors: &[usize], limit: usize, what: &dyn Fn() -> String) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .filter(|&p| p <= limit)
        .ok_or_else(|| bad(format!("{} is larger than the circuit can hold", what())))
}

impl Settings {
    /// Checks the parameters against what the chips and the field allow.
    pub fn validate(&self) -> Result<()> {
        if self.version != SETTINGS_VERSION {
            return Err(bad(format!("settings version {} (this build reads {SETTINGS_VERSION})", self.version)));
        }
        if !(4..=MAX_K).contains(&self.k) {
            return Err(bad(format!("k = {} (4 to {MAX_K})", self.k)));
        }
        let l = self.lookup_bits;
        if l == 0 || l > MAX_BITS || self.value_bits == 0 || self.value_bits > 2 * l || self.scale_bits > MAX_BITS {
            return Err(bad(format!(
                "value bits {}, lookup bits {l}, scale bits {} (need 0 < value ≤ 2·lookup ≤ {})",
                self.value_bits,
                self.scale_bits,
                2 * MAX_BITS
            )));
        }
        if self.table_tags.iter().any(|&t| t > l) {
            return Err(bad(format!("range table tags {:?} wider than the lookup bits {l}", self.table_tags)));
        }
        for (what, n) in [("dot lanes", self.dot_lanes), ("advice columns", self.num_advice), ("fixed columns", self.num_fixed)] {
            if n == 0 || n > MAX_COLUMNS {
                return Err(bad(format!("{n} {what} (1 to {MAX_COLUMNS})")));
            }
        }
        if self.challenge_advice != 0 && self.challenge_advice != FREIVALDS_COLUMNS {
            return Err(bad(format!("{} second-phase advice columns (0 or {FREIVALDS_COLUMNS})", self.challenge_advice)));
        }
        for (i, f) in self.function_tables.iter().enumerate() {
            let unique = self.function_tables[..i].iter().all(|g| g.id != f.id);
            if f.id == 0 || !unique || f.lo > f.hi || f.in_scale > MAX_BITS || f.out_scale > MAX_BITS {
                return Err(bad(format!("function table {i} (id {}, range [{}, {}])", f.id, f.lo, f.hi)));
            }
            f.hi.checked_sub(f.lo)
                .filter(|&span| span < 1 << self.k)
                .ok_or_else(|| bad(format!("function table {i} has more rows than 2^k")))?;
            let is_table = f.kind == crate::chips::function::FunctionKind::Table;
            let in_range = f.values.iter().all(|v| v.unsigned_abs() < 1u64 << self.value_bits.min(62));
            if (is_table && (f.values.len() != f.rows() || f.in_scale != 0 || !in_range)) || (!is_table && !f.values.is_empty()) {
                return Err(bad(format!("function table {i}: {} values for {} rows of a {:?}", f.values.len(), f.rows(), f.kind)));
            }
        }
        if self.output_visibility == Visibility::Private {
            return Err(bad("private outputs (a proof would bind nothing)"));
        }
        Ok(())
    }
}

impl QModel {
    /// Checks that the model is well formed: settings in range, every tensor id defined before
    /// it is read and defined once, every step's sizes consistent with its tensors, every size
    /// small enough for the rows of a circuit of size `2^k`. A model that passes can be
    /// evaluated, laid out and measured ([`crate::circuit::check_fits`]) without a panic.
    pub fn validate(&self) -> Result<()> {
        let s = &self.settings;
        s.validate()?;
        let rows = 1usize << s.k;
        // A view may repeat elements (a convolution's windows), so a tensor may hold more values
        // than rows, but not without bound.
        let max_values = rows * 64;
        let mut numel = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            numel.push(product(&t.shape, max_values, &|| format!("tensor `{}` {:?}", t.name, t.shape))?);
        }
        let mut defined = vec![false; self.tensors.len()];
        let define = |defined: &mut [bool], id: usize, what: &str| match defined.get_mut(id) {
            Some(d) if !*d => {
                *d = true;
                Ok(())
            }
            Some(_) => Err(bad(format!("{what} redefines tensor {id}"))),
            None => Err(bad(format!("{what} names tensor {id}, of {}", numel.len()))),
        };
        for &i in &self.inputs {
            define(&mut defined, i, "an input")?;
        }
        for step in &self.steps {
            self.validate_step(step, &numel, &defined)?;
            define(&mut defined, step.output, &format!("step `{}`", step.node))?;
        }
        if self.outputs.is_empty() || self.outputs.iter().any(|&o| !defined.get(o).copied().unwrap_or(false)) {
            return Err(bad(format!("outputs {:?} are not all defined", self.outputs)));
        }
        // Sizes are bounded now, so the fit check's row count cannot overflow.
        check_fits(self).map_err(|e| bad(e.to_string()))?;
        Ok(())
    }

    fn validate_step(&self, step: &super::Step, numel: &[usize], defined: &[bool]) -> Result<()> {
        let node = &step.node;
        let read = |id: usize| -> Result<usize> {
            match defined.get(id) {
                Some(true) => Ok(numel[id]),
                _ => Err(bad(format!("step `{node}` reads tensor {id} before it is defined"))),
            }
        };
        let out = *numel.get(step.output).ok_or_else(|| bad(format!("step `{node}` defines tensor {}", step.output)))?;
        let max_shift = 2 * self.settings.lookup_bits;
        let rows = 1usize << self.settings.k;
        let consistent = match &step.kind {
            StepKind::Linear { input, rows: m, k, n, weight, bias, shift, checked } => {
                // One dot row per input value and lane group, at least: each factor fits the rows.
                let mk = product(&[*m, *k], rows, &|| format!("step `{node}`'s input"))?;
                let kn = product(&[*k, *n], rows * 64, &|| format!("step `{node}`'s weights"))?;
                let mn = product(&[*m, *n], rows, &|| format!("step `{node}`'s output"))?;
                let layout_fits = if *checked {
                    // Bounded factors (above): the check's row count cannot overflow.
                    check_rows(*m, *k, *n) <= rows && self.settings.challenge_advice == FREIVALDS_COLUMNS
                } else {
                    product(&[*m, n.div_ceil(self.settings.dot_lanes), k + 1], rows, &|| format!("step `{node}`'s dot rows"))? > 0
                };
                layout_fits && read(*input)? == mk && weight.len() == kn && bias.len() == mn && out == mn && *shift <= max_shift
            }
            StepKind::Elementwise { x, y, coeffs, shift } => {
                let same = y.map_or(Ok(true), |y| read(y).map(|len| len == coeffs.len()))?;
                same && read(*x)? == coeffs.len() && out == coeffs.len() && *shift <= max_shift
            }
            StepKind::DotPairs { a, b, width, shift, layout } => {
                let len = read(*a)?;
                let grid = match layout {
                    PairsLayout::Direct => true,
                    PairsLayout::Freivalds(d) => {
                        // The grid first: it bounds every factor (k·n by the tensor sizes), so the
                        // row count cannot overflow.
                        let grid = d.k == *width
                            && Some(len) == out.checked_mul(*width)
                            && d.batch.checked_mul(d.m).and_then(|x| x.checked_mul(d.n)) == Some(out);
                        grid && out > 0
                            && product(&[d.batch, check_rows(d.m, d.k, d.n)], rows, &|| format!("step `{node}`'s challenge check"))? > 0
                            && self.settings.challenge_advice == FREIVALDS_COLUMNS
                    }
                };
                grid && *width > 0 && read(*b)? == len && Some(len) == out.checked_mul(*width) && *shift <= max_shift
            }
            StepKind::Relu { input } => read(*input)? == out,
            StepKind::Function { input, spec } => {
                read(*input)? == out && self.settings.function_tables.contains(spec) && spec.in_scale <= self.settings.scale_bits
            }
            StepKind::View { input, index } => {
                let len = read(*input)?;
                index.len() == out && index.iter().flatten().all(|&i| i < len)
            }
        };
        if consistent {
            Ok(())
        } else {
            Err(bad(format!("step `{node}` ({}): its sizes, shift or table disagree with its tensors and settings", step.op_type)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{compile, CompileOptions};
    use crate::data::InputData;

    fn model(name: &str) -> QModel {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name);
        let cal = InputData::from_json(&std::fs::read_to_string(dir.join("calibration.json")).unwrap()).unwrap().input_data;
        compile(&std::fs::read(dir.join("model.onnx")).unwrap(), Some(&cal), &CompileOptions::default()).unwrap().model
    }

    fn assert_malformed(m: &QModel, what: &str) {
        assert!(matches!(m.validate(), Err(Error::MalformedModel { .. })), "{what}: {:?}", m.validate());
    }

    fn first(m: &mut QModel, kind: fn(&StepKind) -> bool) -> &mut StepKind {
        &mut m.steps.iter_mut().find(|s| kind(&s.kind)).expect("a step of that kind").kind
    }

    #[test]
    fn compiled_models_are_well_formed() {
        for name in ["tiny", "cnn", "transformer"] {
            model(name).validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn evaluation_refuses_a_table_finer_than_the_activations_as_the_layout_does() {
        let mut m = model("transformer");
        m.settings.scale_bits = 0;
        let zeros: Vec<Vec<i64>> = m.input_sizes().into_iter().map(|n| vec![0; n]).collect();
        assert!(matches!(m.eval_quantized(&zeros), Err(Error::MalformedModel { .. })), "{:?}", m.eval_quantized(&zeros).err());
    }

    #[test]
    fn each_inconsistency_is_named_not_a_panic() {
        let good = model("transformer");
        type Edit = fn(&mut QModel);
        let edits: [(&str, Edit); 20] = [
            ("k beyond the field", |m| m.settings.k = 40),
            ("no lookup bits", |m| m.settings.lookup_bits = 0),
            ("value bits above two limbs", |m| m.settings.value_bits = 2 * m.settings.lookup_bits + 1),
            ("no dot lanes", |m| m.settings.dot_lanes = 0),
            ("a million advice columns", |m| m.settings.num_advice = 1 << 20),
            ("a shape whose size overflows", |m| m.tensors[0].shape = vec![usize::MAX, 2]),
            ("an input id out of range", |m| m.inputs[0] = 1 << 30),
            ("an output never defined", |m| m.outputs.push(1 << 30)),
            ("a step reading a later tensor", |m| {
                let last = m.steps.last().expect("steps").output;
                if let StepKind::Linear { input, .. } = first(m, |k| matches!(k, StepKind::Linear { .. })) {
                    *input = last;
                }
            }),
            ("a tensor defined twice", |m| m.steps[1].output = m.steps[0].output),
            ("weights of the wrong length", |m| {
                if let StepKind::Linear { weight, .. } = first(m, |k| matches!(k, StepKind::Linear { .. })) {
                    weight.pop();
                }
            }),
            ("a view past its input", |m| {
                if let StepKind::View { index, .. } = first(m, |k| matches!(k, StepKind::View { .. })) {
                    index[0] = Some(usize::MAX);
                }
            }),
            ("a shift wider than two limbs", |m| {
                let wide = 2 * m.settings.lookup_bits + 1;
                if let StepKind::Elementwise { shift, .. } = first(m, |k| matches!(k, StepKind::Elementwise { .. })) {
                    *shift = wide;
                }
            }),
            ("a product width of zero", |m| {
                if let StepKind::DotPairs { width, .. } = first(m, |k| matches!(k, StepKind::DotPairs { .. })) {
                    *width = 0;
                }
            }),
            ("a challenge check of another shape", |m| {
                if let StepKind::DotPairs { layout: PairsLayout::Freivalds(d), .. } = first(m, |k| matches!(k, StepKind::DotPairs { .. })) {
                    d.n += 1;
                }
            }),
            ("a challenge check without its columns", |m| m.settings.challenge_advice = 0),
            ("a checked projection in a circuit without the second phase", |m| {
                m.settings.challenge_advice = 0;
                for s in &mut m.steps {
                    if let StepKind::DotPairs { layout, .. } = &mut s.kind {
                        *layout = PairsLayout::Direct;
                    }
                }
                if let StepKind::Linear { checked, .. } = first(m, |k| matches!(k, StepKind::Linear { rows, .. } if *rows > 1)) {
                    *checked = true;
                }
            }),
            ("two second-phase columns", |m| m.settings.challenge_advice = 2),
            ("a function without its table", |m| {
                if let StepKind::Function { spec, .. } = first(m, |k| matches!(k, StepKind::Function { .. })) {
                    spec.hi += 1;
                }
            }),
            ("more rows than 2^k", |m| m.settings.k = 4),
        ];
        for (what, edit) in edits {
            let mut m = good.clone();
            edit(&mut m);
            assert_malformed(&m, what);
        }
    }
}
