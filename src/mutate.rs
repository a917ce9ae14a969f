//! `zkinfer mutate`: the witness-mutation audit of a compiled model's circuit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use zkinfer_circuits::circuit::ModelCircuit;
use zkinfer_circuits::mutate::{audit, Options, Phase, Report};
use zkinfer_prover::ModelDir;

use crate::commands::read_input;
use crate::Outcome;

/// Arguments of `zkinfer mutate`.
#[derive(Debug, Args)]
pub(crate) struct MutateArgs {
    /// The compiled model directory (`zkinfer compile`; no keys needed).
    dir: PathBuf,
    /// The input whose witness is mutated, in EZKL's format: {"input_data": [[...]]}.
    #[arg(long, env = "ZKINFER_INPUT")]
    input: PathBuf,
    /// Mutants at least: the consistent ones (a fixed set per step, about four each), then
    /// single cells up to this count.
    #[arg(long, env = "ZKINFER_MUTATE_BUDGET", default_value_t = 1000)]
    budget: usize,
    /// Seed for the choice of elements, cells and changes (same seed, same mutants).
    #[arg(long, env = "ZKINFER_MUTATE_SEED", default_value_t = 1)]
    seed: u64,
    /// Also write the whole report (every mutant and what caught it) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Runs the audit; `Outcome::Invalid` (exit 1) when a mutant survived.
pub(crate) fn mutate(a: &MutateArgs) -> Result<Outcome> {
    let dir = ModelDir::new(&a.dir);
    let compiled = dir.read_compiled()?;
    let model = Arc::new(compiled.model);
    let input = read_input(&a.input)?;
    let q = model.quantize_inputs(&input).with_context(|| a.input.display().to_string())?;
    let circuit = ModelCircuit::new(model.clone(), q).with_context(|| a.input.display().to_string())?;
    eprintln!("mutating the witness of {} (k = {}, {} steps), seed {}", a.dir.display(), model.settings.k, model.steps.len(), a.seed);
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg:12} [{bar:40}] {pos}/{len} [{elapsed}, eta {eta}]") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    let progress = |phase: Phase, done: usize, total: usize| {
        bar.set_message(match phase {
            Phase::Consistent => "consistent",
            Phase::Cells => "single cells",
        });
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let report = audit(&circuit, &Options { budget: a.budget, seed: a.seed }, &progress)?;
    bar.finish_and_clear();
    print_report(&report);
    if let Some(path) = &a.json {
        zkinfer_prover::fs::atomic_write(path, &serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(if report.survivors().next().is_some() { Outcome::Invalid } else { Outcome::Ok })
}

fn print_report(report: &Report) {
    println!("| chip kind | mutants | killed | survived | caught by |");
    println!("|---|---:|---:|---:|---|");
    let tally = report.by_chip();
    for (chip, t) in &tally {
        let mut by: Vec<_> = t.caught_by.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let by: Vec<String> = by.iter().map(|(name, n)| format!("{name} {n}")).collect();
        println!("| {chip} | {} | {} | {} | {} |", t.made, t.killed, t.made - t.killed, by.join(", "));
    }
    let (made, killed) = tally.values().fold((0, 0), |(m, k), t| (m + t.made, k + t.killed));
    println!("| **all** | {made} | {killed} | {} | |", made - killed);
    if report.without_witness > 0 {
        println!(
            "({} consistent mutants had no witness either way: the change leaves a range the evaluation checks)",
            report.without_witness
        );
    }
    let survivors: Vec<_> = report.survivors().collect();
    if survivors.is_empty() {
        println!("no survivor: every mutant was rejected");
        return;
    }
    println!("\n{} SURVIVED (MockProver accepted them):", survivors.len());
    for s in survivors {
        let at = s.location.as_ref().map_or("(location unknown)".to_string(), |l| {
            format!(
                "region `{}`{}, advice column {}, row {}",
                l.region,
                l.node.as_ref().map_or(String::new(), |n| format!(" of node `{n}`")),
                l.column,
                l.row
            )
        });
        println!("  {} [{}] at {at}", s.mutant, s.chip);
    }
}
