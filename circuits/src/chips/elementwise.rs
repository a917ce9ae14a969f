//! Elementwise affine-product: one gate covers add, sub, mul and their constant forms.
//!
//! Row layout (advice `x y z`, fixed `cx cy cxy c0`, selector `q_elt`):
//!
//! | x | y | z = cx·x + cy·y + cxy·x·y + c0 | cx | cy | cxy | c0 |
//!
//! The coefficients are fixed, so the verifying key fixes which operation each row is
//! and every constant operand. Every `y` is copied from a cell: an operation without a second
//! operand copies it from the layout's constant-zero cell (with `cy = cxy = 0`), so no row
//! leaves `y` free, whatever its coefficients.
//!
//! The model circuit puts `z` in the requant chip's input column, so an elementwise step's rows
//! are also its rescale rows ([`ElementwiseInstructions::assign_operands`]): `z` is the
//! rescale's input itself, bound by this gate, with no row or copy of its own.

use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Column, ConstraintSystem, Error as PlonkError, Fixed, Selector};
use halo2_proofs::poly::Rotation;

use super::{fr_from_i64, ElementwiseInstructions, QCell};

/// Columns and selector of the elementwise chip.
#[derive(Clone, Debug)]
pub struct ElementwiseConfig {
    advice: [Column<Advice>; 3],
    fixed: [Column<Fixed>; 4],
    q_elt: Selector,
}

/// The elementwise chip.
#[derive(Clone, Debug)]
pub struct ElementwiseChip {
    config: ElementwiseConfig,
}

impl ElementwiseChip {
    /// Creates the gate.
    pub fn configure(meta: &mut ConstraintSystem<Fr>, advice: [Column<Advice>; 3], fixed: [Column<Fixed>; 4]) -> ElementwiseConfig {
        let q_elt = meta.selector();
        meta.create_gate("elementwise", |vc| {
            let s = vc.query_selector(q_elt);
            let [x, y, z] = advice.map(|c| vc.query_advice(c, Rotation::cur()));
            let [cx, cy, cxy, c0] = fixed.map(|c| vc.query_fixed(c, Rotation::cur()));
            vec![s * (z - (cx * x.clone() + cy * y.clone() + cxy * x * y + c0))]
        });
        ElementwiseConfig { advice, fixed, q_elt }
    }

    /// Wraps a configuration.
    pub fn construct(config: ElementwiseConfig) -> Self {
        ElementwiseChip { config }
    }

    /// The column of `z`.
    pub fn output_column(&self) -> Column<Advice> {
        self.config.advice[2]
    }

    /// Copies the operands into one row and sets its coefficients (the gate's `x`, `y` and fixed
    /// cells; `z` is left to the caller).
    fn assign_operand_row(
        &self,
        region: &mut Region<'_, Fr>,
        row: usize,
        (x, y): (&QCell, &QCell),
        coeffs: [Fr; 4],
    ) -> Result<(), PlonkError> {
        let c = &self.config;
        c.q_elt.enable(region, row)?;
        for (col, v) in c.fixed.iter().zip(coeffs) {
            region.assign_fixed(*col, row, v);
        }
        let xa = region.assign_advice(c.advice[0], row, Value::known(fr_from_i64(x.value)));
        region.constrain_equal(xa.cell(), x.cell);
        let ya = region.assign_advice(c.advice[1], row, Value::known(fr_from_i64(y.value)));
        region.constrain_equal(ya.cell(), y.cell);
        Ok(())
    }
}

impl ElementwiseInstructions for ElementwiseChip {
    fn assign_rows(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        x: &[QCell],
        y: &[QCell],
        coeffs: &[[Fr; 4]],
        z: &[Fr],
    ) -> Result<Vec<Cell>, PlonkError> {
        if z.len() != x.len() {
            return Err(PlonkError::Synthesis);
        }
        self.assign_operands(region, offset, x, y, coeffs)?;
        Ok(z.iter().enumerate().map(|(i, v)| region.assign_advice(self.config.advice[2], offset + i, Value::known(*v)).cell()).collect())
    }

