//! Rescale with rounding, range check, and optional ReLU, in one row per element.
//!
//! Row layout (advice `a q rem b u y rem_hi u_hi`, fixed `pow half tag relu tag_hi`, selector `q_rq`):
//!
//! | a | q | rem | b | u | y | rem_hi | u_hi | pow = 2^s | half = ⌊2^(s-1)⌋ | tag = min(s, L) | relu | tag_hi = max(s - L, 0) |
//!
//! Constraints, with `V` = value bits and `L` = lookup bits (the widest range-table tag;
//! every wider range check is split into a low limb of `L` bits and a high limb):
//! - `a + half = q·pow + rem + 2^L·rem_hi` ("requant rounding"),
//! - `(min(s, L), rem)` in the range table ("requant remainder range") and
//!   `(max(s - L, 0), rem_hi)` in it too ("requant remainder high range"), so the
//!   remainder `rem + 2^L·rem_hi` lies in `[0, 2^s)` for shifts up to `2L`,
//! - `b ∈ {0,1}` ("requant sign bit"),
//! - `q + 2^V·(1 - b) = u + 2^L·u_hi` ("requant range decomposition"), with
//!   `(min(V, L), u)` ("requant value range") and `(V − min(V, L), u_hi)` ("requant value
//!   high range") in the table: so `q ∈ [-2^V, 2^V)` and `b = [q >= 0]`, for `V ≤ 2L`,
//! - `y = q·(relu·b + 1 - relu)` ("requant output").
//!
//! Splitting at `L` rather than at `V` decouples precision from the table size: the
//! activation range can be twice as wide (in bits) as the table.
//!
//! Because `q` is range-checked, `q = round(a / 2^s)` is the only solution: the
//! prover cannot shift an output by a unit.

use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::Field;
use halo2_proofs::plonk::{Advice, Column, ConstraintSystem, Error as PlonkError, Expression, Fixed, Selector};
use halo2_proofs::poly::Rotation;

use super::range_table::RangeTableConfig;
use super::{fr_from_i128, fr_from_i64, QCell, RequantInstructions};
use crate::quant::RequantValues;

/// Per-region parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequantParams {
    /// Scale bits removed by rounding division.
    pub shift: u32,
    /// Whether the row applies ReLU.
    pub relu: bool,
}

/// The cells of one row, as field elements (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequantWitness {
    /// Input.
    pub a: Fr,
    /// Rounded quotient.
    pub q: Fr,
    /// Remainder, low `L` bits.
    pub rem: Fr,
    /// Remainder, bits above `L`.
    pub rem_hi: Fr,
    /// Sign bit.
    pub b: Fr,
    /// Offset value, low `L` bits.
    pub u: Fr,
    /// Offset value, bits above `L`.
    pub u_hi: Fr,
    /// Output.
    pub y: Fr,
    /// The output as an integer.
    pub y_int: i64,
}

impl RequantWitness {
    /// The cells of one row, splitting the remainder and the offset value at `lookup_bits`.
    pub fn new(r: RequantValues, lookup_bits: u32) -> Self {
        let low = (1i64 << lookup_bits) - 1;
        RequantWitness {
            a: fr_from_i128(r.a),
            q: fr_from_i64(r.q),
            rem: fr_from_i64(r.rem & low),
            rem_hi: fr_from_i64(r.rem >> lookup_bits),
            b: Fr::from(u64::from(r.b)),
            u: fr_from_i64(r.u & low),
            u_hi: fr_from_i64(r.u >> lookup_bits),
            y: fr_from_i64(r.y),
            y_int: r.y,
        }
    }
}

/// Columns and selector of the requant chip.
#[derive(Clone, Debug)]
pub struct RequantConfig {
    advice: [Column<Advice>; 8],
    fixed: [Column<Fixed>; 5],
    q_rq: Selector,
    table: RangeTableConfig,
    value_bits: u32,
    lookup_bits: u32,
}

/// The requant chip.
#[derive(Clone, Debug)]
pub struct RequantChip {
    config: RequantConfig,
}

impl RequantChip {
    /// Creates the gates and lookups. The [`value_tags`] of `(value_bits, lookup_bits)` must
    /// be tags of `table`, and `value_bits ≤ 2·lookup_bits`.
    pub fn configure(
        meta: &mut ConstraintSystem<Fr>,
        advice: [Column<Advice>; 8],
        fixed: [Column<Fixed>; 5],
        table: RangeTableConfig,
        bits: (u32, u32),
    ) -> RequantConfig {
        Self::configure_with(meta, advice, fixed, table, bits, true)
    }

