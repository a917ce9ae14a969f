//! Single-cell mutants: one assigned advice cell of the honest witness changed in place in a
//! MockProver, checked on the rows around it and on the whole permutation, then restored.

use std::collections::{BTreeMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicUsize, Ordering};

use halo2_proofs::circuit::Value;
use halo2_proofs::dev::{AdviceCellValue, MockProver};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::Field;
use halo2_proofs::plonk::{Advice, Assigned, Assignment, Column};
use rand::Rng;
use rayon::prelude::*;

use super::{mock, names, region_chip, Location, Outcome, Phase, Rows};
use crate::circuit::{ModelCircuit, RegionSpan};
use crate::error::Result;

/// Every advice column, the first phase's first (the order of [`ModelCircuit::all_advice_columns`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Columns<'a> {
    pub(super) all: &'a [Column<Advice>],
    /// How many of them are the first phase's.
    pub(super) first_phase: usize,
}

impl Columns<'_> {
    /// The indices (into `all`) of one phase's columns.
    fn of(&self, second_phase: bool) -> std::ops::Range<usize> {
        if second_phase {
            self.first_phase..self.all.len()
        } else {
            0..self.first_phase
        }
    }

    fn is_second_phase(&self, column: usize) -> bool {
        column >= self.first_phase
    }
}

/// One cell and its change.
#[derive(Clone, Copy, Debug)]
pub(super) struct CellMutant {
    column: usize,
    row: usize,
    delta: Fr,
    /// How the change was drawn (`+1`, `-1`, `random`).
    how: &'static str,
}

/// The value of an assigned advice cell (`None`: unassigned).
fn value_at(prover: &MockProver<Fr>, column: Column<Advice>, row: usize) -> Option<Fr> {
    match prover.advice_values(column).get(row)? {
        AdviceCellValue::Assigned(v) => Some(v.evaluate()),
        AdviceCellValue::Poison(_) => None,
    }
}

/// The region of one phase that holds `row` (the two phases' regions overlap in rows).
fn span_at(spans: &[RegionSpan], row: usize, second_phase: bool) -> Option<&RegionSpan> {
    spans.iter().find(|s| s.second_phase == second_phase && s.rows.contains(&row))
}

