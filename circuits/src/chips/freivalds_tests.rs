use halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
use halo2_proofs::dev::MockProver;
use halo2_proofs::plonk::Circuit;

use super::*;
use crate::chips::{failure_names, fr_from_i64};

/// What a test does to the second-phase witness.
#[derive(Clone, Copy, Debug, Default)]
enum Tamper {
    #[default]
    None,
    /// Adds one to a Horner running sum of `B·r` (row `t`, term `j`), and carries it on.
    Horner { t: usize, j: usize },
    /// Adds one to a running sum of row `i`'s dot product, at term `t`, and carries it on.
    Dot { i: usize, t: usize },
    /// Lays out `A[i][t] + 1` in the second phase, in place of the committed value.
    CopyA { i: usize, t: usize },
}

#[derive(Clone, Default)]
struct TestCircuit {
    a: Vec<i64>,
    b: Vec<i64>,
    c: Vec<i64>,
    dims: (usize, usize, usize),
    tamper: Tamper,
    /// `B` as constants (a projection's weights) and `C = A·B + bias`.
    fixed_b: bool,
    bias: Vec<i64>,
}

fn values(cells: &[ValueCell]) -> Vec<Value<Fr>> {
    cells.iter().map(|c| c.value).collect()
}

impl TestCircuit {
    fn honest(a: Vec<i64>, b: Vec<i64>, (m, k, n): (usize, usize, usize)) -> Self {
        let c = (0..m * n).map(|e| (0..k).map(|t| a[(e / n) * k + t] * b[t * n + e % n]).sum()).collect();
        TestCircuit { a, b, c, dims: (m, k, n), tamper: Tamper::None, fixed_b: false, bias: Vec::new() }
    }

    /// The same product with `B` constant and a bias added to `C`.
    fn with_fixed_b(mut self, bias: Vec<i64>) -> Self {
        self.c.iter_mut().zip(&bias).for_each(|(c, b)| *c += b);
        self.fixed_b = true;
        self.bias = bias;
        self
    }

    /// The check with a tampered witness, laid out through the chip's own instructions.
    fn tampered(
        &self,
        chip: &FreivaldsChip,
        region: &mut Region<'_, Fr>,
        (a, b, c): (&[ValueCell], &[ValueCell], &[ValueCell]),
        rho: Value<Fr>,
    ) -> Result<(), PlonkError> {
        let (m, k, n) = self.dims;
        let mut row = 0;
        let mut v = Vec::new();
        for (t, bt) in b.chunks(n).enumerate() {
            let mut acc = horner_accumulators(&values(bt), rho);
            if let Tamper::Horner { t: tt, j } = self.tamper {
                if tt == t {
                    acc.iter_mut().skip(j).for_each(|s| *s = *s + Value::known(Fr::one()));
                }
            }
            if self.fixed_b {
                let w: Vec<Fr> = self.b[t * n..(t + 1) * n].iter().map(|&v| fr_from_i64(v)).collect();
                let known: Vec<Value<Fr>> = w.iter().map(|&x| Value::known(x)).collect();
                let mut acc = horner_accumulators(&known, rho);
                if let Tamper::Horner { t: tt, j } = self.tamper {
                    if tt == t {
                        acc.iter_mut().skip(j).for_each(|s| *s = *s + Value::known(Fr::one()));
                    }
                }
                v.push(chip.assign_horner_fixed(region, row, &w, &acc)?);
            } else {
                v.push(chip.assign_horner(region, row, bt, &[], &acc)?);
            }
            row += n;
        }
        let mut u = Vec::new();
        for ci in c.chunks(n) {
            u.push(chip.assign_horner(region, row, ci, &[], &horner_accumulators(&values(ci), rho))?);
            row += n;
        }
        for (i, ai) in a.chunks(k).enumerate() {
            let mut ai = ai.to_vec();
            if let Tamper::CopyA { i: ii, t } = self.tamper {
                if ii == i {
                    ai[t].value = ai[t].value + Value::known(Fr::one());
                }
            }
            let mut acc = dot_accumulators(&values(&ai), &values(&v));
            if let Tamper::Dot { i: ii, t } = self.tamper {
                if ii == i {
                    acc.iter_mut().skip(t).for_each(|s| *s = *s + Value::known(Fr::one()));
                }
            }
            chip.assign_dot_check(region, row, (&ai, &v), &acc, u[i])?;
            row += k + 1;
        }
        debug_assert_eq!(row, check_rows(m, k, n));
        Ok(())
    }
}

