//! Nonlinear functions through a lookup table: `y = f(x)` for every `x` in a calibrated range.
//!
//! Row layout (advice `x y`, fixed `id`, complex selector `q_fn`):
//!
//! | x (copy of the input) | y | id (which function table) |
//!
//! Lookup "function table": `(q·id, q·x, q·y)` must be a row of the table `(id, x, f_id(x))`.
//! Each function node has its own id, input range `[lo, hi]` (from calibration) and scales;
//! the table holds `f` evaluated exactly as [`FunctionSpec::apply`] computes it, so the
//! witness generator and the circuit agree bit for bit. An input outside `[lo, hi]` has no
//! table row: no proof exists for it, and witness generation reports it.
//!
//! The model circuit reads `x` from the requant chip's output column, so a function step's
//! lookup rows are its rescale rows ([`FunctionChip::assign_outputs`]): `x` is the rescaled
//! value itself, with no row or copy of its own.

use halo2_proofs::circuit::{Cell, Layouter, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Column, ConstraintSystem, Error as PlonkError, Fixed, Selector, TableColumn};
use halo2_proofs::poly::Rotation;
use serde::{Deserialize, Serialize};

use super::{fr_from_i64, QCell};

/// The functions a table can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FunctionKind {
    /// `e^x`
    Exp,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `tanh x`
    Tanh,
    /// `erf x`
    Erf,
    /// `x·Φ(x) = 0.5·x·(1 + erf(x/√2))`
    Gelu,
    /// `√x` (inputs below 0 are outside the domain)
    Sqrt,
    /// `1/x` (the table range must exclude 0)
    Reciprocal,
    /// `1/√x` (the table range must exclude 0)
    Rsqrt,
    /// Given values at the integers `lo..=hi` ([`FunctionSpec::values`]): a Gather from a
    /// constant by an activation holding integers (an embedding row by a token id).
    Table,
}

impl FunctionKind {
    /// The real function.
    pub fn eval(self, x: f64) -> f64 {
        match self {
            FunctionKind::Exp => x.exp(),
            FunctionKind::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            FunctionKind::Tanh => x.tanh(),
            FunctionKind::Erf => libm::erf(x),
            FunctionKind::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
            FunctionKind::Sqrt => x.max(0.0).sqrt(),
            FunctionKind::Reciprocal => 1.0 / x,
            FunctionKind::Rsqrt => 1.0 / x.sqrt(),
            // The values live in the spec (and, in float, in `Op::Table`), not in the kind.
            FunctionKind::Table => f64::NAN,
        }
    }
}

/// One function table: an id, the function, and its integer domain and scales.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSpec {
    /// Table id (≥ 1; 0 is the disabled-row entry).
    pub id: u32,
    /// The function.
    pub kind: FunctionKind,
    /// Input scale bits.
    pub in_scale: u32,
    /// Output scale bits.
    pub out_scale: u32,
    /// Smallest integer input.
    pub lo: i64,
    /// Largest integer input.
    pub hi: i64,
    /// For [`FunctionKind::Table`], the output at each input `lo..=hi`, at the output scale;
    /// empty for the other kinds.
    pub values: Vec<i64>,
}

impl FunctionSpec {
    /// `round(f(x / 2^in) · 2^out)`, or `None` outside `[lo, hi]`.
    pub fn apply(&self, x: i64) -> Option<i64> {
        if x < self.lo || x > self.hi {
            return None;
        }
        if self.kind == FunctionKind::Table {
            return usize::try_from(x - self.lo).ok().and_then(|i| self.values.get(i)).copied();
        }
        let real = x as f64 / (1u64 << self.in_scale) as f64;
        Some((self.kind.eval(real) * (1u64 << self.out_scale) as f64).round() as i64)
    }

    /// Table rows this function needs.
    pub fn rows(&self) -> usize {
        (self.hi - self.lo + 1).max(0) as usize
    }
}

/// Columns, selector and table of the function chip.
#[derive(Clone, Debug)]
pub struct FunctionConfig {
    x: Column<Advice>,
    y: Column<Advice>,
    id: Column<Fixed>,
    q_fn: Selector,
    table: [TableColumn; 3],
}

/// The function chip.
#[derive(Clone, Debug)]
pub struct FunctionChip {
    config: FunctionConfig,
}

