//! Witness-mutation audit (`zkinfer mutate`): for every chip kind and every layer it makes
//! wrong witnesses and checks that MockProver rejects each one, naming what caught it.
//!
//! Two kinds of mutant:
//! - **consistent** ([`Mutation`]): one value changed and everything after it recomputed
//!   honestly, with the public instances claiming the outputs it computes, so that only the
//!   constraint that binds that value can catch it: a wrong read at a copy (the permutation),
//!   a wrong accumulator (the dot or elementwise gate), a wrong rescale or table output, a
//!   quotient shifted together with its remainder (the remainder's range check), computing on
//!   another input than the committed one, a nonzero zero cell;
//! - **single cells**: one assigned advice cell changed, sampled over every region, checked
//!   on the rows around it (gates and lookups) and on the whole permutation. Only first-phase
//!   cells are sampled: the second phase's cells (the random-challenge checks of matrix
//!   products, which share rows with the first phase's regions) are reached by the consistent
//!   mutants of each checked product, whose changed cells are found in both phases.
//!
//! A mutant that MockProver accepts is a survivor: a value the circuit does not bind.

mod assigned;
mod cells;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use halo2_proofs::dev::{MockProver, VerifyFailure};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Circuit, ConstraintSystem};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::circuit::{ModelCircuit, RegionSpan};
use crate::error::{Error, Result};
use crate::quant::{Mutation, PairsLayout, QModel, StepKind};

/// What to make.
#[derive(Clone, Debug)]
pub struct Options {
    /// Mutants at least: the consistent ones (a fixed set per step), then single cells up to
    /// this count (and at least one per region kind and step).
    pub budget: usize,
    /// Seed of the choice of elements, cells and changes.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { budget: 1000, seed: 1 }
    }
}

/// Which part of the audit a progress report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Consistent mutants (one MockProver run each).
    Consistent,
    /// Single-cell mutants.
    Cells,
}

/// Where a mutated value lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The region's name.
    pub region: &'static str,
    /// The ONNX node of the step the region belongs to, if any.
    pub node: Option<String>,
    /// The advice column.
    pub column: usize,
    /// The row.
    pub row: usize,
}

/// One mutant and what caught it.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The chip kind it exercises (`permutation` for a wrong read at a copy).
    pub chip: &'static str,
    /// What was changed.
    pub mutant: String,
    /// Where (for consistent mutants: the first cell that differs from the honest witness,
    /// found only for survivors).
    pub location: Option<Location>,
    /// The constraints that failed (empty: it survived).
    pub caught_by: Vec<String>,
}

impl Outcome {
    /// Whether MockProver accepted it.
    pub fn survived(&self) -> bool {
        self.caught_by.is_empty()
    }
}

/// Per chip kind: mutants made and killed, and what killed them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChipTally {
    /// Mutants made.
    pub made: usize,
    /// Mutants rejected.
    pub killed: usize,
    /// How often each constraint caught one.
    pub caught_by: BTreeMap<String, usize>,
}

/// The audit's result.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Every mutant made.
    pub outcomes: Vec<Outcome>,
    /// Consistent mutants that had no witness either way (a change that leaves a range the
    /// evaluation checks): not made.
    pub without_witness: usize,
}

impl Report {
    /// Tallies per chip kind.
    pub fn by_chip(&self) -> BTreeMap<&'static str, ChipTally> {
        let mut out: BTreeMap<&'static str, ChipTally> = BTreeMap::new();
        for o in &self.outcomes {
            let t = out.entry(o.chip).or_default();
            t.made += 1;
            if !o.survived() {
                t.killed += 1;
            }
            for name in &o.caught_by {
                *t.caught_by.entry(name.clone()).or_default() += 1;
            }
        }
        out
    }

    /// The mutants MockProver accepted.
    pub fn survivors(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| o.survived())
    }
}

/// The region kinds' chips, for the tallies.
fn region_chip(region: &str) -> &'static str {
    match region {
        "requant" | "inputs" => "requant",
        "dot" | "dot pairs" => "dot",
        "elementwise" | "products" | "payee binding" => "elementwise",
        "function" => "function",
        "input commitment" | "output commitment" => "poseidon",
        "freivalds" => "freivalds",
        _ => "wiring",
    }
}