    fn assign_operands(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        x: &[QCell],
        y: &[QCell],
        coeffs: &[[Fr; 4]],
    ) -> Result<(), PlonkError> {
        if coeffs.len() != x.len() || y.len() != x.len() {
            return Err(PlonkError::Synthesis);
        }
        for (i, ((xc, yc), k)) in x.iter().zip(y).zip(coeffs).enumerate() {
            self.assign_operand_row(region, offset + i, (xc, yc), *k)?;
        }
        Ok(())
    }

    fn assign_squares(&self, region: &mut Region<'_, Fr>, offset: usize, cells: &[(Cell, Fr)]) -> Result<Vec<Cell>, PlonkError> {
        let c = &self.config;
        let mut out = Vec::with_capacity(cells.len());
        for (i, (cell, v)) in cells.iter().enumerate() {
            let row = offset + i;
            c.q_elt.enable(region, row)?;
            for (col, coeff) in c.fixed.iter().zip([Fr::zero(), Fr::zero(), Fr::one(), Fr::zero()]) {
                region.assign_fixed(*col, row, coeff);
            }
            for col in &c.advice[..2] {
                let a = region.assign_advice(*col, row, Value::known(*v));
                region.constrain_equal(a.cell(), *cell);
            }
            out.push(region.assign_advice(c.advice[2], row, Value::known(v.square())).cell());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
    use halo2_proofs::dev::{MockProver, VerifyFailure};
    use halo2_proofs::plonk::{Circuit, Instance};

    use super::*;

    #[derive(Clone, Default)]
    struct TestCircuit {
        tamper: Option<usize>,
        /// The rows are told `y[0] + 1` (and compute with it) while `y[0]`'s cell holds `y[0]`.
        wrong_y: bool,
    }

    const X: [i64; 4] = [3, -4, 5, 6];
    const Y: [i64; 4] = [2, 7, -1, 0];
    // add, sub, mul, x*c + c0
    const C: [[i64; 4]; 4] = [[1, 1, 0, 0], [1, -1, 0, 0], [0, 0, 1, 0], [-3, 0, 0, 11]];

    fn expected() -> Vec<Fr> {
        (0..4).map(|i| fr_from_i64(C[i][0] * X[i] + C[i][1] * Y[i] + C[i][2] * X[i] * Y[i] + C[i][3])).collect()
    }

    impl Circuit<Fr> for TestCircuit {
        type Config = (ElementwiseConfig, Column<Advice>, Column<Instance>);
        type FloorPlanner = SimpleFloorPlanner;
        type Params = ();
        fn without_witnesses(&self) -> Self {
            self.clone()
        }
        fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
            let advice: [Column<Advice>; 3] = std::array::from_fn(|_| meta.advice_column());
            let fixed: [Column<Fixed>; 4] = std::array::from_fn(|_| meta.fixed_column());
            let instance = meta.instance_column();
            meta.enable_equality(instance);
            advice.iter().for_each(|a| meta.enable_equality(*a));
            (ElementwiseChip::configure(meta, advice, fixed), advice[0], instance)
        }
        fn synthesize(&self, (config, col, instance): Self::Config, mut layouter: impl Layouter<Fr>) -> Result<(), PlonkError> {
            let chip = ElementwiseChip::construct(config);
            let mut z = expected();
            if let Some(i) = self.tamper {
                z[i] += Fr::one();
            }
            if self.wrong_y {
                z[0] += fr_from_i64(C[0][1]);
            }
            let outs = layouter.assign_region(
                || "elementwise test",
                |mut region| {
                    let mk = |region: &mut Region<'_, Fr>, base: usize, vals: &[i64]| -> Vec<QCell> {
                        vals.iter()
                            .enumerate()
                            .map(|(i, &v)| QCell {
                                cell: region.assign_advice(col, base + i, Value::known(fr_from_i64(v))).cell(),
                                value: v,
                            })
                            .collect()
                    };
                    let x = mk(&mut region, 0, &X);
                    let mut y = mk(&mut region, 4, &Y);
                    if self.wrong_y {
                        y[0].value += 1;
                    }
                    let coeffs: Vec<[Fr; 4]> = C.iter().map(|c| c.map(fr_from_i64)).collect();
                    chip.assign_rows(&mut region, 8, &x, &y, &coeffs, &z)
                },
            )?;
            for (i, o) in outs.into_iter().enumerate() {
                layouter.constrain_instance(o, instance, i);
            }
            Ok(())
        }
    }

