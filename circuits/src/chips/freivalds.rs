//! Matrix products checked with a random challenge (Freivalds' check), in second-phase columns.
//!
//! For `C = A·B` with `A` of `m×k`, `B` of `k×n`, the prover commits `A`, `B` and `C` in the
//! first phase; the challenge `ρ` is drawn after those commitments. With `r = (ρ^{n-1}, …, ρ, 1)`:
//!
//! - `v = B·r`, each `v_t = Σ_j B[t][j]·ρ^{n-1-j}` by Horner's rule (`k` rows of `n`);
//! - `u = C·r`, each `u_i` the same way (`m` rows of `n`);
//! - `w_i = Σ_t A[i][t]·v_t` (`m` dot products of length `k`), and `u_i = w_i`.
//!
//! That costs `k·n + m·n + m·(k+1)` rows of three cells, against `2·m·n·k` full rows for the
//! direct products of two activations. For a product with constant weights (`B = W`, a
//! projection applied to every position of a sequence) the Horner chains of `W` read it from a
//! fixed column, and `C` may carry a constant bias, which the chains of `C` subtract (`f`). If `C ≠ A·B`, some row `i` has `u_i − w_i = Σ_j D[i][j]·ρ^{n-1-j}` with
//! `D = C − A·B` nonzero: a nonzero polynomial of degree at most `n − 1` in `ρ`, so the check
//! passes with probability at most `(n − 1)/p` over BN254's scalar field (papers/design.md §4.5).
//!
//! Row layout, columns `x`, `y`, `acc` (all second phase):
//!
//! | rows | x | y | acc | gate |
//! |---|---|---|---|---|
//! | Horner, first | `e_0` (copied) | | `e_0 + f` | `freivalds horner first` |
//! | Horner, next | `e_j` (copied) | | `acc_prev·ρ + e_j + f` | `freivalds horner` |
//! | Horner of constants, first | | | `f` | `freivalds horner fixed first` |
//! | Horner of constants, next | | | `acc_prev·ρ + f` | `freivalds horner fixed` |
//! | dot, first | `A[i][0]` (copied) | `v_0` (copied) | `x·y` | `freivalds dot first` |
//! | dot, next | `A[i][t]` (copied) | `v_t` (copied) | `acc_prev + x·y` | `freivalds dot` |
//! | check | `u_i` (copied) | | | `freivalds check`: `x = acc_prev` |
//!
//! `f` is the chip's own fixed column: 0, a negated bias, or a constant factor's entry.

use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Challenge, Column, ConstraintSystem, Error as PlonkError, FirstPhase, Fixed, SecondPhase, Selector};
use halo2_proofs::poly::Rotation;

use super::FreivaldsInstructions;

/// Second-phase advice columns the chip uses.
pub const COLUMNS: usize = 3;

/// Rows the check of one `m×k · k×n` product takes.
pub fn check_rows(m: usize, k: usize, n: usize) -> usize {
    k * n + m * n + m * (k + 1)
}

/// Columns, selectors and the challenge of the Freivalds chip.
#[derive(Clone, Debug)]
pub struct FreivaldsConfig {
    x: Column<Advice>,
    y: Column<Advice>,
    acc: Column<Advice>,
    f: Column<Fixed>,
    rho: Challenge,
    q_horner_first: Selector,
    q_horner: Selector,
    q_fixed_first: Selector,
    q_fixed: Selector,
    q_dot_first: Selector,
    q_dot: Selector,
    q_check: Selector,
}

impl FreivaldsConfig {
    /// The challenge `ρ`.
    pub fn challenge(&self) -> Challenge {
        self.rho
    }

    /// The second-phase advice columns.
    pub fn columns(&self) -> [Column<Advice>; COLUMNS] {
        [self.x, self.y, self.acc]
    }
}

/// The Freivalds chip.
#[derive(Clone, Debug)]
pub struct FreivaldsChip {
    config: FreivaldsConfig,
}

/// A value laid out in a cell (`value` unknown at key generation and before the challenge).
#[derive(Clone, Copy, Debug)]
pub struct ValueCell {
    /// Where it lives.
    pub cell: Cell,
    /// Its value.
    pub value: Value<Fr>,
}

/// A factor of a checked product: cells of the first phase, or constants.
#[derive(Clone, Copy, Debug)]
pub enum Factor<'a> {
    /// Committed cells, row-major.
    Cells(&'a [ValueCell]),
    /// Constants, row-major (fixed by the verifying key).
    Fixed(&'a [Fr]),
}

impl Factor<'_> {
    fn len(&self) -> usize {
        match self {
            Factor::Cells(c) => c.len(),
            Factor::Fixed(f) => f.len(),
        }
    }
}