/// The chip a consistent mutant exercises.
fn mutation_chip(model: &QModel, m: &Mutation) -> &'static str {
    let kind = m.step().map(|s| &model.steps[s].kind);
    match (m, kind) {
        (Mutation::Read { .. } | Mutation::Input { .. } | Mutation::Zero { .. }, _) => "permutation",
        (Mutation::Accumulator { .. }, Some(StepKind::Linear { checked: true, .. })) => "freivalds",
        (Mutation::Accumulator { .. }, Some(StepKind::Linear { .. })) => "dot",
        (Mutation::Accumulator { .. }, Some(StepKind::DotPairs { layout: PairsLayout::Freivalds(_), .. })) => "freivalds",
        (Mutation::Accumulator { .. }, _) => "elementwise",
        (Mutation::Output { .. }, Some(StepKind::Function { .. })) => "function",
        (Mutation::Output { .. } | Mutation::Quotient { .. }, _) => "requant",
    }
}

/// Failure names: the gate, `lookup <name>`, or `permutation`.
pub fn failure_name(f: &VerifyFailure) -> String {
    match f {
        VerifyFailure::ConstraintNotSatisfied { constraint, .. } => {
            // "Constraint 0 in gate 3 ('dot mac')": keep the gate's name.
            let s = constraint.to_string();
            s.split('\'').nth(1).map_or(s.clone(), str::to_string)
        }
        VerifyFailure::Lookup { name, .. } => format!("lookup {name}"),
        VerifyFailure::Permutation { .. } => "permutation".to_string(),
        other => format!("{other}"),
    }
}

fn names(failures: &[VerifyFailure]) -> Vec<String> {
    let mut v: Vec<String> = failures.iter().map(failure_name).collect();
    v.sort();
    v.dedup();
    v
}

/// The consistent mutants of a model: per step, a wrong read of each operand, a wrong
/// accumulator, a wrong output and a shifted quotient (each at a random element, one unit
/// up); for the inputs, three wrong reads of the committed values; the zero cell if used.
pub fn consistent_mutants(model: &QModel, rng: &mut impl Rng) -> Vec<Mutation> {
    let numel = |id: usize| model.tensors[id].numel();
    let mut pick = |n: usize| if n == 0 { None } else { Some(rng.gen_range(0..n)) };
    let mut out = Vec::new();
    let n_in: usize = model.input_sizes().iter().sum();
    for _ in 0..3 {
        out.extend(pick(n_in).map(|element| Mutation::Input { element, delta: 1 }));
    }
    if model.uses_zero_cell() {
        out.push(Mutation::Zero { delta: 1 });
    }
    for (step, s) in model.steps.iter().enumerate() {
        let acc = match &s.kind {
            StepKind::View { .. } => continue,
            StepKind::Linear { .. } | StepKind::Elementwise { .. } => Some(numel(s.output)),
            StepKind::DotPairs { a, .. } => Some(numel(*a)),
            StepKind::Relu { .. } | StepKind::Function { .. } => None,
        };
        for (operand, &id) in s.kind.operands().iter().enumerate() {
            out.extend(pick(numel(id)).map(|element| Mutation::Read { step, operand, element, delta: 1 }));
        }
        out.extend(acc.and_then(&mut pick).map(|element| Mutation::Accumulator { step, element, delta: 1 }));
        let n = numel(s.output);
        out.extend(pick(n).map(|element| Mutation::Output { step, element, delta: 1 }));
        out.extend(pick(n).map(|element| Mutation::Quotient { step, element, delta: 1 }));
    }
    out
}

/// How far a changed cell is seen: the usable rows (above the reserved blinding rows), and the
/// widest rotation any gate or lookup queries an advice column at.
#[derive(Clone, Copy, Debug)]
struct Rows {
    usable: usize,
    reach: usize,
}

impl Rows {
    fn of(circuit: &ModelCircuit) -> Self {
        let mut meta = ConstraintSystem::default();
        let _ = ModelCircuit::configure_with_params(&mut meta, circuit.params());
        let reach = meta.advice_queries().iter().map(|(_, r)| r.0.unsigned_abs() as usize).max().unwrap_or(0);
        Rows { usable: (1usize << circuit.model().settings.k).saturating_sub(crate::circuit::RESERVED_ROWS), reach }
    }
}

