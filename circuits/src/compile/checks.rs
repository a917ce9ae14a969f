//! Which matrix products `compile --matmul auto` checks with a random challenge.
//!
//! A checked product moves its work from the first phase's rows (every column of the shared
//! pool) to the second phase's three columns, which start empty. The circuit needs
//! `max(first-phase rows, second-phase rows)` rows, and prove time follows `2^k` and the column
//! count, not rows below `2^k`: so the three columns are worth adding only when checks lower `k`.
//! Candidates are taken in order of first-phase rows saved per second-phase row added, and the
//! prefix kept is the best by, in order: the smallest `k` (not below `floor_k`, under which
//! nothing is gained), no second phase, the fewest rows. Once the columns are paid for, more
//! checks at the same `k` cost nothing but balance the two phases, which leaves the most rows
//! free below `2^k` and the fewest cells to commit.

use crate::chips::freivalds::{check_rows, COLUMNS};
use crate::circuit::{model_rows, RESERVED_ROWS};
use crate::ir::{Graph, Op};
use crate::quant::{PairsLayout, QModel, StepKind};

/// A step that can be checked: its index, the first-phase rows it saves, the second-phase rows it adds.
struct Candidate {
    step: usize,
    saved: usize,
    added: usize,
}

/// Marks the checked steps of a model lowered with every product direct, and sets the
/// second-phase columns when any is checked. Steps are the graph's nodes, in order.
pub(crate) fn choose_checks(graph: &Graph, model: &mut QModel, lanes: usize, floor_k: u32) {
    let mut candidates = candidates(graph, model, lanes);
    // Most rows saved per row added first (cross-multiplied: no division).
    candidates.sort_by(|x, y| (y.saved * x.added).cmp(&(x.saved * y.added)).then(x.step.cmp(&y.step)));
    let cost = |m: &QModel, checked: bool| {
        let rows = model_rows(m, lanes);
        ((rows + RESERVED_ROWS).next_power_of_two().trailing_zeros().max(floor_k), checked, rows)
    };
    let mut trial = model.clone();
    let (mut best, mut best_len) = (cost(model, false), 0);
    for (i, c) in candidates.iter().enumerate() {
        check(graph, &mut trial, c.step);
        let here = cost(&trial, true);
        if here < best {
            (best, best_len) = (here, i + 1);
        }
    }
    for c in &candidates[..best_len] {
        check(graph, model, c.step);
    }
    set_columns(model);
}

/// Sets the second-phase columns when a step is checked (and removes them otherwise).
pub(crate) fn set_columns(model: &mut QModel) {
    let any = model
        .steps
        .iter()
        .any(|s| matches!(s.kind, StepKind::DotPairs { layout: PairsLayout::Freivalds(_), .. } | StepKind::Linear { checked: true, .. }));
    model.settings.challenge_advice = if any { COLUMNS } else { 0 };
}

fn candidates(graph: &Graph, model: &QModel, lanes: usize) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (step, (s, node)) in model.steps.iter().zip(&graph.nodes).enumerate() {
        match (&s.kind, &node.op) {
            (StepKind::DotPairs { width, layout: PairsLayout::Direct, .. }, Op::DotPairs { matmul: Some(d), .. }) => {
                let outputs = d.batch * d.m * d.n;
                out.push(Candidate { step, saved: outputs * width + outputs * (width + 1), added: d.batch * check_rows(d.m, d.k, d.n) });
            }
            // One row: the check reads all of W, as the dot chip does, and saves nothing.
            (StepKind::Linear { rows, k, n, checked: false, .. }, _) if *rows > 1 => {
                out.push(Candidate { step, saved: rows * n.div_ceil(lanes) * (k + 1), added: check_rows(*rows, *k, *n) });
            }
            _ => {}
        }
    }
    out
}

fn check(graph: &Graph, model: &mut QModel, step: usize) {
    match (&mut model.steps[step].kind, &graph.nodes[step].op) {
        (StepKind::DotPairs { layout, .. }, Op::DotPairs { matmul: Some(d), .. }) => *layout = PairsLayout::Freivalds(*d),
        (StepKind::Linear { checked, .. }, _) => *checked = true,
        _ => {}
    }
    set_columns(model);
}
