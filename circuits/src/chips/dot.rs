//! Dot products with constant weights in fixed columns, so the verifying key fixes the model.
//!
//! Row layout of one group (`G` lanes share the input vector `x` of length `K`):
//!
//! | row | x (advice) | acc_0 … acc_{G-1} (advice)        | w_0 … w_{G-1} (fixed) | selector |
//! |-----|------------|-----------------------------------|-----------------------|----------|
//! | 0   | 1 (const)  | w_j[0]·1                          | bias_j                | q_first  |
//! | r   | x[r-1]     | acc_j[r-1] + w_j[r]·x[r-1]         | W[r-1][j]             | q_mac    |
//! | K   | x[K-1]     | **bias_j + Σ W[i][j]·x[i]**        | W[K-1][j]             | q_mac    |
//!
//! One advice cell per multiply-accumulate plus one per input row; the input is copied
//! in once per group, and the gate reads the previous accumulator by rotation.

use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Column, ConstraintSystem, Error as PlonkError, Fixed, Selector};
use halo2_proofs::poly::Rotation;

use super::DotInstructions;

/// Columns and selectors of the dot-product chip.
#[derive(Clone, Debug)]
pub struct DotConfig {
    x: Column<Advice>,
    acc: Vec<Column<Advice>>,
    w: Vec<Column<Fixed>>,
    q_first: Selector,
    q_mac: Selector,
}

impl DotConfig {
    /// How many dot products one group computes side by side.
    pub fn lanes(&self) -> usize {
        self.acc.len()
    }
}

/// The dot-product chip.
#[derive(Clone, Debug)]
pub struct DotChip {
    config: DotConfig,
}

/// Witness of one group: the input column (with the leading 1) and each lane's accumulators.
#[derive(Clone, Debug, PartialEq)]
pub struct DotWitness {
    /// `1, x[0], …, x[K-1]`.
    pub x: Vec<Fr>,
    /// `acc[lane][row]`.
    pub acc: Vec<Vec<Fr>>,
}

impl DotWitness {
    /// The honest witness for input `x` (without the leading 1) and `weights[lane][row]`.
    pub fn compute(x: &[Fr], weights: &[Vec<Fr>]) -> Self {
        let xs: Vec<Fr> = std::iter::once(Fr::one()).chain(x.iter().copied()).collect();
        let acc = weights
            .iter()
            .map(|w| {
                let mut sum = Fr::zero();
                xs.iter()
                    .zip(w)
                    .map(|(x, w)| {
                        sum += *x * w;
                        sum
                    })
                    .collect()
            })
            .collect();
        DotWitness { x: xs, acc }
    }
}

impl DotChip {
    /// Creates the gates on the given columns (`acc.len() == w.len()` lanes).
    pub fn configure(meta: &mut ConstraintSystem<Fr>, x: Column<Advice>, acc: &[Column<Advice>], w: &[Column<Fixed>]) -> DotConfig {
        assert_eq!(acc.len(), w.len(), "one fixed weight column per accumulator lane");
        let q_first = meta.selector();
        let q_mac = meta.selector();
        meta.create_gate("dot init", |vc| {
            let q = vc.query_selector(q_first);
            let xv = vc.query_advice(x, Rotation::cur());
            acc.iter()
                .zip(w)
                .map(|(&a, &wc)| q.clone() * (vc.query_advice(a, Rotation::cur()) - vc.query_fixed(wc, Rotation::cur()) * xv.clone()))
                .collect::<Vec<_>>()
        });
        meta.create_gate("dot mac", |vc| {
            let q = vc.query_selector(q_mac);
            let xv = vc.query_advice(x, Rotation::cur());
            acc.iter()
                .zip(w)
                .map(|(&a, &wc)| {
                    let cur = vc.query_advice(a, Rotation::cur());
                    let prev = vc.query_advice(a, Rotation::prev());
                    q.clone() * (cur - prev - vc.query_fixed(wc, Rotation::cur()) * xv.clone())
                })
                .collect::<Vec<_>>()
        });
        DotConfig { x, acc: acc.to_vec(), w: w.to_vec(), q_first, q_mac }
    }

    /// Wraps a configuration.
    pub fn construct(config: DotConfig) -> Self {
        DotChip { config }
    }
}