/// The running sums of Horner's rule over `values` at `rho`: `acc_0 = e_0`, `acc_j = acc_{j-1}·ρ + e_j`.
pub fn horner_accumulators(values: &[Value<Fr>], rho: Value<Fr>) -> Vec<Value<Fr>> {
    let mut acc: Option<Value<Fr>> = None;
    values
        .iter()
        .map(|&e| {
            let next = match acc {
                None => e,
                Some(prev) => prev * rho + e,
            };
            acc = Some(next);
            next
        })
        .collect()
}

/// The running sums of `Σ_t x_t·y_t`.
pub fn dot_accumulators(x: &[Value<Fr>], y: &[Value<Fr>]) -> Vec<Value<Fr>> {
    let mut acc = Value::known(Fr::zero());
    x.iter()
        .zip(y)
        .map(|(&a, &b)| {
            acc = acc + a * b;
            acc
        })
        .collect()
}

impl FreivaldsChip {
    /// Creates three second-phase advice columns (with equality), a fixed column, the
    /// challenge and the gates.
    pub fn configure(meta: &mut ConstraintSystem<Fr>) -> FreivaldsConfig {
        // The challenge is usable after the first phase, where A, B and C are committed.
        let rho = meta.challenge_usable_after(FirstPhase);
        let [x, y, acc] = [(); COLUMNS].map(|_| meta.advice_column_in(SecondPhase));
        [x, y, acc].iter().for_each(|c| meta.enable_equality(*c));
        let f = meta.fixed_column();
        let [q_horner_first, q_horner, q_fixed_first, q_fixed, q_dot_first, q_dot, q_check] = [(); 7].map(|_| meta.selector());
        meta.create_gate("freivalds horner first", |vc| {
            let q = vc.query_selector(q_horner_first);
            let e = vc.query_advice(x, Rotation::cur()) + vc.query_fixed(f, Rotation::cur());
            vec![q * (vc.query_advice(acc, Rotation::cur()) - e)]
        });
        meta.create_gate("freivalds horner", |vc| {
            let q = vc.query_selector(q_horner);
            let r = vc.query_challenge(rho);
            let (cur, prev) = (vc.query_advice(acc, Rotation::cur()), vc.query_advice(acc, Rotation::prev()));
            let e = vc.query_advice(x, Rotation::cur()) + vc.query_fixed(f, Rotation::cur());
            vec![q * (cur - prev * r - e)]
        });
        meta.create_gate("freivalds horner fixed first", |vc| {
            let q = vc.query_selector(q_fixed_first);
            vec![q * (vc.query_advice(acc, Rotation::cur()) - vc.query_fixed(f, Rotation::cur()))]
        });
        meta.create_gate("freivalds horner fixed", |vc| {
            let q = vc.query_selector(q_fixed);
            let r = vc.query_challenge(rho);
            let (cur, prev) = (vc.query_advice(acc, Rotation::cur()), vc.query_advice(acc, Rotation::prev()));
            vec![q * (cur - prev * r - vc.query_fixed(f, Rotation::cur()))]
        });
        meta.create_gate("freivalds dot first", |vc| {
            let q = vc.query_selector(q_dot_first);
            let xy = vc.query_advice(x, Rotation::cur()) * vc.query_advice(y, Rotation::cur());
            vec![q * (vc.query_advice(acc, Rotation::cur()) - xy)]
        });
        meta.create_gate("freivalds dot", |vc| {
            let q = vc.query_selector(q_dot);
            let xy = vc.query_advice(x, Rotation::cur()) * vc.query_advice(y, Rotation::cur());
            let (cur, prev) = (vc.query_advice(acc, Rotation::cur()), vc.query_advice(acc, Rotation::prev()));
            vec![q * (cur - prev - xy)]
        });
        meta.create_gate("freivalds check", |vc| {
            let q = vc.query_selector(q_check);
            vec![q * (vc.query_advice(x, Rotation::cur()) - vc.query_advice(acc, Rotation::prev()))]
        });
        FreivaldsConfig { x, y, acc, f, rho, q_horner_first, q_horner, q_fixed_first, q_fixed, q_dot_first, q_dot, q_check }
    }

    /// Wraps a configuration.
    pub fn construct(config: FreivaldsConfig) -> Self {
        FreivaldsChip { config }
    }
}

impl FreivaldsInstructions for FreivaldsChip {
    fn assign_horner(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        inputs: &[ValueCell],
        constants: &[Fr],
        acc: &[Value<Fr>],
    ) -> Result<ValueCell, PlonkError> {
        let c = &self.config;
        if inputs.is_empty() || acc.len() != inputs.len() || !(constants.is_empty() || constants.len() == inputs.len()) {
            return Err(PlonkError::Synthesis);
        }
        let mut last = None;
        for (r, (input, a)) in inputs.iter().zip(acc).enumerate() {
            let row = offset + r;
            (if r == 0 { c.q_horner_first } else { c.q_horner }).enable(region, row)?;
            copy_in(region, c.x, row, input);
            region.assign_fixed(c.f, row, constants.get(r).copied().unwrap_or(Fr::zero()));
            last = Some(ValueCell { cell: region.assign_advice(c.acc, row, *a).cell(), value: *a });
        }
        last.ok_or(PlonkError::Synthesis)
    }

