//! Quantized tensor chips.
//!
//! Every chip follows halo2's pattern: an `XInstructions` trait here, and in a child
//! module an `XConfig` (columns, selectors, named gates) plus an `XChip` with
//! `configure` and `construct`. The chips share one pool of advice and fixed columns;
//! each gate is switched on by its own selector, so regions of different chips stack
//! row after row in the same columns, and chips in disjoint columns can share rows (the
//! model circuit puts elementwise, function and packing rows on their rescale rows).
//!
//! halo2-axiom's `SimpleFloorPlanner` places every region at row 0, so chips take an
//! explicit absolute `offset`, handed out by [`RowCursor`].
//!
//! Witness values come from the model's evaluation ([`crate::quant::Trace`]) and are handed to
//! the chips (the `*Witness` types), so negative tests and `zkinfer mutate` can change a value
//! and check that a named gate, lookup or copy fails.

pub mod dot;
pub mod elementwise;
pub mod freivalds;
pub mod function;
pub mod pack;
pub mod poseidon;
pub mod range_table;
pub mod requant;

use halo2_proofs::circuit::{Cell, Region};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::PrimeField;
pub use halo2_proofs::halo2curves::ff::PrimeField as PrimeFieldRepr;
use halo2_proofs::plonk::Error as PlonkError;

/// An assigned advice cell with the integer it holds.
#[derive(Clone, Copy, Debug)]
pub struct QCell {
    /// Where it lives.
    pub cell: Cell,
    /// The value, as a signed integer (the field element is its image mod p).
    pub value: i64,
}

/// Maps a signed integer into the field.
pub fn fr_from_i128(v: i128) -> Fr {
    let mag = Fr::from_u128(v.unsigned_abs());
    if v < 0 {
        -mag
    } else {
        mag
    }
}

/// Maps a signed integer into the field.
pub fn fr_from_i64(v: i64) -> Fr {
    fr_from_i128(i128::from(v))
}

/// Hands out absolute rows to regions, in order.
#[derive(Debug)]
pub struct RowCursor {
    next: usize,
    usable: usize,
}

impl RowCursor {
    /// A cursor over rows `0..usable`.
    pub fn new(usable: usize) -> Self {
        RowCursor { next: 0, usable }
    }

    /// Reserves `n` rows and returns the first.
    pub fn alloc(&mut self, n: usize) -> Result<usize, PlonkError> {
        let start = self.next;
        self.next += n;
        if self.next > self.usable {
            return Err(PlonkError::NotEnoughRowsAvailable { current_k: 0 });
        }
        Ok(start)
    }

    /// Rows used so far.
    pub fn used(&self) -> usize {
        self.next
    }
}

/// Dot products of one activation vector with several constant weight vectors.
pub trait DotInstructions {
    /// Lays out up to `lanes` dot products of `x` with the columns of `weights`
    /// (`weights[lane][0]` is the bias, paired with a constant 1) starting at `offset`,
    /// and returns the final accumulator of each lane. Uses `x.len() + 1` rows.
    fn assign_group(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        x: &[Cell],
        weights: &[Vec<Fr>],
        witness: &dot::DotWitness,
    ) -> Result<Vec<Cell>, PlonkError>;
}

/// Rescale with rounding, range check and optional ReLU.
pub trait RequantInstructions {
    /// Lays out one row per input and returns the output cells.
    fn assign_rows(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        inputs: &[Cell],
        params: requant::RequantParams,
        witness: &[requant::RequantWitness],
    ) -> Result<Vec<QCell>, PlonkError>;

    /// The same rows with inputs that are the rows' own cells, copied from nowhere; returns
    /// them and the outputs. Unchecked: nothing binds an input to a value computed elsewhere,
    /// so the caller must constrain every returned input cell (the Freivalds check does, for
    /// the sums of a matrix product).
    fn assign_rows_input_unchecked(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        params: requant::RequantParams,
        witness: &[requant::RequantWitness],
    ) -> Result<(Vec<Cell>, Vec<QCell>), PlonkError>;
}