    #[test]
    fn honest_rows_verify() {
        MockProver::run(5, &TestCircuit::default(), vec![expected()]).unwrap().assert_satisfied();
    }

    #[test]
    fn each_tampered_output_fails_the_gate() {
        for i in 0..4 {
            let mut inst = expected();
            inst[i] += Fr::one();
            let failures =
                MockProver::run(5, &TestCircuit { tamper: Some(i), ..Default::default() }, vec![inst]).unwrap().verify().unwrap_err();
            assert!(
                failures.iter().any(|f| matches!(f, VerifyFailure::ConstraintNotSatisfied { constraint, .. } if format!("{constraint}").contains("elementwise"))),
                "row {i}: {failures:?}"
            );
        }
    }

    #[test]
    fn a_consistent_wrong_second_operand_fails_only_the_copy() {
        // Row 0 adds: with y[0] + 1 in the row and z recomputed from it, the gate holds and
        // only the copy of y from its cell catches it.
        let mut inst = expected();
        inst[0] += fr_from_i64(C[0][1]);
        let failures = MockProver::run(5, &TestCircuit { wrong_y: true, ..Default::default() }, vec![inst]).unwrap().verify().unwrap_err();
        assert!(!failures.is_empty());
        assert!(failures.iter().all(|f| matches!(f, VerifyFailure::Permutation { .. })), "{failures:?}");
    }

    /// The binding rows: a value copied from the instance into a cell, then squared by the
    /// gate from copies of that cell.
    #[derive(Clone, Default)]
    struct SquareCircuit {
        /// What the square rows are told the value is (the cell holds the real one).
        claimed: Option<Fr>,
    }

    const V: u64 = 0xf39f_d6e5_1aad;

    impl Circuit<Fr> for SquareCircuit {
        type Config = (ElementwiseConfig, Column<Advice>, Column<Instance>);
        type FloorPlanner = SimpleFloorPlanner;
        type Params = ();
        fn without_witnesses(&self) -> Self {
            self.clone()
        }
        fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
            TestCircuit::configure(meta)
        }
        fn synthesize(&self, (config, col, instance): Self::Config, mut layouter: impl Layouter<Fr>) -> Result<(), PlonkError> {
            let chip = ElementwiseChip::construct(config);
            let cell = layouter.assign_region(
                || "binding",
                |mut region| {
                    let cell = region.assign_advice(col, 0, Value::known(Fr::from(V))).cell();
                    chip.assign_squares(&mut region, 1, &[(cell, self.claimed.unwrap_or(Fr::from(V)))])?;
                    Ok(cell)
                },
            )?;
            layouter.constrain_instance(cell, instance, 0);
            Ok(())
        }
    }

    #[test]
    fn a_square_row_reads_its_cell_and_a_consistent_wrong_value_fails_the_copy() {
        MockProver::run(5, &SquareCircuit::default(), vec![vec![Fr::from(V)]]).unwrap().assert_satisfied();
        // The square rows hold V+1 and its true square: only the copies from the cell catch it.
        let wrong = SquareCircuit { claimed: Some(Fr::from(V + 1)) };
        let failures = MockProver::run(5, &wrong, vec![vec![Fr::from(V)]]).unwrap().verify().unwrap_err();
        assert!(failures.iter().all(|f| matches!(f, VerifyFailure::Permutation { .. })), "{failures:?}");
        assert!(!failures.is_empty());
    }
}