/// Picks single-cell mutants: one in each region kind of each step (and of the inputs, the
/// binding and the outputs), then more, uniformly over the assigned cells of every region
/// (a second-phase region's in that phase's columns), up to `budget` in all. No cell is picked
/// twice.
pub(super) fn plan(
    assigned: &HashSet<(usize, usize)>,
    spans: &[RegionSpan],
    columns: Columns<'_>,
    budget: usize,
    rng: &mut impl Rng,
) -> Vec<CellMutant> {
    let mut groups: BTreeMap<(Option<usize>, &'static str), Vec<&RegionSpan>> = BTreeMap::new();
    for s in spans.iter().filter(|s| !s.rows.is_empty()) {
        groups.entry((s.step, s.name)).or_default().push(s);
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let draw = |span: &RegionSpan, rng: &mut dyn rand::RngCore, seen: &mut HashSet<(usize, usize)>| -> Option<CellMutant> {
        // Regions use some columns only: retry until an assigned cell turns up.
        for _ in 0..64 {
            let row = rng.gen_range(span.rows.clone());
            let column = rng.gen_range(columns.of(span.second_phase));
            if assigned.contains(&(columns.all[column].index(), row)) && seen.insert((column, row)) {
                let (delta, how) = match rng.gen_range(0..3) {
                    0 => (Fr::one(), "+1"),
                    1 => (-Fr::one(), "-1"),
                    _ => (Fr::random(&mut *rng), "random"),
                };
                return Some(CellMutant { column, row, delta, how });
            }
        }
        None
    };
    for group in groups.values() {
        let span = group[rng.gen_range(0..group.len())];
        out.extend(draw(span, rng, &mut seen));
    }
    let live: Vec<&RegionSpan> = spans.iter().filter(|s| !s.rows.is_empty()).collect();
    let total_rows: usize = live.iter().map(|s| s.rows.len()).sum();
    let mut attempts = 0;
    while out.len() < budget && total_rows > 0 && attempts < 64 * budget {
        attempts += 1;
        // A uniform row over all regions, then the region that holds it.
        let mut r = rng.gen_range(0..total_rows);
        let Some(span) = live.iter().find(|s| {
            let hit = r < s.rows.len();
            if !hit {
                r -= s.rows.len();
            }
            hit
        }) else {
            break;
        };
        out.extend(draw(span, rng, &mut seen));
    }
    out
}

/// Runs the single-cell mutants, one honest MockProver per worker thread.
pub(super) fn run(
    circuit: &ModelCircuit,
    plan: &[CellMutant],
    columns: Columns<'_>,
    spans: &[RegionSpan],
    node: &(dyn Fn(Option<usize>) -> Option<String> + Sync),
    progress: &(dyn Fn(Phase, usize, usize) + Sync),
) -> Result<Vec<Outcome>> {
    if plan.is_empty() {
        return Ok(Vec::new());
    }
    let rows = Rows::of(circuit);
    let chunk = plan.len().div_ceil(rayon::current_num_threads().max(1));
    let done = AtomicUsize::new(0);
    let parts: Vec<Vec<Outcome>> = plan
        .par_chunks(chunk)
        .map(|part| {
            let mut prover = mock(circuit)?;
            Ok(part
                .iter()
                .filter_map(|m| {
                    let out = one(&mut prover, m, columns, rows, spans, node);
                    progress(Phase::Cells, done.fetch_add(1, Ordering::Relaxed) + 1, plan.len());
                    out
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    Ok(parts.into_iter().flatten().collect())
}

/// The rows whose gates can read `row`.
fn window(row: usize, rows: Rows) -> RangeInclusive<usize> {
    row.saturating_sub(rows.reach)..=(row + rows.reach).min(rows.usable.saturating_sub(1))
}

fn one(
    prover: &mut MockProver<Fr>,
    m: &CellMutant,
    columns: Columns<'_>,
    rows: Rows,
    spans: &[RegionSpan],
    node: &(dyn Fn(Option<usize>) -> Option<String> + Sync),
) -> Option<Outcome> {
    let column = columns.all[m.column];
    let old = value_at(prover, column, m.row)?;
    let set = |p: &mut MockProver<Fr>, v: Fr| {
        let _ = p.assign_advice(column, m.row, Value::known(Assigned::Trivial(v)));
    };
    set(prover, old + m.delta);
    let rows = window(m.row, rows);
    let caught_by = match prover.verify_at_rows(rows.clone(), rows) {
        Ok(()) => Vec::new(),
        Err(f) => names(&f),
    };
    set(prover, old);
    let span = span_at(spans, m.row, columns.is_second_phase(m.column))?;
    Some(Outcome {
        chip: region_chip(span.name),
        mutant: format!("cell {} ({})", span.name, m.how),
        location: Some(Location { region: span.name, node: node(span.step), column: m.column, row: m.row }),
        caught_by,
    })
}

/// Every advice cell where `mutant` differs from `honest`, as `(row, column index)`, sorted.
pub(super) fn differences(honest: &MockProver<Fr>, mutant: &MockProver<Fr>, columns: &[Column<Advice>]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = columns
        .par_iter()
        .enumerate()
        .flat_map_iter(|(c, &col)| {
            let n = honest.advice_values(col).len().min(mutant.advice_values(col).len());
            (0..n).filter(move |&r| value_at(honest, col, r) != value_at(mutant, col, r)).map(move |r| (r, c))
        })
        .collect();
    out.sort_unstable();
    out
}

/// The rows whose gates and lookups can see a change at any of `cells`.
pub(super) fn rows_around(cells: &[(usize, usize)], rows: Rows) -> Vec<usize> {
    let mut rows: Vec<usize> = cells.iter().flat_map(|&(r, _)| window(r, rows)).collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// Where the first of `cells` lies.
pub(super) fn locate(
    cells: &[(usize, usize)],
    spans: &[RegionSpan],
    columns: Columns<'_>,
    node: &(dyn Fn(Option<usize>) -> Option<String> + Sync),
) -> Option<Location> {
    let &(row, column) = cells.first()?;
    let span = span_at(spans, row, columns.is_second_phase(column));
    Some(Location { region: span.map_or("(outside any region)", |s| s.name), node: span.and_then(|s| node(s.step)), column, row })
}