/// Elementwise `z = cx·x + cy·y + cxy·x·y + c0`.
pub trait ElementwiseInstructions {
    /// Lays out one row per element and returns the `z` cells. Each `y` is copied from its
    /// cell (the constant-zero cell where an operation has no second operand).
    fn assign_rows(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        x: &[QCell],
        y: &[QCell],
        coeffs: &[[Fr; 4]],
        z: &[Fr],
    ) -> Result<Vec<Cell>, PlonkError>;

    /// The same rows without `z`: another chip assigns the `z` column at these rows (the
    /// model's rescale rows, whose input column it is), and the gate binds what it assigns.
    fn assign_operands(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        x: &[QCell],
        y: &[QCell],
        coeffs: &[[Fr; 4]],
    ) -> Result<(), PlonkError>;

    /// Lays out one row per value `v` with `x = y = v` (copied from `cells`) and `z = v²`
    /// (`cxy = 1`): a gate that reads each cell, for values that are not small integers.
    fn assign_squares(&self, region: &mut Region<'_, Fr>, offset: usize, cells: &[(Cell, Fr)]) -> Result<Vec<Cell>, PlonkError>;
}

/// Matrix products checked with a random challenge, in second-phase columns.
pub trait FreivaldsInstructions {
    /// Lays out Horner's rule over the copied `inputs` plus `constants` (empty: zeros) with
    /// the running sums `acc` (`inputs.len()` rows); returns the last sum,
    /// `Σ_j (e_j + f_j)·ρ^{len-1-j}`.
    fn assign_horner(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        inputs: &[freivalds::ValueCell],
        constants: &[Fr],
        acc: &[halo2_proofs::circuit::Value<Fr>],
    ) -> Result<freivalds::ValueCell, PlonkError>;

    /// Lays out Horner's rule over constant `values` (a fixed column) with the running sums
    /// `acc`; returns the last sum.
    fn assign_horner_fixed(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        values: &[Fr],
        acc: &[halo2_proofs::circuit::Value<Fr>],
    ) -> Result<freivalds::ValueCell, PlonkError>;

    /// Lays out `Σ_t a_t·v_t` over copied cells with the running sums `acc`, and a check row
    /// asserting that the sum equals the copied `u` (`a.len() + 1` rows).
    fn assign_dot_check(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        a_v: (&[freivalds::ValueCell], &[freivalds::ValueCell]),
        acc: &[halo2_proofs::circuit::Value<Fr>],
        u: freivalds::ValueCell,
    ) -> Result<(), PlonkError>;
}

/// Poseidon commitment to a vector of field elements.
pub trait PoseidonInstructions {
    /// Lays out the chained hash of `inputs`; returns the input cells and the digest cell.
    fn assign_commitment(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        witness: &poseidon::CommitmentWitness,
    ) -> Result<(Vec<Cell>, Cell), PlonkError>;
}

/// The signed integer a field element represents, when it is within ±2^63.
pub fn i64_from_fr(f: &Fr) -> Option<i64> {
    let small = |x: &Fr| -> Option<u64> {
        let repr = x.to_repr();
        if repr[8..].iter().any(|&b| b != 0) {
            return None;
        }
        let mut le = [0u8; 8];
        le.copy_from_slice(&repr[..8]);
        Some(u64::from_le_bytes(le))
    };
    if let Some(v) = small(f).filter(|v| *v <= i64::MAX as u64) {
        return Some(v as i64);
    }
    small(&-*f).filter(|v| *v <= 1u64 << 63).map(|v| (v as i128).wrapping_neg() as i64)
}

/// MockProver failures as names: `"<gate name>…"` for a constraint, `"lookup <name>"` for a
/// lookup, so negative tests can assert which gate or lookup caught a wrong witness.
#[cfg(test)]
pub(crate) fn failure_names(failures: &[halo2_proofs::dev::VerifyFailure]) -> Vec<String> {
    use halo2_proofs::dev::VerifyFailure;
    failures
        .iter()
        .map(|f| match f {
            VerifyFailure::ConstraintNotSatisfied { constraint, .. } => format!("{constraint}"),
            VerifyFailure::Lookup { name, .. } => format!("lookup {name}"),
            other => format!("{other:?}"),
        })
        .collect()
}