    /// As [`Self::configure`] but without the remainder's range checks: unsound, for the tests
    /// that show `zkinfer mutate` finds a missing range check.
    #[cfg(test)]
    pub(crate) fn configure_without_remainder_range(
        meta: &mut ConstraintSystem<Fr>,
        advice: [Column<Advice>; 8],
        fixed: [Column<Fixed>; 5],
        table: RangeTableConfig,
        bits: (u32, u32),
    ) -> RequantConfig {
        Self::configure_with(meta, advice, fixed, table, bits, false)
    }

    fn configure_with(
        meta: &mut ConstraintSystem<Fr>,
        advice: [Column<Advice>; 8],
        fixed: [Column<Fixed>; 5],
        table: RangeTableConfig,
        (value_bits, lookup_bits): (u32, u32),
        remainder_range: bool,
    ) -> RequantConfig {
        let q_rq = meta.complex_selector();
        let [a, q, rem, b, u, y, rem_hi, u_hi] = advice;
        let [pow, half, tag, relu, tag_hi] = fixed;
        let two_v = Expression::Constant(Fr::from(2).pow_vartime([u64::from(value_bits)]));
        let two_l = Expression::Constant(Fr::from(2).pow_vartime([u64::from(lookup_bits)]));
        meta.create_gate("requant rounding", |vc| {
            let s = vc.query_selector(q_rq);
            let [a, q, rem, rem_hi] = [a, q, rem, rem_hi].map(|c| vc.query_advice(c, Rotation::cur()));
            let [pow, half] = [pow, half].map(|c| vc.query_fixed(c, Rotation::cur()));
            vec![s * (a + half - q * pow - rem - two_l.clone() * rem_hi)]
        });
        meta.create_gate("requant sign bit", |vc| {
            let s = vc.query_selector(q_rq);
            let b = vc.query_advice(b, Rotation::cur());
            vec![s * b.clone() * (Expression::Constant(Fr::one()) - b)]
        });
        meta.create_gate("requant range decomposition", |vc| {
            let s = vc.query_selector(q_rq);
            let [q, b, u, u_hi] = [q, b, u, u_hi].map(|c| vc.query_advice(c, Rotation::cur()));
            vec![s * (q + two_v.clone() * (Expression::Constant(Fr::one()) - b) - u - two_l.clone() * u_hi)]
        });
        meta.create_gate("requant output", |vc| {
            let s = vc.query_selector(q_rq);
            let [q, b, y] = [q, b, y].map(|c| vc.query_advice(c, Rotation::cur()));
            let r = vc.query_fixed(relu, Rotation::cur());
            let one = Expression::Constant(Fr::one());
            vec![s * (y - q * (r.clone() * b + one - r))]
        });
        if remainder_range {
            meta.lookup("requant remainder range", |vc| {
                let s = vc.query_selector(q_rq);
                let t = vc.query_fixed(tag, Rotation::cur());
                let rem = vc.query_advice(rem, Rotation::cur());
                vec![(s.clone() * t, table.tag), (s * rem, table.value)]
            });
            meta.lookup("requant remainder high range", |vc| {
                let s = vc.query_selector(q_rq);
                let t = vc.query_fixed(tag_hi, Rotation::cur());
                let hi = vc.query_advice(rem_hi, Rotation::cur());
                vec![(s.clone() * t, table.tag), (s * hi, table.value)]
            });
        }
        let [v_lo, v_hi] = value_tags(value_bits, lookup_bits).map(|t| Expression::Constant(Fr::from(u64::from(t))));
        meta.lookup("requant value range", |vc| {
            let s = vc.query_selector(q_rq);
            let u = vc.query_advice(u, Rotation::cur());
            vec![(s.clone() * v_lo, table.tag), (s * u, table.value)]
        });
        meta.lookup("requant value high range", |vc| {
            let s = vc.query_selector(q_rq);
            let u_hi = vc.query_advice(u_hi, Rotation::cur());
            vec![(s.clone() * v_hi, table.tag), (s * u_hi, table.value)]
        });
        RequantConfig { advice, fixed, q_rq, table, value_bits, lookup_bits }
    }

    /// Wraps a configuration.
    pub fn construct(config: RequantConfig) -> Self {
        RequantChip { config }
    }

    /// The value bits this chip range-checks.
    pub fn value_bits(&self) -> u32 {
        self.config.value_bits
    }

    /// The width at which range checks split into two limbs.
    pub fn lookup_bits(&self) -> u32 {
        self.config.lookup_bits
    }

    /// The column of the input `a`.
    pub fn input_column(&self) -> Column<Advice> {
        self.config.advice[0]
    }

    /// The column of the output `y`.
    pub fn output_column(&self) -> Column<Advice> {
        self.config.advice[5]
    }
}

