//! Poseidon commitment to the private input, matching circomlib's Poseidon over BN254.
//!
//! The permutation's round constants and MDS matrix are taken at run time from
//! `light-poseidon` (circomlib-compatible, width 13, x^5 S-box), so they cannot drift
//! from the maintained implementation that tests compare against.
//!
//! Commitment to `x[0..n]` (a chain, recomputable with circomlibjs' `poseidon`):
//! `h_0 = n`, `h_{i+1} = Poseidon12([h_i, x[11i], …, x[11i+10]])` (zero-padded),
//! commitment = last `h`. Each step is the circom hash with 12 inputs (state width 13,
//! capacity element 0).
//!
//! Row layout of one permutation (advice `s_0 … s_12, aux`, fixed `c_0 … c_12`):
//! - full round (2 rows): row r holds the state `x`; row r+1 holds the round constants `c`
//!   and `sq_j = (x_j + c_j)^2` ("poseidon full round squares"); the next state (row r+2) is
//!   `M · (sq^2 · (x + c))`;
//! - partial round (1 row): the state `x`, the constants `c` and `aux = (x_0 + c_0)^2`
//!   ("poseidon partial round square"); the next state (row r+1) is
//!   `M · (aux^2·(x_0 + c_0), x_1 + c_1, …)`;
//! - both mixes are one gate ("poseidon round mix"), on the row with the constants;
//! - the first row's `s_0` is 0 ("poseidon init"), `s_1` is the chained `h`, `s_2…s_12`
//!   are the input cells; the last row's `s_0` is the output.
//!
//! Squares are kept in cells so every gate has degree 4 with its selector.

use std::sync::OnceLock;

use ark_ff::{BigInteger, PrimeField};
use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::PrimeField as _;
use halo2_proofs::plonk::{Advice, Column, ConstraintSystem, Error as PlonkError, Expression, Fixed, Selector};
use halo2_proofs::poly::Rotation;

use super::PoseidonInstructions;

/// State width.
pub const WIDTH: usize = 13;
/// Input elements absorbed per permutation (one slot carries the chain, one is capacity).
pub const RATE: usize = WIDTH - 2;

/// Round constants and MDS matrix, converted from light-poseidon.
#[derive(Debug)]
pub struct PoseidonParams {
    ark: Vec<Fr>,
    mds: Vec<Vec<Fr>>,
    full_rounds: usize,
    partial_rounds: usize,
}

fn ark_to_fr(x: &ark_bn254::Fr) -> Fr {
    let mut repr = [0u8; 32];
    repr.copy_from_slice(&x.into_bigint().to_bytes_le());
    // Canonical by construction: ark's field and ours are the same BN254 scalar field.
    Option::from(Fr::from_repr(repr)).unwrap_or_else(Fr::zero)
}

/// The circomlib parameters for width 13.
pub fn params() -> &'static PoseidonParams {
    static PARAMS: OnceLock<PoseidonParams> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let p = light_poseidon::parameters::bn254_x5::get_poseidon_parameters::<ark_bn254::Fr>(WIDTH as u8)
            .unwrap_or_else(|e| panic!("light-poseidon has width {WIDTH}: {e}"));
        PoseidonParams {
            ark: p.ark.iter().map(ark_to_fr).collect(),
            mds: p.mds.iter().map(|row| row.iter().map(ark_to_fr).collect()).collect(),
            full_rounds: p.full_rounds,
            partial_rounds: p.partial_rounds,
        }
    })
}

impl PoseidonParams {
    fn is_full(&self, round: usize) -> bool {
        round < self.full_rounds / 2 || round >= self.full_rounds / 2 + self.partial_rounds
    }

    /// Rows one permutation occupies.
    pub fn rows_per_permutation(&self) -> usize {
        2 * self.full_rounds + self.partial_rounds + 1
    }

    fn rc(&self, round: usize) -> &[Fr] {
        &self.ark[round * WIDTH..(round + 1) * WIDTH]
    }

