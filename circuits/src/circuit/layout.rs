//! Synthesis state and one layout function per step kind. Every value laid out comes from the
//! model's evaluation ([`crate::quant::Trace`]); the layout converts integers to field elements
//! and places them, and computes nothing the evaluation does not (the dot chip's running sums
//! are the chip's own witness).

use std::ops::Range;

use halo2_proofs::circuit::{Cell, Layouter, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Column, Error as PlonkError};
use serde::Serialize;

use crate::chips::dot::{DotChip, DotWitness};
use crate::chips::elementwise::ElementwiseChip;
use crate::chips::freivalds::{Factor, ValueCell};
use crate::chips::function::{FunctionChip, FunctionSpec};
use crate::chips::requant::{RequantChip, RequantParams, RequantWitness};
use crate::chips::{fr_from_i128, fr_from_i64, DotInstructions, ElementwiseInstructions, QCell, RequantInstructions, RowCursor};
use crate::ir::MatMulDims;
use crate::quant::RequantValues;

pub(super) type SynthResult<T> = std::result::Result<T, PlonkError>;

/// Where one region of the layout lies, so that an audit can say what a cell belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegionSpan {
    /// The region's name (`"requant"`, `"dot"`, `"input commitment"`, …).
    pub name: &'static str,
    /// The step it belongs to (`None`: the inputs, the binding, the outputs, the zero cell).
    pub step: Option<usize>,
    /// Its rows.
    pub rows: Range<usize>,
    /// Whether it lies in the second phase's columns (a matrix-product check), whose rows
    /// overlap the first phase's.
    pub second_phase: bool,
}

/// Synthesis state: the row cursor, the chips and the regions laid out so far.
pub(super) struct Layout {
    pub(super) cursor: RowCursor,
    pub(super) dot: DotChip,
    pub(super) requant: RequantChip,
    pub(super) elementwise: ElementwiseChip,
    pub(super) lanes: usize,
    /// A cell fixed to 0, for zero padding (made on first use).
    pub(super) zero: Option<QCell>,
    pub(super) zero_column: Column<Advice>,
    /// The zero cell's value: 0, except under a mutation.
    pub(super) zero_value: i64,
    /// The step being laid out, for [`RegionSpan::step`].
    pub(super) step: Option<usize>,
    pub(super) spans: Vec<RegionSpan>,
    /// Matrix products whose sums wait for the second phase's random-challenge check.
    pub(super) checks: Vec<PendingCheck>,
}

/// One matrix product `C − bias = A·B` to check in the second phase (row-major).
pub(super) struct PendingCheck {
    pub(super) a: Vec<ValueCell>,
    pub(super) b: PendingFactor,
    pub(super) c: Vec<ValueCell>,
    /// Empty: no bias.
    pub(super) bias: Vec<Fr>,
    pub(super) dims: (usize, usize, usize),
    /// The step it checks (for [`RegionSpan::step`]).
    pub(super) step: Option<usize>,
}

/// The `B` factor of a pending check, owned ([`Factor`] borrows it).
pub(super) enum PendingFactor {
    /// First-phase cells (an activation).
    Cells(Vec<ValueCell>),
    /// Constant weights.
    Fixed(Vec<Fr>),
}

impl PendingCheck {
    /// The `B` factor as the chip takes it.
    pub(super) fn b(&self) -> Factor<'_> {
        match &self.b {
            PendingFactor::Cells(c) => Factor::Cells(c),
            PendingFactor::Fixed(f) => Factor::Fixed(f),
        }
    }
}

impl Layout {
    /// Reserves `rows` rows for a region called `name`.
    pub(super) fn alloc(&mut self, rows: usize, name: &'static str) -> SynthResult<usize> {
        let off = self.cursor.alloc(rows)?;
        self.spans.push(RegionSpan { name, step: self.step, rows: off..off + rows, second_phase: false });
        Ok(off)
    }

    /// The shared constant-zero cell (one row, made on first use).
    pub(super) fn zero(&mut self, layouter: &mut impl Layouter<Fr>) -> SynthResult<QCell> {
        if let Some(z) = self.zero {
            return Ok(z);
        }
        let step = self.step.take();
        let off = self.alloc(1, "zero")?;
        self.step = step;
        let (col, value) = (self.zero_column, self.zero_value);
        let cell = layouter.assign_region(
            || "zero",
            |mut region| {
                let cell = region.assign_advice(col, off, Value::known(fr_from_i64(value))).cell();
                region.constrain_constant(cell, Fr::zero())?;
                Ok(cell)
            },
        )?;
        let z = QCell { cell, value };
        self.zero = Some(z);
        Ok(z)
    }