/// Range-table widths of the low and high remainder parts for a shift: `[min(s, L), max(s - L, 0)]`.
pub fn remainder_tags(shift: u32, lookup_bits: u32) -> [u32; 2] {
    [shift.min(lookup_bits), shift.saturating_sub(lookup_bits)]
}

/// Range-table widths of the low and high parts of a value check: `[min(V, L), V − min(V, L)]`.
pub fn value_tags(value_bits: u32, lookup_bits: u32) -> [u32; 2] {
    remainder_tags(value_bits, lookup_bits)
}

impl RequantInstructions for RequantChip {
    fn assign_rows(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        inputs: &[Cell],
        params: RequantParams,
        witness: &[RequantWitness],
    ) -> Result<Vec<QCell>, PlonkError> {
        if inputs.len() != witness.len() {
            return Err(PlonkError::Synthesis);
        }
        let (own, out) = self.assign_rows_input_unchecked(region, offset, params, witness)?;
        for (cell, input) in own.iter().zip(inputs) {
            region.constrain_equal(*cell, *input);
        }
        Ok(out)
    }

    fn assign_rows_input_unchecked(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        params: RequantParams,
        witness: &[RequantWitness],
    ) -> Result<(Vec<Cell>, Vec<QCell>), PlonkError> {
        let c = &self.config;
        let [tag_lo, tag_hi] = remainder_tags(params.shift, c.lookup_bits);
        if !c.table.has(tag_lo) || !c.table.has(tag_hi) || params.shift > 2 * c.lookup_bits {
            return Err(PlonkError::Synthesis);
        }
        let pow = Fr::from(2).pow_vartime([u64::from(params.shift)]);
        let half = if params.shift == 0 { Fr::zero() } else { Fr::from(2).pow_vartime([u64::from(params.shift - 1)]) };
        let fixed = [pow, half, Fr::from(u64::from(tag_lo)), Fr::from(u64::from(params.relu)), Fr::from(u64::from(tag_hi))];
        let (mut own, mut out) = (Vec::with_capacity(witness.len()), Vec::with_capacity(witness.len()));
        for (i, w) in witness.iter().enumerate() {
            let row = offset + i;
            c.q_rq.enable(region, row)?;
            for (col, v) in c.fixed.iter().zip(fixed) {
                region.assign_fixed(*col, row, v);
            }
            let cells: Vec<Cell> = c
                .advice
                .iter()
                .zip([w.a, w.q, w.rem, w.b, w.u, w.y, w.rem_hi, w.u_hi])
                .map(|(col, v)| region.assign_advice(*col, row, Value::known(v)).cell())
                .collect();
            own.push(cells[0]);
            out.push(QCell { cell: cells[5], value: w.y_int });
        }
        Ok((own, out))
    }
}

#[cfg(test)]
mod tests {
    use halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
    use halo2_proofs::dev::{MockProver, VerifyFailure};
    use halo2_proofs::plonk::{Circuit, Instance};

    use super::*;
    use crate::quant::requant;

    /// Value bits and lookup bits: values are checked in two limbs (4 + 2 bits).
    const V: u32 = 6;
    const L: u32 = 4;

    #[derive(Clone, Default)]
    struct TestCircuit {
        a: Vec<i128>,
        relu: bool,
        shift: u32,
        tamper: Option<fn(&mut RequantWitness)>,
    }