impl DotInstructions for DotChip {
    fn assign_group(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        x: &[Cell],
        weights: &[Vec<Fr>],
        witness: &DotWitness,
    ) -> Result<Vec<Cell>, PlonkError> {
        let c = &self.config;
        let rows = x.len() + 1;
        if weights.len() > c.lanes() || witness.x.len() != rows || weights.iter().any(|w| w.len() != rows) {
            return Err(PlonkError::Synthesis);
        }
        region.assign_advice_from_constant(|| "dot one", c.x, offset, Fr::one())?;
        c.q_first.enable(region, offset)?;
        for (r, (input, value)) in x.iter().zip(&witness.x[1..]).enumerate() {
            let cell = region.assign_advice(c.x, offset + r + 1, Value::known(*value));
            region.constrain_equal(cell.cell(), *input);
            c.q_mac.enable(region, offset + r + 1)?;
        }
        let mut outputs = Vec::with_capacity(weights.len());
        for lane in 0..c.lanes() {
            for r in 0..rows {
                // Unused lanes hold zero weights and zero accumulators.
                let w = weights.get(lane).map_or(Fr::zero(), |w| w[r]);
                region.assign_fixed(c.w[lane], offset + r, w);
                let a = witness.acc.get(lane).map_or(Fr::zero(), |a| a[r]);
                let cell = region.assign_advice(c.acc[lane], offset + r, Value::known(a));
                if r + 1 == rows && lane < weights.len() {
                    outputs.push(cell.cell());
                }
            }
        }
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
    use halo2_proofs::dev::{MockProver, VerifyFailure};
    use halo2_proofs::plonk::{Circuit, Instance};

    use super::*;
    use crate::chips::fr_from_i64;

    #[derive(Clone, Default)]
    struct TestCircuit {
        x: Vec<i64>,
        weights: Vec<Vec<Fr>>,
        tamper: Option<(usize, usize)>,
    }

    impl Circuit<Fr> for TestCircuit {
        type Config = (DotConfig, Column<Advice>, Column<Instance>);
        type FloorPlanner = SimpleFloorPlanner;
        type Params = ();
        fn without_witnesses(&self) -> Self {
            self.clone()
        }
        fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
            let advice: Vec<_> = (0..4).map(|_| meta.advice_column()).collect();
            let fixed: Vec<_> = (0..3).map(|_| meta.fixed_column()).collect();
            let constants = meta.fixed_column();
            meta.enable_constant(constants);
            let instance = meta.instance_column();
            meta.enable_equality(instance);
            for a in &advice {
                meta.enable_equality(*a);
            }
            (DotChip::configure(meta, advice[0], &advice[1..], &fixed), advice[0], instance)
        }
        fn synthesize(&self, (config, input_col, instance): Self::Config, mut layouter: impl Layouter<Fr>) -> Result<(), PlonkError> {
            let chip = DotChip::construct(config);
            let xs: Vec<Fr> = self.x.iter().map(|&v| fr_from_i64(v)).collect();
            let mut witness = DotWitness::compute(&xs, &self.weights);
            if let Some((lane, row)) = self.tamper {
                witness.acc[lane][row] += Fr::one();
            }
            let outs = layouter.assign_region(
                || "dot test",
                |mut region| {
                    // The inputs live in their own rows (as if produced by an earlier chip).
                    let inputs: Vec<Cell> = self
                        .x
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| region.assign_advice(input_col, i, Value::known(fr_from_i64(v))).cell())
                        .collect();
                    chip.assign_group(&mut region, inputs.len(), &inputs, &self.weights, &witness)
                },
            )?;
            for (i, cell) in outs.into_iter().enumerate() {
                layouter.constrain_instance(cell, instance, i);
            }
            Ok(())
        }
    }

    fn circuit() -> (TestCircuit, Vec<Fr>) {
        let x = vec![3, -2, 5, 7];
        let w: Vec<Vec<i64>> = vec![vec![10, 1, 2, 3, 4], vec![-1, 0, -1, 1, 2], vec![0, 5, 5, 5, 5]];
        let expected = w.iter().map(|w| fr_from_i64(w[0] + x.iter().zip(&w[1..]).map(|(a, b)| a * b).sum::<i64>())).collect();
        let weights = w.iter().map(|w| w.iter().map(|&v| fr_from_i64(v)).collect()).collect();
        (TestCircuit { x, weights, tamper: None }, expected)
    }

    fn failing_gates(failures: &[VerifyFailure]) -> Vec<String> {
        failures
            .iter()
            .filter_map(|f| match f {
                VerifyFailure::ConstraintNotSatisfied { constraint, .. } => Some(format!("{constraint}")),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn honest_dot_products_verify() {
        let (c, expected) = circuit();
        let prover = MockProver::run(6, &c, vec![expected]).unwrap();
        prover.assert_satisfied();
    }

    #[test]
    fn wrong_output_instance_fails() {
        let (c, mut expected) = circuit();
        expected[1] += Fr::one();
        let prover = MockProver::run(6, &c, vec![expected]).unwrap();
        assert!(prover.verify().is_err());
    }

    #[test]
    fn tampered_accumulator_fails_mac_gate() {
        let (mut c, expected) = circuit();
        c.tamper = Some((1, 2)); // a middle accumulator of lane 1
        let failures = MockProver::run(6, &c, vec![expected]).unwrap().verify().unwrap_err();
        let gates = failing_gates(&failures);
        assert!(gates.iter().any(|g| g.contains("dot mac")), "{failures:?}");
    }

    #[test]
    fn tampered_bias_row_fails_init_gate() {
        let (mut c, expected) = circuit();
        c.tamper = Some((0, 0));
        let failures = MockProver::run(6, &c, vec![expected]).unwrap().verify().unwrap_err();
        assert!(failing_gates(&failures).iter().any(|g| g.contains("dot init")), "{failures:?}");
    }

    #[test]
    fn tampered_final_product_fails() {
        let (mut c, mut expected) = circuit();
        c.tamper = Some((2, 4));
        expected[2] += Fr::one(); // even with a matching public output, the gate catches it
        let failures = MockProver::run(6, &c, vec![expected]).unwrap().verify().unwrap_err();
        assert!(failing_gates(&failures).iter().any(|g| g.contains("dot mac")), "{failures:?}");
    }
}
