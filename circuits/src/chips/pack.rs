//! Packing range-checked values into field elements, so that the input commitment hashes
//! `⌈n/c⌉` elements instead of `n`: with `V` value bits, each value `v ∈ [−2^V, 2^V)` becomes the
//! limb `v + 2^V ∈ [0, 2^(V+1))`, and `c = ⌊253/(V+1)⌋` limbs fill one element.
//!
//! Row layout (advice `v pack`, selectors `q_first q_next`), one row per value:
//!
//! | v | pack |
//!
//! - "pack first": `pack = v + 2^V` (a chunk's first row),
//! - "pack next": `pack = 2^(V+1)·pack_prev + v + 2^V` (its other rows),
//!
//! so a chunk's last row holds `Σ_i (v_i + 2^V)·2^((V+1)(len−1−i))` ([`pack`]), below
//! `2^253 < p`: distinct limb vectors give distinct elements only because every limb is in
//! range, which this chip does not check. The model circuit puts `v` in the requant chip's input
//! column on the inputs' shift-0 rescale rows, whose range check proves `v ∈ [−2^V, 2^V)`.

use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::Field;
use halo2_proofs::plonk::{Advice, Column, ConstraintSystem, Error as PlonkError, Expression, Selector};
use halo2_proofs::poly::Rotation;

use super::fr_from_i64;

/// Bits of an element that limbs may fill (`2^253 < p`).
const PACK_BITS: u32 = 253;

/// Values per packed element at `value_bits` (at least 1).
pub fn per_element(value_bits: u32) -> usize {
    (PACK_BITS / (value_bits + 1)).max(1) as usize
}

/// The packed elements of `values` (chunks of [`per_element`], each limb `v + 2^V`). Total, so
/// that the commitment is defined for any input; injective on values in `[−2^V, 2^V)`, the only
/// ones a proof can hold.
pub fn pack(values: &[i64], value_bits: u32) -> Vec<Fr> {
    let (base, offset) = constants(value_bits);
    values
        .chunks(per_element(value_bits))
        .map(|chunk| chunk.iter().fold(Fr::zero(), |acc, &v| acc * base + fr_from_i64(v) + offset))
        .collect()
}

/// `2^(V+1)` and `2^V`.
fn constants(value_bits: u32) -> (Fr, Fr) {
    let two = Fr::from(2);
    (two.pow_vartime([u64::from(value_bits + 1)]), two.pow_vartime([u64::from(value_bits)]))
}

/// Columns and selectors of the pack chip.
#[derive(Clone, Debug)]
pub struct PackConfig {
    value: Column<Advice>,
    pack: Column<Advice>,
    q_first: Selector,
    q_next: Selector,
    value_bits: u32,
}

/// The pack chip.
#[derive(Clone, Debug)]
pub struct PackChip {
    config: PackConfig,
}

impl PackChip {
    /// Creates the gates; `value_bits + 1 ≤ 253`.
    pub fn configure(meta: &mut ConstraintSystem<Fr>, value: Column<Advice>, pack: Column<Advice>, value_bits: u32) -> PackConfig {
        let (q_first, q_next) = (meta.selector(), meta.selector());
        let (base, offset) = constants(value_bits);
        let (base, offset) = (Expression::Constant(base), Expression::Constant(offset));
        meta.create_gate("pack first", |vc| {
            let s = vc.query_selector(q_first);
            let [v, p] = [value, pack].map(|c| vc.query_advice(c, Rotation::cur()));
            vec![s * (p - v - offset.clone())]
        });
        meta.create_gate("pack next", |vc| {
            let s = vc.query_selector(q_next);
            let [v, p] = [value, pack].map(|c| vc.query_advice(c, Rotation::cur()));
            let prev = vc.query_advice(pack, Rotation::prev());
            vec![s * (p - base.clone() * prev - v - offset.clone())]
        });
        PackConfig { value, pack, q_first, q_next, value_bits }
    }

    /// Wraps a configuration.
    pub fn construct(config: PackConfig) -> Self {
        PackChip { config }
    }

    /// The column the gates read `v` from.
    pub fn value_column(&self) -> Column<Advice> {
        self.config.value
    }