    /// Rescale rows (`rows[i].a` is the value in `cells[i]`) in one region.
    pub(super) fn requant(
        &mut self,
        layouter: &mut impl Layouter<Fr>,
        cells: &[Cell],
        rows: &[RequantValues],
        params: RequantParams,
    ) -> SynthResult<Vec<QCell>> {
        if cells.len() != rows.len() {
            return Err(PlonkError::Synthesis);
        }
        let witness = self.requant_witness(rows);
        let off = self.alloc(cells.len(), "requant")?;
        let chip = &self.requant;
        layouter.assign_region(|| "requant", |mut region| chip.assign_rows(&mut region, off, cells, params, &witness))
    }

    /// The requant chip's cells for evaluated rescale rows.
    pub(super) fn requant_witness(&self, rows: &[RequantValues]) -> Vec<RequantWitness> {
        let l = self.requant.lookup_bits();
        rows.iter().map(|&r| RequantWitness::new(r, l)).collect()
    }

    /// Dot products of `x` (viewed as `[rows, k]`) with constant weights and biases, in groups
    /// of `lanes` outputs; each final sum is the rescale row's input.
    pub(super) fn linear(
        &mut self,
        layouter: &mut impl Layouter<Fr>,
        x: &[QCell],
        (rows, k, n): (usize, usize, usize),
        (weight, bias): (&[i64], &[i64]),
        rescale: &[RequantValues],
        shift: u32,
    ) -> SynthResult<Vec<QCell>> {
        if x.len() != rows * k || rescale.len() != rows * n {
            return Err(PlonkError::Synthesis);
        }
        let mut acc_cells = Vec::with_capacity(rows * n);
        for m in 0..rows {
            let xs = &x[m * k..(m + 1) * k];
            let x_cells: Vec<Cell> = xs.iter().map(|c| c.cell).collect();
            let x_fr: Vec<Fr> = xs.iter().map(|c| fr_from_i64(c.value)).collect();
            for start in (0..n).step_by(self.lanes) {
                let lanes: Vec<usize> = (start..n.min(start + self.lanes)).collect();
                let weights: Vec<Vec<Fr>> = lanes
                    .iter()
                    .map(|&j| std::iter::once(bias[m * n + j]).chain((0..k).map(|i| weight[i * n + j])).map(fr_from_i64).collect())
                    .collect();
                let sums: Vec<i128> = lanes.iter().map(|&j| rescale[m * n + j].a).collect();
                let witness = with_final_sums(DotWitness::compute(&x_fr, &weights), &sums)?;
                let off = self.alloc(k + 1, "dot")?;
                let chip = &self.dot;
                let cells =
                    layouter.assign_region(|| "dot", |mut region| chip.assign_group(&mut region, off, &x_cells, &weights, &witness))?;
                acc_cells.extend(cells);
            }
        }
        self.requant(layouter, &acc_cells, rescale, RequantParams { shift, relu: false })
    }

    /// The sums of the matrix product whose gathered factors are `a` and `b`, laid out as the
    /// inputs of their rescale rows and left for the second phase's random-challenge check;
    /// then rescaled once by `2^shift`. The gathered cells must be the factors' own cells in
    /// the order [`MatMulDims`] names, or the check would prove another product: each one is
    /// compared with its matrix entry's, and a mismatch fails synthesis.
    pub(super) fn matmul_checked(
        &mut self,
        layouter: &mut impl Layouter<Fr>,
        (a, b): (&[QCell], &[QCell]),
        d: MatMulDims,
        rescale: &[RequantValues],
        shift: u32,
    ) -> SynthResult<Vec<QCell>> {
        let (m, k, n) = (d.m, d.k, d.n);
        if a.len() != d.macs() || b.len() != d.macs() || rescale.len() != d.batch * m * n {
            return Err(PlonkError::Synthesis);
        }
        let pair = |bt: usize, i: usize, j: usize, t: usize| ((bt * m + i) * n + j) * k + t;
        let same = |x: &QCell, y: &QCell| x.cell.column == y.cell.column && x.cell.row_offset == y.cell.row_offset;
        for bt in 0..d.batch {
            for i in 0..m {
                for j in 0..n {
                    for t in 0..k {
                        let p = pair(bt, i, j, t);
                        if !same(&a[p], &a[pair(bt, i, 0, t)]) || !same(&b[p], &b[pair(bt, 0, j, t)]) {
                            return Err(PlonkError::Synthesis);
                        }
                    }
                }
            }
        }
        let value = |c: &QCell| ValueCell { cell: c.cell, value: Value::known(fr_from_i64(c.value)) };
        let (sums, out) = self.requant_unchecked(layouter, rescale, shift)?;
        for bt in 0..d.batch {
            let a = (0..m).flat_map(|i| (0..k).map(move |t| (i, t))).map(|(i, t)| value(&a[pair(bt, i, 0, t)])).collect();
            let b = (0..k).flat_map(|t| (0..n).map(move |j| (t, j))).map(|(t, j)| value(&b[pair(bt, 0, j, t)])).collect();
            let c = (0..m * n)
                .map(|e| ValueCell { cell: sums[bt * m * n + e], value: Value::known(fr_from_i128(rescale[bt * m * n + e].a)) })
                .collect();
            self.checks.push(PendingCheck { a, b: PendingFactor::Cells(b), c, bias: Vec::new(), dims: (m, k, n), step: self.step });
        }
        Ok(out)
    }