    fn mix(&self, v: &[Fr; WIDTH]) -> [Fr; WIDTH] {
        std::array::from_fn(|i| self.mds[i].iter().zip(v).fold(Fr::zero(), |acc, (m, x)| acc + *m * x))
    }

    /// Runs the permutation, returning every layout row (`WIDTH` state cells + aux).
    pub fn permute_rows(&self, mut s: [Fr; WIDTH]) -> Vec<[Fr; WIDTH + 1]> {
        let row = |s: &[Fr; WIDTH], aux: Fr| -> [Fr; WIDTH + 1] { std::array::from_fn(|i| if i < WIDTH { s[i] } else { aux }) };
        let mut rows = Vec::with_capacity(self.rows_per_permutation());
        for round in 0..self.full_rounds + self.partial_rounds {
            let c = self.rc(round);
            let xc: [Fr; WIDTH] = std::array::from_fn(|j| s[j] + c[j]);
            if self.is_full(round) {
                let sq: [Fr; WIDTH] = std::array::from_fn(|j| xc[j].square());
                rows.push(row(&s, Fr::zero()));
                rows.push(row(&sq, Fr::zero()));
                s = self.mix(&std::array::from_fn(|j| sq[j].square() * xc[j]));
            } else {
                let aux = xc[0].square();
                rows.push(row(&s, aux));
                s = self.mix(&std::array::from_fn(|j| if j == 0 { aux.square() * xc[0] } else { xc[j] }));
            }
        }
        rows.push(row(&s, Fr::zero()));
        rows
    }
}

/// Witness of a whole commitment.
#[derive(Clone, Debug, PartialEq)]
pub struct CommitmentWitness {
    /// The committed values.
    pub inputs: Vec<Fr>,
    /// Layout rows of each permutation.
    pub perms: Vec<Vec<[Fr; WIDTH + 1]>>,
    /// The commitment.
    pub digest: Fr,
}

impl CommitmentWitness {
    /// Computes the chain over `inputs`.
    pub fn compute(inputs: &[Fr]) -> Self {
        let p = params();
        let mut h = Fr::from(inputs.len() as u64);
        let mut perms = Vec::new();
        for chunk in inputs.chunks(RATE) {
            let state: [Fr; WIDTH] = std::array::from_fn(|i| match i {
                0 => Fr::zero(),
                1 => h,
                _ => chunk.get(i - 2).copied().unwrap_or(Fr::zero()),
            });
            let rows = p.permute_rows(state);
            h = rows.last().map_or(Fr::zero(), |r| r[0]);
            perms.push(rows);
        }
        CommitmentWitness { inputs: inputs.to_vec(), perms, digest: h }
    }
}

/// The commitment to `inputs`.
pub fn commit(inputs: &[Fr]) -> Fr {
    CommitmentWitness::compute(inputs).digest
}

/// Rows the commitment to `n` inputs occupies.
pub fn commitment_rows(n: usize) -> usize {
    n.div_ceil(RATE).max(1) * params().rows_per_permutation()
}

/// Columns and selectors of the Poseidon chip.
#[derive(Clone, Debug)]
pub struct PoseidonConfig {
    state: [Column<Advice>; WIDTH],
    aux: Column<Advice>,
    rc: [Column<Fixed>; WIDTH],
    q_init: Selector,
    q_full: Selector,
    q_partial: Selector,
}

/// The Poseidon chip.
#[derive(Clone, Debug)]
pub struct PoseidonChip {
    config: PoseidonConfig,
}