impl Circuit<Fr> for TestCircuit {
    type Config = (FreivaldsConfig, Column<Advice>);
    type FloorPlanner = SimpleFloorPlanner;
    type Params = ();
    fn without_witnesses(&self) -> Self {
        self.clone()
    }
    fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
        let first = meta.advice_column();
        meta.enable_equality(first);
        (FreivaldsChip::configure(meta), first)
    }
    fn synthesize(&self, (config, first): Self::Config, mut layouter: impl Layouter<Fr>) -> Result<(), PlonkError> {
        // A, B and C in one first-phase column, as an earlier chip would leave them (B is
        // laid out but unread when it is constant).
        let committed = layouter.assign_region(
            || "committed",
            |mut region| {
                let all = self.a.iter().chain(&self.b).chain(&self.c);
                Ok(all
                    .enumerate()
                    .map(|(row, &v)| {
                        let value = Value::known(fr_from_i64(v));
                        ValueCell { cell: region.assign_advice(first, row, value).cell(), value }
                    })
                    .collect::<Vec<_>>())
            },
        )?;
        layouter.next_phase();
        let rho = layouter.get_challenge(config.challenge());
        let (a, rest) = committed.split_at(self.a.len());
        let (b, c) = rest.split_at(self.b.len());
        let chip = FreivaldsChip::construct(config);
        layouter.assign_region(
            || "freivalds",
            |mut region| match self.tamper {
                Tamper::None if self.fixed_b => {
                    let w: Vec<Fr> = self.b.iter().map(|&v| fr_from_i64(v)).collect();
                    let bias: Vec<Fr> = self.bias.iter().map(|&v| fr_from_i64(v)).collect();
                    assign_matmul_check(&chip, &mut region, 0, (a, Factor::Fixed(&w), c, &bias), self.dims, rho)
                }
                Tamper::None => assign_matmul_check(&chip, &mut region, 0, (a, Factor::Cells(b), c, &[]), self.dims, rho),
                _ => self.tampered(&chip, &mut region, (a, b, c), rho),
            },
        )
    }
}

fn example() -> TestCircuit {
    // 3×4 · 4×5, with negative entries.
    let a = vec![3, -1, 4, 1, -5, 9, 2, -6, 5, 3, -5, 8];
    let b = (0..20).map(|i| (i * 7 % 11) - 5).collect();
    TestCircuit::honest(a, b, (3, 4, 5))
}

fn failures(c: &TestCircuit) -> Vec<String> {
    match MockProver::run(8, c, vec![]).unwrap().verify() {
        Ok(()) => Vec::new(),
        Err(f) => failure_names(&f),
    }
}

#[test]
fn honest_products_verify() {
    assert_eq!(failures(&example()), Vec::<String>::new());
    // A column vector and a row vector: n = 1 and k = 1.
    assert_eq!(failures(&TestCircuit::honest(vec![2, -3, 7], vec![4], (3, 1, 1))), Vec::<String>::new());
    assert_eq!(failures(&TestCircuit::honest(vec![2, -3], vec![4, 5, 6, -1, 0, 2], (1, 2, 3))), Vec::<String>::new());
}

#[test]
fn a_wrong_product_fails_the_check_gate() {
    // C off by one in one entry, every second-phase value honest for the C committed.
    for e in [0, 7, 14] {
        let mut c = example();
        c.c[e] += 1;
        let names = failures(&c);
        assert!(!names.is_empty() && names.iter().all(|n| n.contains("freivalds check")), "entry {e}: {names:?}");
    }
    // A wrong product that keeps every row sum: still caught (the challenge weighs columns).
    let mut c = example();
    c.c[0] += 1;
    c.c[1] -= 1;
    assert!(failures(&c).iter().any(|n| n.contains("freivalds check")));
}