impl FunctionChip {
    /// Creates the lookup.
    pub fn configure(meta: &mut ConstraintSystem<Fr>, x: Column<Advice>, y: Column<Advice>, id: Column<Fixed>) -> FunctionConfig {
        let q_fn = meta.complex_selector();
        let table = [meta.lookup_table_column(), meta.lookup_table_column(), meta.lookup_table_column()];
        meta.lookup("function table", |vc| {
            let q = vc.query_selector(q_fn);
            let (xv, yv, idv) =
                (vc.query_advice(x, Rotation::cur()), vc.query_advice(y, Rotation::cur()), vc.query_fixed(id, Rotation::cur()));
            vec![(q.clone() * idv, table[0]), (q.clone() * xv, table[1]), (q * yv, table[2])]
        });
        FunctionConfig { x, y, id, q_fn, table }
    }

    /// Wraps a configuration.
    pub fn construct(config: FunctionConfig) -> Self {
        FunctionChip { config }
    }

    /// Fills the table with every function's rows (after the `(0, 0, 0)` row).
    pub fn load(&self, layouter: &mut impl Layouter<Fr>, specs: &[FunctionSpec]) -> Result<(), PlonkError> {
        let t = self.config.table;
        layouter.assign_table(
            || "function table",
            |mut table| {
                let mut row = 0;
                let mut put = |row: usize, vals: [Fr; 3]| -> Result<(), PlonkError> {
                    for (col, v) in t.iter().zip(vals) {
                        table.assign_cell(|| "function", *col, row, || Value::known(v))?;
                    }
                    Ok(())
                };
                put(row, [Fr::zero(); 3])?;
                row += 1;
                for s in specs {
                    for x in s.lo..=s.hi {
                        let y = s.apply(x).ok_or(PlonkError::Synthesis)?;
                        put(row, [Fr::from(u64::from(s.id)), fr_from_i64(x), fr_from_i64(y)])?;
                        row += 1;
                    }
                }
                Ok(())
            },
        )
    }

    /// The column the lookup reads `x` from.
    pub fn input_column(&self) -> Column<Advice> {
        self.config.x
    }

    /// Lays out the outputs `ys` of one lookup row per element whose `x` another chip assigns
    /// in [`Self::input_column`] at the same rows (the model's rescale rows); returns them.
    pub fn assign_outputs(&self, region: &mut Region<'_, Fr>, offset: usize, id: u32, ys: &[i64]) -> Result<Vec<QCell>, PlonkError> {
        let c = &self.config;
        let mut out = Vec::with_capacity(ys.len());
        for (i, &y) in ys.iter().enumerate() {
            let row = offset + i;
            c.q_fn.enable(region, row)?;
            region.assign_fixed(c.id, row, Fr::from(u64::from(id)));
            let ya = region.assign_advice(c.y, row, Value::known(fr_from_i64(y)));
            out.push(QCell { cell: ya.cell(), value: y });
        }
        Ok(out)
    }

    /// Lays out one row per input (`inputs[i]` holds `xs[i]`) and returns the outputs `ys`.
    pub fn assign_rows(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        inputs: &[Cell],
        id: u32,
        xs: &[i64],
        ys: &[i64],
    ) -> Result<Vec<QCell>, PlonkError> {
        if inputs.len() != xs.len() || xs.len() != ys.len() {
            return Err(PlonkError::Synthesis);
        }
        for (i, (cell, &x)) in inputs.iter().zip(xs).enumerate() {
            let xa = region.assign_advice(self.config.x, offset + i, Value::known(fr_from_i64(x)));
            region.constrain_equal(xa.cell(), *cell);
        }
        self.assign_outputs(region, offset, id, ys)
    }
}

#[cfg(test)]
mod tests {
    use halo2_proofs::circuit::SimpleFloorPlanner;
    use halo2_proofs::dev::{MockProver, VerifyFailure};
    use halo2_proofs::plonk::{Circuit, Instance};

    use super::*;

    fn specs() -> Vec<FunctionSpec> {
        vec![
            FunctionSpec { id: 1, kind: FunctionKind::Sigmoid, in_scale: 4, out_scale: 6, lo: -40, hi: 40, values: Vec::new() },
            FunctionSpec { id: 2, kind: FunctionKind::Exp, in_scale: 4, out_scale: 6, lo: -64, hi: 0, values: Vec::new() },
            // An embedding column: token i → the given value.
            FunctionSpec { id: 3, kind: FunctionKind::Table, in_scale: 0, out_scale: 6, lo: 0, hi: 3, values: vec![5, -7, 0, 12] },
        ]
    }

    #[derive(Clone, Default)]
    struct TestCircuit {
        xs: Vec<i64>,
        id: u32,
        tamper: Option<(usize, i64)>,
    }