    fn assign_horner_fixed(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        values: &[Fr],
        acc: &[Value<Fr>],
    ) -> Result<ValueCell, PlonkError> {
        let c = &self.config;
        if values.is_empty() || acc.len() != values.len() {
            return Err(PlonkError::Synthesis);
        }
        let mut last = None;
        for (r, (v, a)) in values.iter().zip(acc).enumerate() {
            let row = offset + r;
            (if r == 0 { c.q_fixed_first } else { c.q_fixed }).enable(region, row)?;
            region.assign_fixed(c.f, row, *v);
            last = Some(ValueCell { cell: region.assign_advice(c.acc, row, *a).cell(), value: *a });
        }
        last.ok_or(PlonkError::Synthesis)
    }

    fn assign_dot_check(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        (a, v): (&[ValueCell], &[ValueCell]),
        acc: &[Value<Fr>],
        u: ValueCell,
    ) -> Result<(), PlonkError> {
        let c = &self.config;
        if a.is_empty() || v.len() != a.len() || acc.len() != a.len() {
            return Err(PlonkError::Synthesis);
        }
        for (t, ((x, y), s)) in a.iter().zip(v).zip(acc).enumerate() {
            let row = offset + t;
            (if t == 0 { c.q_dot_first } else { c.q_dot }).enable(region, row)?;
            copy_in(region, c.x, row, x);
            copy_in(region, c.y, row, y);
            region.assign_advice(c.acc, row, *s);
        }
        let row = offset + a.len();
        c.q_check.enable(region, row)?;
        copy_in(region, c.x, row, &u);
        Ok(())
    }
}

/// Assigns `from`'s value at `(column, row)` and constrains the two cells equal.
fn copy_in(region: &mut Region<'_, Fr>, column: Column<Advice>, row: usize, from: &ValueCell) {
    let cell = region.assign_advice(column, row, from.value);
    region.constrain_equal(cell.cell(), from.cell);
}

/// Lays out the check of `C − bias = A·B` (row-major; `A` is `m×k`, `B` is `k×n`, `C` and
/// `bias` are `m×n`, `bias` empty for none) from `offset`, with the honest second-phase
/// witness. Uses [`check_rows`] rows.
pub fn assign_matmul_check(
    chip: &impl FreivaldsInstructions,
    region: &mut Region<'_, Fr>,
    offset: usize,
    (a, b, c, bias): (&[ValueCell], Factor<'_>, &[ValueCell], &[Fr]),
    (m, k, n): (usize, usize, usize),
    rho: Value<Fr>,
) -> Result<(), PlonkError> {
    let sizes = a.len() == m * k && b.len() == k * n && c.len() == m * n && (bias.is_empty() || bias.len() == m * n);
    if m == 0 || k == 0 || n == 0 || !sizes {
        return Err(PlonkError::Synthesis);
    }
    let mut row = offset;
    let mut v = Vec::with_capacity(k);
    for t in 0..k {
        let out = match b {
            Factor::Cells(cells) => {
                let bt = &cells[t * n..(t + 1) * n];
                chip.assign_horner(region, row, bt, &[], &horner_accumulators(&values_of(bt), rho))?
            }
            Factor::Fixed(w) => {
                let wt = &w[t * n..(t + 1) * n];
                let known: Vec<Value<Fr>> = wt.iter().map(|&x| Value::known(x)).collect();
                chip.assign_horner_fixed(region, row, wt, &horner_accumulators(&known, rho))?
            }
        };
        v.push(out);
        row += n;
    }
    let mut u = Vec::with_capacity(m);
    for i in 0..m {
        let ci = &c[i * n..(i + 1) * n];
        let minus: Vec<Fr> = bias.get(i * n..(i + 1) * n).map_or(Vec::new(), |b| b.iter().map(|x| -*x).collect());
        let terms: Vec<Value<Fr>> =
            ci.iter().enumerate().map(|(j, e)| e.value + Value::known(minus.get(j).copied().unwrap_or(Fr::zero()))).collect();
        u.push(chip.assign_horner(region, row, ci, &minus, &horner_accumulators(&terms, rho))?);
        row += n;
    }
    let v_values = values_of(&v);
    for (ai, ui) in a.chunks(k).zip(u) {
        chip.assign_dot_check(region, row, (ai, &v), &dot_accumulators(&values_of(ai), &v_values), ui)?;
        row += k + 1;
    }
    Ok(())
}

fn values_of(cells: &[ValueCell]) -> Vec<Value<Fr>> {
    cells.iter().map(|c| c.value).collect()
}

#[cfg(test)]
#[path = "freivalds_tests.rs"]
mod tests;