impl PoseidonChip {
    /// Creates the round gates.
    ///
    /// One mixing gate serves both kinds of round: halo2 evaluates every gate on every row, and
    /// the 13×13 MDS product is most of the quotient's work, so it is paid once per row, not
    /// once per kind of round. Which S-box outputs it mixes is chosen linearly by the two
    /// selectors (never both on one row): `(q_full + q_partial)·next_i =
    /// Σ_j M_ij·(q_full·full_j + q_partial·partial_j)`.
    pub fn configure(
        meta: &mut ConstraintSystem<Fr>,
        state: [Column<Advice>; WIDTH],
        aux: Column<Advice>,
        rc: [Column<Fixed>; WIDTH],
    ) -> PoseidonConfig {
        let p = params();
        // Complex selectors: the mixing gate adds them (halo2 allows simple ones only as factors).
        let (q_init, q_full, q_partial) = (meta.selector(), meta.complex_selector(), meta.complex_selector());
        let m = |i: usize, j: usize| Expression::Constant(p.mds[i][j]);
        meta.create_gate("poseidon init", |vc| vec![vc.query_selector(q_init) * vc.query_advice(state[0], Rotation::cur())]);
        // Full round, on its second row: the state is on the row before, squares on this one.
        meta.create_gate("poseidon full round squares", |vc| {
            let q = vc.query_selector(q_full);
            (0..WIDTH)
                .map(|j| {
                    let xc = vc.query_advice(state[j], Rotation::prev()) + vc.query_fixed(rc[j], Rotation::cur());
                    q.clone() * (vc.query_advice(state[j], Rotation::cur()) - xc.clone() * xc)
                })
                .collect::<Vec<_>>()
        });
        meta.create_gate("poseidon partial round square", |vc| {
            let xc = vc.query_advice(state[0], Rotation::cur()) + vc.query_fixed(rc[0], Rotation::cur());
            vec![vc.query_selector(q_partial) * (vc.query_advice(aux, Rotation::cur()) - xc.clone() * xc)]
        });
        meta.create_gate("poseidon round mix", |vc| {
            let (qf, qp) = (vc.query_selector(q_full), vc.query_selector(q_partial));
            let sbox_in: Vec<Expression<Fr>> = (0..WIDTH)
                .map(|j| {
                    let full = {
                        let sq = vc.query_advice(state[j], Rotation::cur());
                        sq.clone() * sq * (vc.query_advice(state[j], Rotation::prev()) + vc.query_fixed(rc[j], Rotation::cur()))
                    };
                    let xc = vc.query_advice(state[j], Rotation::cur()) + vc.query_fixed(rc[j], Rotation::cur());
                    let partial = if j == 0 {
                        let a = vc.query_advice(aux, Rotation::cur());
                        a.clone() * a * xc
                    } else {
                        xc
                    };
                    qf.clone() * full + qp.clone() * partial
                })
                .collect();
            (0..WIDTH)
                .map(|i| {
                    let next = vc.query_advice(state[i], Rotation::next());
                    let mixed = (0..WIDTH).fold(Expression::Constant(Fr::zero()), |acc, j| acc + m(i, j) * sbox_in[j].clone());
                    (qf.clone() + qp.clone()) * next - mixed
                })
                .collect::<Vec<_>>()
        });
        PoseidonConfig { state, aux, rc, q_init, q_full, q_partial }
    }

    /// Wraps a configuration.
    pub fn construct(config: PoseidonConfig) -> Self {
        PoseidonChip { config }
    }

    /// Lays out one permutation's rows and selectors; returns the state cells of the first row and the output cell.
    fn assign_permutation(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        rows: &[[Fr; WIDTH + 1]],
    ) -> Result<(Vec<Cell>, Cell), PlonkError> {
        let (c, p) = (&self.config, params());
        let mut first = Vec::with_capacity(WIDTH);
        let mut last = None;
        // Only a partial round's row reads `aux`: elsewhere it stays unassigned, not a free cell.
        let aux_read: Vec<bool> = (0..p.full_rounds + p.partial_rounds)
            .flat_map(|round| if p.is_full(round) { vec![false, false] } else { vec![true] })
            .collect();
        for (r, values) in rows.iter().enumerate() {
            for (j, v) in values.iter().enumerate() {
                if j == WIDTH && !aux_read.get(r).copied().unwrap_or(false) {
                    continue;
                }
                let col = if j < WIDTH { c.state[j] } else { c.aux };
                let cell = region.assign_advice(col, offset + r, Value::known(*v)).cell();
                if r == 0 && j < WIDTH {
                    first.push(cell);
                }
                if r + 1 == rows.len() && j == 0 {
                    last = Some(cell);
                }
            }
        }
        c.q_init.enable(region, offset)?;
        let mut row = offset;
        for round in 0..p.full_rounds + p.partial_rounds {
            let full = p.is_full(round);
            // A full round's gates sit on its second row (the squares' row).
            let gate_row = if full { row + 1 } else { row };
            for (col, v) in c.rc.iter().zip(p.rc(round)) {
                region.assign_fixed(*col, gate_row, *v);
            }
            if full {
                c.q_full.enable(region, gate_row)?;
                row += 2;
            } else {
                c.q_partial.enable(region, gate_row)?;
                row += 1;
            }
        }
        Ok((first, last.ok_or(PlonkError::Synthesis)?))
    }
}