/// The honest circuit's MockProver and its regions; fails if the honest witness is rejected.
fn honest_run(circuit: &ModelCircuit) -> Result<(MockProver<Fr>, Vec<RegionSpan>)> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let circuit = circuit.clone().with_region_log(log.clone());
    let prover = mock(&circuit)?;
    // (`verify`, not `verify_par`: the parallel check also demands that every cell a gate's
    // rotation reaches be assigned, which this layout does not promise and soundness does not need.)
    if let Err(failures) = prover.verify() {
        let all = names(&failures);
        let failures = format!("{}{}", all.iter().take(5).cloned().collect::<Vec<_>>().join(", "), if all.len() > 5 { ", …" } else { "" });
        return Err(Error::HonestWitnessRejected { failures });
    }
    let spans = log.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
    Ok((prover, spans))
}

fn mock(circuit: &ModelCircuit) -> Result<MockProver<Fr>> {
    MockProver::run(circuit.model().settings.k, circuit, vec![circuit.instances()])
        .map_err(|e| Error::HonestWitnessRejected { failures: format!("synthesis failed: {e:?}") })
}

/// Runs the audit on `circuit` (an honest circuit for one input). `progress` hears
/// `(phase, done, total)`.
pub fn audit(circuit: &ModelCircuit, options: &Options, progress: &(dyn Fn(Phase, usize, usize) + Sync)) -> Result<Report> {
    let model = circuit.model();
    let mut rng = ChaCha20Rng::seed_from_u64(options.seed);
    let (honest, spans) = honest_run(circuit)?;
    // The first phase's columns, then the second's: a consistent mutant may change second-phase
    // cells too (a wrong product changes the check's sums), and single cells are drawn in both.
    let first_phase = ModelCircuit::advice_columns(&model.settings).len();
    let all_columns = ModelCircuit::all_advice_columns(&model.settings);
    let columns = cells::Columns { all: &all_columns, first_phase };
    let rows = Rows::of(circuit);
    let node = |step: Option<usize>| step.map(|s| model.steps[s].node.clone());

    let mutants = consistent_mutants(model, &mut rng);
    let total = mutants.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Option<Outcome>> = mutants
        .par_iter()
        .map(|m| {
            let r = consistent_outcome(circuit, m, &honest, columns, (&spans, rows), &node);
            progress(Phase::Consistent, done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1, total);
            r
        })
        .collect::<Result<_>>()?;
    let without_witness = results.iter().filter(|r| r.is_none()).count();
    let mut outcomes: Vec<Outcome> = results.into_iter().flatten().collect();
    drop(honest);
    let cell_budget = options.budget.saturating_sub(outcomes.len());
    let plan = cells::plan(&assigned::assigned_cells(circuit)?, &spans, columns, cell_budget, &mut rng);
    outcomes.extend(cells::run(circuit, &plan, columns, &spans, &node, progress)?);
    Ok(Report { outcomes, without_witness })
}

/// One consistent mutant's outcome, trying one unit down where one unit up has no witness;
/// `None` when neither has.
fn consistent_outcome(
    circuit: &ModelCircuit,
    m: &Mutation,
    honest: &MockProver<Fr>,
    columns: cells::Columns<'_>,
    (spans, rows): (&[RegionSpan], Rows),
    node: &(dyn Fn(Option<usize>) -> Option<String> + Sync),
) -> Result<Option<Outcome>> {
    let Some((m, mutant)) = [*m, m.negated()].into_iter().find_map(|m| circuit.clone().with_mutation(m).ok().map(|c| (m, c))) else {
        return Ok(None);
    };
    let prover = mock(&mutant)?;
    // The honest witness satisfies every gate and lookup, and the mutant has the same fixed
    // columns: only rows around a changed cell can fail them (the permutation is checked whole).
    let changed = cells::differences(honest, &prover, columns.all);
    let rows = cells::rows_around(&changed, rows);
    let caught_by = match prover.verify_at_rows(rows.iter().copied(), rows.iter().copied()) {
        Ok(()) => Vec::new(),
        Err(f) => names(&f),
    };
    let location = if caught_by.is_empty() { cells::locate(&changed, spans, columns, node) } else { None };
    Ok(Some(Outcome { chip: mutation_chip(circuit.model(), &m), mutant: format!("{m:?}"), location, caught_by }))
}

#[cfg(test)]
mod tests;