    /// Lays out the running packs of `values`, whose cells another chip assigns in
    /// [`Self::value_column`] at rows `offset..offset + values.len()`; returns each chunk's
    /// packed element (its last row's cell) with its value.
    ///
    /// Unchecked: the packing is injective only for values in `[−2^V, 2^V)`, so the caller must
    /// range-check every value on these rows (the inputs' rescale rows do).
    pub fn assign_packs_unchecked(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        values: &[i64],
    ) -> Result<Vec<(Cell, Fr)>, PlonkError> {
        let c = &self.config;
        let (base, limb_offset) = constants(c.value_bits);
        let per = per_element(c.value_bits);
        let mut out = Vec::with_capacity(values.len().div_ceil(per));
        for (j, chunk) in values.chunks(per).enumerate() {
            let mut acc = Fr::zero();
            let mut last = None;
            for (i, &v) in chunk.iter().enumerate() {
                let row = offset + j * per + i;
                if i == 0 {
                    c.q_first.enable(region, row)?;
                } else {
                    c.q_next.enable(region, row)?;
                }
                acc = acc * base + fr_from_i64(v) + limb_offset;
                last = Some(region.assign_advice(c.pack, row, Value::known(acc)).cell());
            }
            out.push((last.ok_or(PlonkError::Synthesis)?, acc));
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
    use crate::chips::failure_names;

    /// Value bits: limbs of 7 bits, 36 per element.
    const V: u32 = 6;

    #[derive(Clone, Default)]
    struct TestCircuit {
        values: Vec<i64>,
        /// Added to one running pack (row, delta).
        tamper: Option<(usize, i64)>,
    }

    impl Circuit<Fr> for TestCircuit {
        type Config = (PackConfig, Column<Instance>);
        type FloorPlanner = SimpleFloorPlanner;
        type Params = ();
        fn without_witnesses(&self) -> Self {
            self.clone()
        }
        fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
            let (v, p) = (meta.advice_column(), meta.advice_column());
            meta.enable_equality(p);
            let instance = meta.instance_column();
            meta.enable_equality(instance);
            (PackChip::configure(meta, v, p, V), instance)
        }
        fn synthesize(&self, (config, instance): Self::Config, mut layouter: impl Layouter<Fr>) -> Result<(), PlonkError> {
            let chip = PackChip::construct(config.clone());
            let packs = layouter.assign_region(
                || "pack test",
                |mut region| {
                    for (i, &v) in self.values.iter().enumerate() {
                        region.assign_advice(chip.value_column(), i, Value::known(fr_from_i64(v)));
                    }
                    let packs = chip.assign_packs_unchecked(&mut region, 0, &self.values)?;
                    if let Some((row, delta)) = self.tamper {
                        region.assign_advice(config.pack, row, Value::known(fr_from_i64(delta)));
                    }
                    Ok(packs)
                },
            )?;
            for (i, (cell, _)) in packs.iter().enumerate() {
                layouter.constrain_instance(*cell, instance, i);
            }
            Ok(())
        }
    }

    fn run(values: Vec<i64>, claimed: Vec<Fr>, tamper: Option<(usize, i64)>) -> Result<(), Vec<VerifyFailure>> {
        MockProver::run(8, &TestCircuit { values, tamper }, vec![claimed]).unwrap().verify()
    }

    fn values() -> Vec<i64> {
        (0..80).map(|i| (i * 37 % 128) - 64).collect()
    }

    #[test]
    fn packs_match_the_reference_and_verify() {
        let packs = pack(&values(), V);
        assert_eq!(packs.len(), 3, "80 values at 36 per element");
        assert_eq!(run(values(), packs, None), Ok(()));
    }

    #[test]
    fn reference_is_big_endian_in_offset_limbs() {
        // [-64, 63] at V = 6: limbs 0 and 127, so 0·128 + 127.
        assert_eq!(pack(&[-64, 63], V), vec![Fr::from(127)]);
        assert_eq!(pack(&[1, 0], V), vec![Fr::from(65 * 128 + 64)]);
        // Limbs of at most 7 bits: a value out of range would carry into its neighbour.
        assert_eq!(pack(&[0, 64], V), pack(&[1, -64], V));
        assert_eq!(per_element(21), 11);
    }

    #[test]
    fn a_wrong_packed_element_fails_the_permutation_or_a_gate() {
        // Claiming another element for chunk 1 breaks the copy to the instance.
        let mut packs = pack(&values(), V);
        packs[1] += Fr::one();
        let n = failure_names(&run(values(), packs, None).unwrap_err());
        assert!(n.iter().any(|s| s.contains("Equality constraint not satisfied")), "{n:?}");
    }

    #[test]
    fn a_tampered_running_pack_fails_its_gate() {
        let packs = pack(&values(), V);
        let first = failure_names(&run(values(), packs.clone(), Some((36, 5))).unwrap_err());
        assert!(first.iter().any(|s| s.contains("pack first")), "{first:?}");
        let next = failure_names(&run(values(), packs, Some((40, 5))).unwrap_err());
        assert!(next.iter().any(|s| s.contains("pack next")), "{next:?}");
    }
}