    /// `x` (viewed as `[rows, k]`) times constant weights plus biases, the sums laid out as the
    /// inputs of their rescale rows and left for the second phase's random-challenge check
    /// (`W` read from the check's fixed column); then rescaled once by `2^shift`.
    pub(super) fn linear_checked(
        &mut self,
        layouter: &mut impl Layouter<Fr>,
        x: &[QCell],
        (rows, k, n): (usize, usize, usize),
        (weight, bias): (&[i64], &[i64]),
        rescale: &[RequantValues],
        shift: u32,
    ) -> SynthResult<Vec<QCell>> {
        if x.len() != rows * k || rescale.len() != rows * n || weight.len() != k * n || bias.len() != rows * n {
            return Err(PlonkError::Synthesis);
        }
        let (sums, out) = self.requant_unchecked(layouter, rescale, shift)?;
        let a = x.iter().map(|c| ValueCell { cell: c.cell, value: Value::known(fr_from_i64(c.value)) }).collect();
        let c = sums.iter().zip(rescale).map(|(&cell, r)| ValueCell { cell, value: Value::known(fr_from_i128(r.a)) }).collect();
        let b = PendingFactor::Fixed(weight.iter().map(|&w| fr_from_i64(w)).collect());
        let bias = bias.iter().map(|&b| fr_from_i64(b)).collect();
        self.checks.push(PendingCheck { a, b, c, bias, dims: (rows, k, n), step: self.step });
        Ok(out)
    }

    /// Rescale rows whose inputs are their own cells (for sums a second-phase check binds).
    fn requant_unchecked(
        &mut self,
        layouter: &mut impl Layouter<Fr>,
        rescale: &[RequantValues],
        shift: u32,
    ) -> SynthResult<(Vec<Cell>, Vec<QCell>)> {
        let witness = self.requant_witness(rescale);
        let off = self.alloc(rescale.len(), "requant")?;
        let chip = &self.requant;
        let params = RequantParams { shift, relu: false };
        layouter.assign_region(|| "requant", |mut region| chip.assign_rows_input_unchecked(&mut region, off, params, &witness))
    }