impl PoseidonInstructions for PoseidonChip {
    fn assign_commitment(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        witness: &CommitmentWitness,
    ) -> Result<(Vec<Cell>, Cell), PlonkError> {
        let n = witness.inputs.len();
        let per = params().rows_per_permutation();
        let mut inputs = Vec::with_capacity(n);
        let mut prev: Option<Cell> = None;
        for (p, rows) in witness.perms.iter().enumerate() {
            let (first, out) = self.assign_permutation(region, offset + p * per, rows)?;
            match prev {
                None => region.constrain_constant(first[1], Fr::from(n as u64))?,
                Some(h) => region.constrain_equal(first[1], h),
            }
            for (j, cell) in first.iter().enumerate().skip(2) {
                if p * RATE + j - 2 < n {
                    inputs.push(*cell);
                } else {
                    region.constrain_constant(*cell, Fr::zero())?;
                }
            }
            prev = Some(out);
        }
        Ok((inputs, prev.ok_or(PlonkError::Synthesis)?))
    }
}

#[cfg(test)]
mod tests {
    use halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
    use halo2_proofs::dev::{MockProver, VerifyFailure};
    use halo2_proofs::plonk::{Circuit, Instance};
    use light_poseidon::{Poseidon, PoseidonHasher};

    use super::*;
    use crate::chips::fr_from_i64;

    fn to_ark(x: Fr) -> ark_bn254::Fr {
        ark_bn254::Fr::from_le_bytes_mod_order(&x.to_repr())
    }

    /// The chain computed with light-poseidon directly.
    fn reference_commit(inputs: &[Fr]) -> Fr {
        let mut hasher = Poseidon::<ark_bn254::Fr>::new_circom(WIDTH - 1).unwrap();
        let mut h = ark_bn254::Fr::from(inputs.len() as u64);
        for chunk in inputs.chunks(RATE) {
            let mut block = vec![h];
            block.extend(chunk.iter().map(|x| to_ark(*x)));
            block.resize(WIDTH - 1, ark_bn254::Fr::from(0u64));
            h = hasher.hash(&block).unwrap();
        }
        ark_to_fr(&h)
    }

    #[test]
    fn matches_light_poseidon() {
        for n in [1usize, 5, 11, 12, 23, 30] {
            let inputs: Vec<Fr> = (0..n as i64).map(|i| fr_from_i64(i * 37 - 200)).collect();
            assert_eq!(commit(&inputs), reference_commit(&inputs), "n = {n}");
        }
    }

    #[test]
    fn circom_single_hash_vector() {
        // circomlibjs: poseidon([1, 2]) (width 3) — a known published vector, checked
        // through light-poseidon to tie our conversion to the circom parameters.
        let mut h = Poseidon::<ark_bn254::Fr>::new_circom(2).unwrap();
        let out = h.hash(&[ark_bn254::Fr::from(1u64), ark_bn254::Fr::from(2u64)]).unwrap();
        let expected = "115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a";
        let mut be = ark_to_fr(&out).to_repr();
        be.reverse();
        assert_eq!(hex::encode(be), expected);
    }

    #[derive(Clone, Default)]
    struct TestCircuit {
        inputs: Vec<Fr>,
        tamper: Option<(usize, usize, usize)>,
    }