#[test]
fn a_product_of_other_factors_fails_the_check_gate() {
    // The C of A′·B where A′ differs from the committed A in one entry.
    let mut c = example();
    let mut a = c.a.clone();
    a[5] += 2;
    c.c = TestCircuit::honest(a, c.b.clone(), c.dims).c;
    assert!(failures(&c).iter().any(|n| n.contains("freivalds check")));
}

#[test]
fn a_tampered_horner_sum_fails_the_horner_gate() {
    let mut c = example();
    c.tamper = Tamper::Horner { t: 2, j: 3 };
    let names = failures(&c);
    assert!(names.iter().any(|n| n.contains("freivalds horner")), "{names:?}");
    c.tamper = Tamper::Horner { t: 1, j: 0 };
    assert!(failures(&c).iter().any(|n| n.contains("freivalds horner first")));
}

#[test]
fn a_tampered_dot_sum_fails_the_dot_gate() {
    let mut c = example();
    c.tamper = Tamper::Dot { i: 1, t: 2 };
    let names = failures(&c);
    assert!(names.iter().any(|n| n.contains("freivalds dot")), "{names:?}");
    c.tamper = Tamper::Dot { i: 2, t: 0 };
    assert!(failures(&c).iter().any(|n| n.contains("freivalds dot first")));
}

#[test]
fn a_factor_not_copied_from_its_commitment_fails_the_permutation() {
    // The second phase computes on A′ (consistently: the check itself holds for A′·B only if
    // C did; here C is A·B, so both the copy and the check fail).
    let mut c = example();
    c.tamper = Tamper::CopyA { i: 0, t: 1 };
    let names = failures(&c);
    assert!(names.iter().any(|n| n.contains("Equality constraint not satisfied")), "{names:?}");
}

fn fixed_example() -> TestCircuit {
    example().with_fixed_b((0..15).map(|i| 3 * i - 20).collect())
}

#[test]
fn honest_products_with_constant_weights_and_a_bias_verify() {
    assert_eq!(failures(&fixed_example()), Vec::<String>::new());
    assert_eq!(failures(&TestCircuit::honest(vec![2, -3, 7], vec![4], (3, 1, 1)).with_fixed_b(vec![1, 2, 3])), Vec::<String>::new());
}

#[test]
fn a_wrong_sum_or_a_missing_bias_fails_the_check_with_constant_weights() {
    for e in [0, 9, 14] {
        let mut c = fixed_example();
        c.c[e] -= 1;
        let names = failures(&c);
        assert!(!names.is_empty() && names.iter().all(|n| n.contains("freivalds check")), "entry {e}: {names:?}");
    }
    // The sums without their bias: A·B exactly, but not what the step computes.
    let mut c = fixed_example();
    c.c = example().c;
    assert!(failures(&c).iter().any(|n| n.contains("freivalds check")));
}

#[test]
fn a_tampered_horner_sum_of_constant_weights_fails_the_fixed_horner_gate() {
    // (The chains of C carry no bias in this tampered layout: compare with a bias-free C.)
    let mut c = example().with_fixed_b(vec![0; 15]);
    c.tamper = Tamper::Horner { t: 3, j: 2 };
    let names = failures(&c);
    assert!(names.iter().any(|n| n.contains("freivalds horner fixed")), "{names:?}");
    c.tamper = Tamper::Horner { t: 0, j: 0 };
    assert!(failures(&c).iter().any(|n| n.contains("freivalds horner fixed first")));
}

#[test]
fn horner_and_dot_helpers_match_their_definitions() {
    let rho = Fr::from(7);
    let e: Vec<Value<Fr>> = [3u64, 1, 4, 1].iter().map(|&v| Value::known(Fr::from(v))).collect();
    let last = *horner_accumulators(&e, Value::known(rho)).last().unwrap();
    let want = Fr::from(3) * rho * rho * rho + rho * rho + Fr::from(4) * rho + Fr::one();
    last.assert_if_known(|v| *v == want);
    let d = dot_accumulators(&e, &e);
    d[3].assert_if_known(|v| *v == Fr::from(27));
    assert_eq!(check_rows(3, 4, 5), 20 + 15 + 15);
}