    impl Circuit<Fr> for TestCircuit {
        type Config = (FunctionConfig, Column<Advice>, Column<Instance>);
        type FloorPlanner = SimpleFloorPlanner;
        type Params = ();
        fn without_witnesses(&self) -> Self {
            self.clone()
        }
        fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
            let (x, y, src) = (meta.advice_column(), meta.advice_column(), meta.advice_column());
            let id = meta.fixed_column();
            [x, y, src].iter().for_each(|c| meta.enable_equality(*c));
            let instance = meta.instance_column();
            meta.enable_equality(instance);
            (FunctionChip::configure(meta, x, y, id), src, instance)
        }
        fn synthesize(&self, (config, src, instance): Self::Config, mut layouter: impl Layouter<Fr>) -> Result<(), PlonkError> {
            let chip = FunctionChip::construct(config);
            let all = specs();
            chip.load(&mut layouter, &all)?;
            let spec = &all[self.id as usize - 1];
            let mut ys: Vec<i64> = self.xs.iter().map(|&x| spec.apply(x).unwrap_or(0)).collect();
            if let Some((i, d)) = self.tamper {
                ys[i] += d;
            }
            let outs = layouter.assign_region(
                || "function test",
                |mut region| {
                    let cells: Vec<Cell> = self
                        .xs
                        .iter()
                        .enumerate()
                        .map(|(i, &x)| region.assign_advice(src, i, Value::known(fr_from_i64(x))).cell())
                        .collect();
                    chip.assign_rows(&mut region, 0, &cells, self.id, &self.xs, &ys)
                },
            )?;
            for (i, o) in outs.iter().enumerate() {
                layouter.constrain_instance(o.cell, instance, i);
            }
            Ok(())
        }
    }

    fn run(c: &TestCircuit) -> Result<(), Vec<VerifyFailure>> {
        let spec = &specs()[c.id as usize - 1];
        let mut ys: Vec<Fr> = c.xs.iter().map(|&x| fr_from_i64(spec.apply(x).unwrap_or(0))).collect();
        if let Some((i, d)) = c.tamper {
            ys[i] += fr_from_i64(d);
        }
        MockProver::run(8, c, vec![ys]).unwrap().verify()
    }

    fn lookup_failed(r: Result<(), Vec<VerifyFailure>>) -> bool {
        r.is_err_and(|fs| fs.iter().any(|f| matches!(f, VerifyFailure::Lookup { name, .. } if name == "function table")))
    }

    #[test]
    fn table_values_verify() {
        assert_eq!(run(&TestCircuit { xs: vec![-40, -3, 0, 7, 40], id: 1, tamper: None }), Ok(()));
        assert_eq!(run(&TestCircuit { xs: vec![-64, -16, 0], id: 2, tamper: None }), Ok(()));
        assert_eq!(specs()[0].apply(0), Some(32)); // sigmoid(0) = 0.5 at 2^6
    }

    #[test]
    fn tampered_table_output_fails_the_lookup() {
        assert!(lookup_failed(run(&TestCircuit { xs: vec![-40, -3, 0, 7], id: 1, tamper: Some((2, 1)) })));
    }

    #[test]
    fn a_gathered_column_gives_its_values_and_only_them() {
        assert_eq!(run(&TestCircuit { xs: vec![0, 1, 2, 3, 1], id: 3, tamper: None }), Ok(()));
        assert_eq!((specs()[2].apply(1), specs()[2].apply(4), specs()[2].apply(-1)), (Some(-7), None, None));
        // Token 1's row claimed for token 2 (the value of another index) fails the lookup.
        assert!(lookup_failed(run(&TestCircuit { xs: vec![2], id: 3, tamper: Some((0, -7)) })));
        // An index past the table has no entry at all.
        assert!(lookup_failed(run(&TestCircuit { xs: vec![4], id: 3, tamper: None })));
    }

    #[test]
    fn another_functions_value_fails_the_lookup() {
        // exp's table has x = -16 → round(e^-1 · 64) = 24; claiming it under sigmoid's id fails.
        let c = TestCircuit { xs: vec![-16], id: 1, tamper: Some((0, 24 - specs()[0].apply(-16).unwrap())) };
        assert!(lookup_failed(run(&c)));
    }

    #[test]
    fn input_outside_the_range_has_no_row() {
        assert!(lookup_failed(run(&TestCircuit { xs: vec![41], id: 1, tamper: None })));
    }
}