    impl Circuit<Fr> for TestCircuit {
        type Config = (PoseidonConfig, Column<Instance>);
        type FloorPlanner = SimpleFloorPlanner;
        type Params = ();
        fn without_witnesses(&self) -> Self {
            self.clone()
        }
        fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
            let state: [Column<Advice>; WIDTH] = std::array::from_fn(|_| meta.advice_column());
            let aux = meta.advice_column();
            let rc: [Column<Fixed>; WIDTH] = std::array::from_fn(|_| meta.fixed_column());
            let constants = meta.fixed_column();
            meta.enable_constant(constants);
            state.iter().for_each(|c| meta.enable_equality(*c));
            let instance = meta.instance_column();
            meta.enable_equality(instance);
            (PoseidonChip::configure(meta, state, aux, rc), instance)
        }
        fn synthesize(&self, (config, instance): Self::Config, mut layouter: impl Layouter<Fr>) -> Result<(), PlonkError> {
            let chip = PoseidonChip::construct(config);
            let mut w = CommitmentWitness::compute(&self.inputs);
            if let Some((p, r, c)) = self.tamper {
                w.perms[p][r][c] += Fr::one();
            }
            let (_, digest) = layouter.assign_region(|| "poseidon test", |mut region| chip.assign_commitment(&mut region, 0, &w))?;
            layouter.constrain_instance(digest, instance, 0);
            Ok(())
        }
    }

    fn gate_failures(c: &TestCircuit, digest: Fr) -> Vec<String> {
        match MockProver::run(8, c, vec![vec![digest]]).unwrap().verify() {
            Ok(()) => vec![],
            Err(fs) => fs
                .iter()
                .map(|f| match f {
                    VerifyFailure::ConstraintNotSatisfied { constraint, .. } => {
                        format!("{constraint}")
                    }
                    other => format!("{other:?}"),
                })
                .collect(),
        }
    }

    #[test]
    fn circuit_matches_native_and_rejects_tampering() {
        let inputs: Vec<Fr> = (0..15).map(|i| fr_from_i64(i - 7)).collect();
        let digest = commit(&inputs);
        let honest = TestCircuit { inputs: inputs.clone(), tamper: None };
        assert!(gate_failures(&honest, digest).is_empty());
        // A wrong public digest fails.
        assert!(!gate_failures(&honest, digest + Fr::one()).is_empty());
        let per = params().rows_per_permutation();
        let p = params();
        // Rows of the first full rounds, then of the partial rounds (derived, not assumed).
        let first_partial = 2 * (p.full_rounds / 2);
        let partial_row = first_partial + 3; // a state row in the partial rounds
        let second_full = first_partial + p.partial_rounds; // state row of the first full round after them
        for (tamper, gate) in [
            ((0, 0, 5), "poseidon full round squares"),                 // an input, read at Rotation::prev
            ((0, 1, 5), "poseidon full round squares"),                 // a square cell
            ((0, 1, 5), "poseidon round mix"),                          // ... also mixed
            ((0, 2, 7), "poseidon round mix"),                          // a full round's output
            ((0, first_partial, 4), "poseidon round mix"),              // full -> partial switch
            ((1, partial_row, WIDTH), "poseidon partial round square"), // aux
            ((1, partial_row, WIDTH), "poseidon round mix"),            // ... also mixed
            ((0, partial_row + 1, 3), "poseidon round mix"),            // a partial round's output
            ((0, second_full, 9), "poseidon round mix"),                // partial -> full switch
            ((1, second_full + 1, 2), "poseidon full round squares"),   // a square in the second half
            ((1, per - 1, 0), "poseidon round mix"),                    // the output
            ((0, 0, 0), "poseidon init"),
        ] {
            let c = TestCircuit { inputs: inputs.clone(), tamper: Some(tamper) };
            let f = gate_failures(&c, digest);
            assert!(f.iter().any(|s| s.contains(gate)), "{tamper:?}: expected {gate} in {f:?}");
        }
    }
}
