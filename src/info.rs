//! `zkinfer info`: circuit size, layout and error bound.

use anyhow::Result;
use serde::Serialize;
use zkinfer_circuits::chips::range_table::table_rows;
use zkinfer_circuits::circuit::{challenge_rows, model_rows, RESERVED_ROWS};
use zkinfer_circuits::compile::{lookup_count, predicted_prove_us, Candidate};
use zkinfer_circuits::quant::{PairsLayout, QModel, StepKind};
use zkinfer_prover::{model_hash, ModelDir, SetupInfo};

use crate::{InfoArgs, Outcome};

#[derive(Debug, Serialize)]
struct InfoReport {
    onnx_sha256: String,
    model_hash: String,
    k: u32,
    rows_used: usize,
    usable_rows: usize,
    range_table_rows: usize,
    advice_columns: usize,
    fixed_columns: usize,
    lookup_arguments: usize,
    lookup_table_columns: usize,
    public_instances: usize,
    macs: usize,
    advice_cells_per_mac: f64,
    /// Matrix products (activation × activation, and projections over a sequence) checked
    /// with a random challenge, and the rows their checks take in the second phase's columns.
    checked_products: usize,
    second_phase_rows: usize,
    dot_lanes: usize,
    scale_bits: u32,
    value_bits: u32,
    lookup_bits: u32,
    range_table_widths: Vec<u32>,
    function_tables: Vec<FunctionTable>,
    candidates: Vec<Candidate>,
    error_bound: Vec<f64>,
    calibrated_max_abs: f64,
    measured_error: zkinfer_circuits::compile::MeasuredError,
    predicted_prove_seconds: f64,
    setup: Option<SetupInfo>,
}

/// One function lookup table: which node, its input scale and its size.
#[derive(Debug, Serialize)]
struct FunctionTable {
    node: String,
    function: String,
    input_scale_bits: u32,
    rows: usize,
}

pub(crate) fn info(a: &InfoArgs) -> Result<Outcome> {
    let dir = ModelDir::new(&a.dir);
    let compiled = dir.read_compiled()?;
    let m = &compiled.model;
    let s = &m.settings;
    let rows = model_rows(m, s.dot_lanes);
    let macs = m.macs();
    let report = InfoReport {
        onnx_sha256: compiled.onnx_sha256.clone(),
        model_hash: hex::encode(model_hash(m)?),
        k: s.k,
        rows_used: rows,
        usable_rows: (1usize << s.k) - RESERVED_ROWS,
        range_table_rows: table_rows(&s.table_tags),
        advice_columns: s.total_advice(),
        // shared weight/constant columns, the constants column, the challenge check's column
        fixed_columns: s.num_fixed + 1 + usize::from(s.challenge_advice > 0),
        lookup_arguments: lookup_count(m),
        lookup_table_columns: if s.function_tables.is_empty() { 2 } else { 5 },
        public_instances: m.num_instances(),
        macs,
        advice_cells_per_mac: if macs == 0 { 0.0 } else { (rows * s.total_advice()) as f64 / macs as f64 },
        checked_products: checked_products(m),
        second_phase_rows: challenge_rows(m),
        dot_lanes: s.dot_lanes,
        scale_bits: s.scale_bits,
        value_bits: s.value_bits,
        lookup_bits: s.lookup_bits,
        range_table_widths: s.table_tags.clone(),
        function_tables: m
            .steps
            .iter()
            .filter_map(|st| match &st.kind {
                zkinfer_circuits::quant::StepKind::Function { spec, .. } => Some(FunctionTable {
                    node: st.node.clone(),
                    function: format!("{:?}", spec.kind),
                    input_scale_bits: spec.in_scale,
                    rows: spec.rows(),
                }),
                _ => None,
            })
            .collect(),
        candidates: compiled.candidates.clone(),
        error_bound: m.error_bound.clone(),
        calibrated_max_abs: m.calibrated_max_abs,
        measured_error: compiled.measured.clone(),
        predicted_prove_seconds: predicted_prove_us(s.k, s.total_advice(), lookup_count(m)) / 1e6,
        setup: dir.read_setup().ok(),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Outcome::Ok);
    }
    let r = &report;
    println!("model        onnx sha256 {}", r.onnx_sha256);
    println!("             model hash  {}", r.model_hash);
    println!("circuit      k = {}: {} of {} usable rows used, range table {} rows", r.k, r.rows_used, r.usable_rows, r.range_table_rows);
    println!(
        "columns      advice {}, fixed {}, lookup arguments {} (table columns {}), instance values {}",
        r.advice_columns, r.fixed_columns, r.lookup_arguments, r.lookup_table_columns, r.public_instances
    );
    println!(
        "work         {} multiply-accumulates, {:.2} allocated advice cells per MAC, {} dot lanes",
        r.macs, r.advice_cells_per_mac, r.dot_lanes
    );
    if r.checked_products > 0 {
        println!(
            "checked      {} matrix products with a random challenge (Freivalds), {} rows in {} second-phase columns",
            r.checked_products,
            r.second_phase_rows,
            r.advice_columns - s.num_advice
        );
    }
    println!(
        "quantization activations at 2^-{}, range ±2^{} (±{:.3} real), checked in limbs of ≤ {} bits; table widths {:?}",
        r.scale_bits,
        r.value_bits,
        2f64.powi(r.value_bits as i32 - r.scale_bits as i32),
        r.lookup_bits,
        r.range_table_widths
    );
    for f in &r.function_tables {
        println!("function     {} ({}): input at 2^-{}, {} table rows", f.node, f.function, f.input_scale_bits, f.rows);
    }
    println!("error bound  {:?} (max |proven − float| per output, for inputs within the calibrated range; largest calibrated |activation| {:.3})", r.error_bound, r.calibrated_max_abs);
    println!(
        "measured     {:?} (max |quantized − float| per output over {} calibration samples, against {})",
        r.measured_error.max_abs, r.measured_error.samples, r.measured_error.reference
    );
    println!("predicted    prove ≈ {:.2} s on a 2-core machine", r.predicted_prove_seconds);
    match &r.setup {
        Some(s) => println!(
            "setup        keys {} with SRS {}{}",
            s.key_id,
            &s.srs_sha256[..16],
            if s.insecure_dev_srs { " [INSECURE dev SRS]" } else { "" }
        ),
        None => println!("setup        not set up yet: zkinfer setup {} --dev-srs", a.dir.display()),
    }
    Ok(Outcome::Ok)
}

/// Steps whose products are checked with a random challenge.
fn checked_products(m: &QModel) -> usize {
    m.steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::DotPairs { layout: PairsLayout::Freivalds(_), .. } | StepKind::Linear { checked: true, .. }))
        .count()
}