    /// Products `a·b` (exact, not rescaled), summed per row by single-lane dot groups with
    /// weights 1, then rescaled once by `2^shift`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dot_pairs(
        &mut self,
        layouter: &mut impl Layouter<Fr>,
        (a, b): (&[QCell], &[QCell]),
        width: usize,
        products: &[i128],
        rescale: &[RequantValues],
        shift: u32,
    ) -> SynthResult<Vec<QCell>> {
        if a.len() != b.len() || products.len() != a.len() || width == 0 || rescale.len() * width != a.len() {
            return Err(PlonkError::Synthesis);
        }
        let z_fr: Vec<Fr> = products.iter().map(|&v| fr_from_i128(v)).collect();
        let coeffs_fr = vec![[0i64, 0, 1, 0].map(fr_from_i64); a.len()];
        let off = self.alloc(a.len(), "products")?;
        let chip = &self.elementwise;
        let cells = layouter.assign_region(|| "products", |mut region| chip.assign_rows(&mut region, off, a, b, &coeffs_fr, &z_fr))?;
        let ones = vec![std::iter::once(Fr::zero()).chain(std::iter::repeat_n(Fr::one(), width)).collect::<Vec<_>>()];
        let mut acc_cells = Vec::with_capacity(rescale.len());
        for ((row, xs), r) in cells.chunks(width).zip(z_fr.chunks(width)).zip(rescale) {
            let witness = with_final_sums(DotWitness::compute(xs, &ones), &[r.a])?;
            let off = self.alloc(width + 1, "dot pairs")?;
            let chip = &self.dot;
            acc_cells
                .extend(layouter.assign_region(|| "dot pairs", |mut region| chip.assign_group(&mut region, off, row, &ones, &witness))?);
        }
        self.requant(layouter, &acc_cells, rescale, RequantParams { shift, relu: false })
    }

    /// `z = cx·x + cy·y + cxy·x·y + c0` per element, rescaled by `2^shift`: one row per element,
    /// on which `z` is the rescale row's input (the elementwise gate's `z` column is the requant
    /// chip's input column, so the gate binds the input that the rows leave unchecked).
    pub(super) fn elementwise(
        &mut self,
        layouter: &mut impl Layouter<Fr>,
        (x, y): (&[QCell], Option<&[QCell]>),
        coeffs: &[[i64; 4]],
        rescale: &[RequantValues],
        shift: u32,
    ) -> SynthResult<Vec<QCell>> {
        if x.len() != coeffs.len() || rescale.len() != coeffs.len() || y.is_some_and(|y| y.len() != x.len()) {
            return Err(PlonkError::Synthesis);
        }
        if self.elementwise.output_column() != self.requant.input_column() {
            return Err(PlonkError::Synthesis);
        }
        let coeffs_fr: Vec<[Fr; 4]> = coeffs.iter().map(|c| c.map(fr_from_i64)).collect();
        // Without a second operand, `y` is copied from the zero cell, so it is never free.
        let zeros;
        let y = match y {
            Some(y) => y,
            None => {
                zeros = vec![self.zero(layouter)?; x.len()];
                &zeros
            }
        };
        let witness = self.requant_witness(rescale);
        let off = self.alloc(x.len(), "elementwise")?;
        let (ew, rq) = (&self.elementwise, &self.requant);
        let params = RequantParams { shift, relu: false };
        layouter.assign_region(
            || "elementwise",
            |mut region| {
                ew.assign_operands(&mut region, off, x, y, &coeffs_fr)?;
                Ok(rq.assign_rows_input_unchecked(&mut region, off, params, &witness)?.1)
            },
        )
    }

    /// A rescale to the table's input scale (rounded, range-checked) and a lookup with the table
    /// outputs `ys`, one row per element: the lookup reads the rescale's output cell itself.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn function(
        &mut self,
        layouter: &mut impl Layouter<Fr>,
        chip: &FunctionChip,
        x: &[QCell],
        spec: &FunctionSpec,
        shift: u32,
        rescale: &[RequantValues],
        ys: &[i64],
    ) -> SynthResult<Vec<QCell>> {
        if x.len() != rescale.len() || ys.len() != x.len() || chip.input_column() != self.requant.output_column() {
            return Err(PlonkError::Synthesis);
        }
        let cells: Vec<Cell> = x.iter().map(|c| c.cell).collect();
        let witness = self.requant_witness(rescale);
        let off = self.alloc(x.len(), "function")?;
        let rq = &self.requant;
        let params = RequantParams { shift, relu: false };
        layouter.assign_region(
            || "function",
            |mut region| {
                rq.assign_rows(&mut region, off, &cells, params, &witness)?;
                chip.assign_outputs(&mut region, off, spec.id, ys)
            },
        )
    }

    /// Copies of `cells` that no constraint ties to them (a circuit variant with one wire cut,
    /// for the tests that show `zkinfer mutate` finds a missing copy).
    #[cfg(test)]
    pub(super) fn unwired(&mut self, layouter: &mut impl Layouter<Fr>, cells: &[QCell]) -> SynthResult<Vec<QCell>> {
        let off = self.alloc(cells.len(), "unwired")?;
        let col = self.zero_column;
        layouter.assign_region(
            || "unwired",
            |mut region| {
                Ok(cells
                    .iter()
                    .enumerate()
                    .map(|(i, c)| QCell {
                        cell: region.assign_advice(col, off + i, Value::known(fr_from_i64(c.value))).cell(),
                        value: c.value,
                    })
                    .collect())
            },
        )
    }
}

/// The dot witness with each lane's final sum taken from the evaluation (equal to the chip's
/// own running sum for an honest witness; a mutated sum is what the "dot mac" gate must catch).
fn with_final_sums(mut witness: DotWitness, sums: &[i128]) -> SynthResult<DotWitness> {
    if witness.acc.len() != sums.len() {
        return Err(PlonkError::Synthesis);
    }
    for (lane, &sum) in witness.acc.iter_mut().zip(sums) {
        *lane.last_mut().ok_or(PlonkError::Synthesis)? = fr_from_i128(sum);
    }
    Ok(witness)
}

/// `cells` with the value at `element` shifted by `delta` (a mutation's wrong read).
pub(super) fn shifted(mut cells: Vec<QCell>, read: Option<(usize, i64)>) -> SynthResult<Vec<QCell>> {
    if let Some((element, delta)) = read {
        cells.get_mut(element).ok_or(PlonkError::Synthesis)?.value += delta;
    }
    Ok(cells)
}