    impl Circuit<Fr> for TestCircuit {
        type Config = (RequantConfig, RangeTableConfig, Column<Advice>, Column<Instance>);
        type FloorPlanner = SimpleFloorPlanner;
        type Params = ();
        fn without_witnesses(&self) -> Self {
            self.clone()
        }
        fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
            let advice: [Column<Advice>; 8] = std::array::from_fn(|_| meta.advice_column());
            let fixed: [Column<Fixed>; 5] = std::array::from_fn(|_| meta.fixed_column());
            let instance = meta.instance_column();
            meta.enable_equality(instance);
            advice.iter().for_each(|a| meta.enable_equality(*a));
            let table = RangeTableConfig::configure(meta, &[2, 3, 4]);
            (RequantChip::configure(meta, advice, fixed, table.clone(), (V, L)), table, advice[1], instance)
        }
        fn synthesize(
            &self,
            (config, table, input_col, instance): Self::Config,
            mut layouter: impl Layouter<Fr>,
        ) -> Result<(), PlonkError> {
            table.load(&mut layouter)?;
            let chip = RequantChip::construct(config);
            let mut witness: Vec<RequantWitness> =
                self.a.iter().map(|&a| RequantWitness::new(requant(a, self.shift, self.relu, V).expect("in range"), L)).collect();
            if let Some(t) = &self.tamper {
                t(&mut witness[1]);
            }
            let outs = layouter.assign_region(
                || "requant test",
                |mut region| {
                    let inputs: Vec<Cell> = self
                        .a
                        .iter()
                        .enumerate()
                        .map(|(i, &a)| region.assign_advice(input_col, i, Value::known(fr_from_i128(a))).cell())
                        .collect();
                    chip.assign_rows(&mut region, self.a.len(), &inputs, RequantParams { shift: self.shift, relu: self.relu }, &witness)
                },
            )?;
            for (i, o) in outs.iter().enumerate() {
                layouter.constrain_instance(o.cell, instance, i);
            }
            Ok(())
        }
    }

    fn run_shift(shift: u32, relu: bool, tamper: Option<fn(&mut RequantWitness)>) -> Result<(), Vec<VerifyFailure>> {
        let a: Vec<i128> = [100, -100, 37, -5, 0, 255].iter().map(|v| v << (shift - 3)).collect();
        let expected: Vec<Fr> = a.iter().map(|&v| fr_from_i64(requant(v, shift, relu, V).expect("in range").y)).collect();
        let c = TestCircuit { a, relu, shift, tamper };
        MockProver::run(9, &c, vec![expected]).unwrap().verify()
    }

    fn run(relu: bool, tamper: Option<fn(&mut RequantWitness)>) -> Result<(), Vec<VerifyFailure>> {
        run_shift(3, relu, tamper)
    }

    use crate::chips::failure_names as names;

    fn assert_fails(relu: bool, tamper: fn(&mut RequantWitness), expected: &str) {
        let failures = run(relu, Some(tamper)).unwrap_err();
        let n = names(&failures);
        assert!(n.iter().any(|s| s.contains(expected)), "expected `{expected}` in {n:?}");
    }

    #[test]
    fn honest_rows_verify() {
        assert_eq!(run(false, None), Ok(()));
        assert_eq!(run(true, None), Ok(()));
        // A shift wider than the table splits the remainder (4 + 4 bits).
        assert_eq!(run_shift(2 * L, false, None), Ok(()));
    }

    #[test]
    fn wide_shift_with_oversized_high_remainder_fails_lookup() {
        // q - 1 with rem_hi + 16 (= 2^8 total) keeps the rounding gate but leaves [0, 2^4).
        let failures = run_shift(
            2 * L,
            false,
            Some(|w| {
                w.q -= Fr::one();
                w.rem_hi += Fr::from(16);
                w.u -= Fr::one();
            }),
        )
        .unwrap_err();
        let n = names(&failures);
        assert!(n.iter().any(|s| s.contains("requant remainder high range")), "{n:?}");
    }

    #[test]
    fn rescaled_value_off_by_one_fails_rounding() {
        // q + 1 with the same remainder breaks a + half = q·pow + rem.
        assert_fails(false, |w| w.q += Fr::one(), "requant rounding");
    }

    #[test]
    fn shifted_quotient_with_oversized_remainder_fails_lookup() {
        // q - 1 with rem + 8 satisfies the rounding gate, but rem leaves [0, 2^3).
        assert_fails(
            false,
            |w| {
                w.q -= Fr::one();
                w.rem += Fr::from(8);
                w.u -= Fr::one();
            },
            "requant remainder range",
        );
    }

    #[test]
    fn wrong_sign_bit_fails() {
        // Row 1 is -100 → q = -12, b = 0. Flipping b alone breaks the decomposition.
        assert_fails(false, |w| w.b = Fr::one(), "requant range decomposition");
        assert_fails(false, |w| w.b = Fr::from(2), "requant sign bit");
    }

    #[test]
    fn out_of_range_value_fails_value_lookup() {
        // Claim b = 1 with u = q (negative): the decomposition holds but u is not in [0, 2^V).
        assert_fails(
            false,
            |w| {
                w.b = Fr::one();
                w.u = w.q;
            },
            "requant value range",
        );
    }

    #[test]
    fn negative_value_claimed_positive_fails_high_limb_lookup() {
        // Row 1: q = -12, so u = q + 2^6 = 52 = 4 + 16·3. Claiming b = 1 needs u + 16·u_hi = -12,
        // i.e. u_hi = -1: the gate holds, the high limb leaves [0, 2^2).
        assert_fails(
            false,
            |w| {
                w.b = Fr::one();
                w.u_hi -= Fr::from(4);
            },
            "requant value high range",
        );
    }

    #[test]
    fn relu_output_tampered_fails() {
        // Row 1 is negative: ReLU must output 0, not q.
        assert_fails(true, |w| w.y = w.q, "requant output");
        assert_fails(false, |w| w.y += Fr::one(), "requant output");
    }
}
