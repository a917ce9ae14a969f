//! From ONNX bytes to a [`QModel`]: import, calibrate, choose the circuit shape, quantize.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod checks;

use crate::chips::range_table::table_rows;
use crate::circuit::{check_fits, model_rows, MIN_ADVICE, RESERVED_ROWS};
use crate::error::{Error, Result};
use crate::ir::Graph;
use crate::quant::{lower, ErrorBound, MatMulLayout, Precision, QModel, Settings, Visibility, SETTINGS_VERSION};

/// Knobs of `zkinfer compile`.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Force the activation scale (bits after the binary point).
    pub scale_bits: Option<u32>,
    /// Largest k to consider.
    pub max_k: Option<u32>,
    /// How inputs appear in the public instances (default: a Poseidon commitment).
    pub input_visibility: Visibility,
    /// How outputs appear in the public instances (default: the values).
    pub output_visibility: Visibility,
    /// What the circuit-size search favours.
    pub target: Target,
    /// The largest max |quantized − float| output error accepted on the calibration samples.
    pub max_error: MaxError,
    /// The layout of activation × activation matrix products.
    pub matmul: MatMulLayout,
}

/// How much output error `compile` accepts, measured on the calibration samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxError {
    /// At most this, in output units.
    Absolute(f64),
    /// At most this fraction of the largest calibrated |output| (the default: 1%).
    Relative(f64),
}

/// The default [`MaxError`]: 1% of the largest calibrated |output|.
pub const DEFAULT_RELATIVE_ERROR: f64 = 1e-2;

impl Default for MaxError {
    fn default() -> Self {
        MaxError::Relative(DEFAULT_RELATIVE_ERROR)
    }
}

impl MaxError {
    /// The absolute error allowed for outputs whose calibrated magnitude is `output_mag`.
    pub fn allowed(self, output_mag: f64) -> f64 {
        match self {
            MaxError::Absolute(a) => a,
            // Outputs that are all 0 in calibration: the resolution of 2^-16 is what 1% can mean.
            MaxError::Relative(r) => r * output_mag.max(1.0 / 65536.0),
        }
    }
}

/// What `compile` optimises for, as EZKL's `--target`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// The smallest circuit that fits, at the dot-group width predicted to prove fastest.
    Resources,
    /// Up to [`ACCURACY_EXTRA_K`] sizes above the smallest: the smallest whose measured error
    /// is within 25% of the best (bigger function tables take finer inputs).
    Accuracy,
    /// The fewest columns (the narrowest dot groups), then the smallest circuit: every column is
    /// a commitment in the proof and work for the on-chain verifier, so this settles for the
    /// least gas, and proves more slowly where wider rows would fit a smaller k. The default: a
    /// job pays its verification on chain, and on the shipped MLP 49 columns cost 2.3× the gas
    /// of 14 (2,083,100 against about 900k) for 1.7× faster proving.
    #[default]
    Settlement,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            scale_bits: None,
            max_k: None,
            input_visibility: Visibility::Hashed,
            output_visibility: Visibility::Public,
            target: Target::Settlement,
            max_error: MaxError::default(),
            matmul: MatMulLayout::Auto,
        }
    }
}

/// Lowest activation scale chosen automatically (2^-8 resolution).
pub const MIN_AUTO_SCALE_BITS: u32 = 8;
/// Default largest k.
pub const DEFAULT_MAX_K: u32 = 22;
/// Dot-product lane counts tried by the shape search.
const LANE_CHOICES: [usize; 7] = [13, 16, 20, 24, 32, 48, 64];

/// A compiled model: the float graph (for reference inference and error bounds) and the quantized model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Compiled {
    /// The imported float graph.
    pub graph: Graph,
    /// The quantized model the circuit proves.
    pub model: QModel,
    /// SHA-256 of the ONNX file, hex.
    pub onnx_sha256: String,
    /// Measured accuracy on the calibration samples.
    pub measured: MeasuredError,
    /// The circuit sizes considered (the trade-off `compile` reports).
    pub candidates: Vec<Candidate>,
}

/// Max |quantized − float| per output, measured on the calibration samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasuredError {
    /// One value per model output.
    pub max_abs: Vec<f64>,
    /// Samples evaluated.
    pub samples: usize,
    /// "candle f32", or "float IR (f64)" where candle cannot run the model.
    pub reference: String,
}

/// Evaluates the quantized model against float inference on the calibration samples.
fn measure(onnx: &[u8], graph: &Graph, model: &QModel, samples: &[Vec<Vec<f64>>]) -> MeasuredError {
    let mut max_abs = vec![0.0f64; model.outputs.len()];
    let (mut count, mut reference) = (0, "candle f32");
    for sample in samples {
        let input: Vec<Vec<f32>> = sample.iter().map(|v| v.iter().map(|&x| x as f32).collect()).collect();
        let Ok(trace) = model.eval(&input) else { continue };
        let float: Vec<Vec<f64>> = match crate::reference::candle_outputs(onnx, graph, &input) {
            Ok(out) if reference == "candle f32" => out.into_iter().map(|o| o.into_iter().map(f64::from).collect()).collect(),
            _ => {
                reference = "float IR (f64)";
                match graph.eval_f64(sample) {
                    Ok(values) => graph.outputs.iter().map(|&o| values[o].clone()).collect(),
                    Err(_) => continue,
                }
            }
        };
        for (m, (q, f)) in max_abs.iter_mut().zip(trace.outputs(model).iter().zip(&float)) {
            *m = q.iter().zip(f).fold(*m, |acc, (&a, &b)| nan_max(acc, (model.dequantize(a) - b).abs()));
        }
        count += 1;
    }
    MeasuredError { max_abs, samples: count, reference: reference.into() }
}

/// Calibration statistics.
#[derive(Clone, Debug)]
struct Calibration {
    /// Largest |value| per tensor over all samples.
    mag: Vec<f64>,
    /// Smallest value per tensor over all samples.
    min: Vec<f64>,
    /// Integer bits (with one bit of headroom) the largest activation needs.
    int_bits: u32,
}

/// Splits concatenated calibration data into samples; synthesizes inputs in [-1, 1) when none is given.
pub fn calibration_samples(graph: &Graph, data: Option<&[Vec<f32>]>) -> Result<Vec<Vec<Vec<f64>>>> {
    let sizes: Vec<usize> = graph.inputs.iter().map(|&i| graph.tensors[i].numel()).collect();
    let Some(data) = data else {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
        return Ok((0..4).map(|_| sizes.iter().map(|&n| (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect()).collect());
    };
    if data.len() != sizes.len() {
        return Err(Error::InputCount { expected: sizes.len(), got: data.len() });
    }
    let mut count = None;
    for (index, (d, &size)) in data.iter().zip(&sizes).enumerate() {
        if d.is_empty() || d.len() % size != 0 {
            return Err(Error::Calibration { index, got: d.len(), size });
        }
        let c = d.len() / size;
        if *count.get_or_insert(c) != c {
            return Err(Error::Calibration { index, got: d.len(), size });
        }
    }
    let count = count.unwrap_or(0);
    Ok((0..count)
        .map(|s| data.iter().zip(&sizes).map(|(d, &n)| d[s * n..(s + 1) * n].iter().map(|&v| f64::from(v)).collect()).collect())
        .collect())
}

fn calibrate(graph: &Graph, samples: &[Vec<Vec<f64>>]) -> Result<Calibration> {
    let mut mag = vec![0.0f64; graph.tensors.len()];
    let mut min = vec![f64::INFINITY; graph.tensors.len()];
    for sample in samples {
        let values = graph.eval_f64(sample)?;
        check_table_indices(graph, &values)?;
        for ((m, lo), v) in mag.iter_mut().zip(min.iter_mut()).zip(&values) {
            *m = v.iter().fold(*m, |a, x| a.max(x.abs()));
            *lo = v.iter().fold(*lo, |a, &x| a.min(x));
        }
    }
    let (widest, max) = mag.iter().copied().enumerate().fold((0, 0.0), |(i, m), (j, v)| if v > m || v.is_nan() { (j, v) } else { (i, m) });
    let int_bits = if max <= 1.0 { 1 } else { max.log2().ceil().min(f64::from(MAX_INT_BITS + 1)) as u32 + 1 };
    if !max.is_finite() || int_bits > MAX_INT_BITS {
        return Err(Error::CalibratedRange { tensor: graph.tensors[widest].name.clone(), max_abs: max, max_int_bits: MAX_INT_BITS });
    }
    Ok(Calibration { mag, min, int_bits })
}

/// Every Gather by an activation reads integers within its table (NaN would pass unseen).
fn check_table_indices(graph: &Graph, values: &[Vec<f64>]) -> Result<()> {
    for node in &graph.nodes {
        if let crate::ir::Op::Table { input, values: table } = &node.op {
            if let Some(&value) = values[*input].iter().find(|&&x| crate::ir::table_value(table, x).is_none()) {
                return Err(Error::TableIndex { node: node.name.clone(), value, len: table.len() });
            }
        }
    }
    Ok(())
}

/// Predicted prove time in µs, fitted on this machine class: 2^k·(4.0·advice + 16.6 + 17·lookups).
pub fn predicted_prove_us(k: u32, advice: usize, lookups: usize) -> f64 {
    (1u64 << k) as f64 * (4.0 * advice as f64 + 16.6 + 17.0 * lookups as f64)
}

/// Lookup arguments of a circuit: four range checks in the rescale, and the function table if any.
pub fn lookup_count(model: &QModel) -> usize {
    4 + usize::from(!model.settings.function_tables.is_empty())
}

/// One circuit size considered by `compile`, with what it costs and how accurate it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// log2 rows.
    pub k: u32,
    /// Predicted prove time on a 2-core machine, seconds.
    pub predicted_prove_s: f64,
    /// Activation scale bits.
    pub scale_bits: u32,
    /// Smallest function-table input scale (bits), when the model has function tables.
    pub min_table_scale_bits: Option<u32>,
    /// Max |quantized − float| per output on the calibration samples.
    pub measured: Vec<f64>,
    /// Worst-case bound per output.
    pub bound: Vec<f64>,
}

/// Compiles ONNX bytes with optional calibration data (EZKL format: one list per input).
pub fn compile(onnx: &[u8], calibration: Option<&[Vec<f32>]>, opts: &CompileOptions) -> Result<Compiled> {
    if opts.output_visibility == Visibility::Private {
        return Err(Error::Settings("outputs must be public or hashed: a proof with no output binds nothing".into()));
    }
    let graph = crate::onnx::import_bytes(onnx)?;
    let samples = calibration_samples(&graph, calibration)?;
    let cal = calibrate(&graph, &samples)?;
    check_masks(&graph, &cal)?;
    let max_k = opts.max_k.unwrap_or(DEFAULT_MAX_K);
    // Two table limbs of k − 2 bits must range-check the widest activation at the coarsest scale.
    let range_k = (MIN_AUTO_SCALE_BITS + cal.int_bits).div_ceil(2) + 2;
    if range_k > max_k {
        return Err(Error::Settings(format!(
            "calibrated activations need {} integer bits, so k ≥ {range_k}; allow it with --max-k {range_k}",
            cal.int_bits
        )));
    }
    // Rows do not depend on scales: count them once per lane choice, take the cheapest shape.
    let probe = lower(&graph, Precision { matmul: opts.matmul, ..probe_precision(&cal) }, (&cal.mag, &cal.min))?;
    let mut best: Option<(f64, usize, u32)> = None;
    for lanes in LANE_CHOICES {
        let rows = quick_rows(&graph, probe.clone(), (lanes, MIN_K.max(range_k)), opts);
        let Some(k) = (MIN_K.max(range_k)..=max_k).find(|&k| rows + RESERVED_ROWS <= 1usize << k) else { continue };
        let cost = predicted_prove_us(k, MIN_ADVICE.max(lanes + 1), 4);
        if best.is_none_or(|(c, _, _)| cost < c) {
            best = Some((cost, lanes, k));
        }
        // Settlement keeps the narrowest groups that fit (LANE_CHOICES ascends): wider ones only
        // when the narrower do not fit under --max-k.
        if opts.target == Target::Settlement {
            break;
        }
    }
    let Some((_, lanes, k0)) = best else {
        let rows = quick_rows(&graph, probe, (LANE_CHOICES[LANE_CHOICES.len() - 1], MIN_K.max(range_k)), opts);
        return Err(Error::TooLarge { rows, max_k });
    };
    // Both targets report the same sizes (the trade-off); they differ in which one they keep.
    let last = (k0 + ACCURACY_EXTRA_K).min(max_k);
    let mut built: Vec<(QModel, MeasuredError)> = Vec::new();
    let mut first_err = None;
    for k in k0..=last {
        match build(&graph, &cal, lanes, k, opts) {
            Ok(model) => {
                let m = measure(onnx, &graph, &model, &samples);
                built.push((model, m));
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if built.is_empty() {
        return Err(first_err.unwrap_or(Error::TooLarge { rows: 0, max_k }));
    }
    let candidates: Vec<Candidate> = built.iter().map(|(m, e)| candidate(m, e)).collect();
    let worst = |e: &MeasuredError| if e.samples == 0 { f64::INFINITY } else { e.max_abs.iter().copied().fold(0.0, nan_max) };
    // Each output against its own allowance (a small output may not hide behind a large one).
    let allowed: Vec<f64> = graph.outputs.iter().map(|&o| opts.max_error.allowed(cal.mag[o])).collect();
    let excess = |e: &MeasuredError| over_allowance(e, &allowed);
    let (best, (best_excess, out)) =
        built
            .iter()
            .enumerate()
            .map(|(i, (_, e))| (i, excess(e)))
            .fold((0, (f64::INFINITY, 0)), |a, b| if b.1 .0 < a.1 .0 { b } else { a });
    if best_excess > 1.0 {
        let (model, e) = &built[best];
        if e.samples == 0 {
            // Not one sample evaluated: the evaluation's own error says why.
            if let Some(Err(err)) = samples.first().map(|s| model.eval(&to_f32(s))) {
                return Err(err);
            }
        }
        let measured = e.max_abs.get(out).copied().unwrap_or(f64::INFINITY);
        return Err(accuracy_not_met(&graph, model, &samples, allowed[out], cal.mag[graph.outputs[out]], measured, max_k));
    }
    let best_err = built.iter().filter(|(_, e)| excess(e).0 <= 1.0).map(|(_, e)| worst(e)).fold(f64::INFINITY, f64::min);
    let pick = match opts.target {
        // The smallest circuit that meets --max-error.
        Target::Resources | Target::Settlement => built.iter().position(|(_, e)| excess(e).0 <= 1.0).unwrap_or(best),
        // The smallest k within 25% of the best error: a bigger circuit must buy real accuracy.
        Target::Accuracy => built.iter().position(|(_, e)| excess(e).0 <= 1.0 && worst(e) <= 1.25 * best_err + 1e-12).unwrap_or(best),
    };
    let (model, measured) = built.swap_remove(pick);
    // What compile writes, every reader of `model.zkm` must accept.
    model.validate()?;
    Ok(Compiled { graph, model, onnx_sha256: hex::encode(Sha256::digest(onnx)), measured, candidates })
}

/// The larger of two errors, NaN winning (`f64::max` would drop it).
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// How many times its allowance the worst output's error is, and which output that is (NaN
/// and unmeasured count as infinitely over).
fn over_allowance(e: &MeasuredError, allowed: &[f64]) -> (f64, usize) {
    if e.samples == 0 {
        return (f64::INFINITY, 0);
    }
    let ratio = |m: f64, a: f64| {
        if m.is_nan() || (m > a && a <= 0.0) {
            f64::INFINITY
        } else if m <= a && (a.is_infinite() || a == 0.0) {
            0.0
        } else {
            m / a
        }
    };
    e.max_abs.iter().zip(allowed).enumerate().map(|(i, (&m, &a))| (ratio(m, a), i)).fold((0.0, 0), |x, y| if y.0 > x.0 { y } else { x })
}

fn to_f32(sample: &[Vec<f64>]) -> Vec<Vec<f32>> {
    sample.iter().map(|v| v.iter().map(|&x| x as f32).collect()).collect()
}

/// Names the node where a too-inaccurate model's error first grows past what is allowed:
/// per tensor, max |quantized − float| over the calibration samples, relative to the
/// tensor's float magnitude, and the first node (in graph order) whose relative error
/// exceeds the allowed relative error (or, if none does, the one with the largest).
fn accuracy_not_met(
    graph: &Graph,
    model: &QModel,
    samples: &[Vec<Vec<f64>>],
    allowed: f64,
    output_mag: f64,
    measured: f64,
    max_k: u32,
) -> Error {
    let mut err = vec![0.0f64; graph.tensors.len()];
    let mut mag = vec![0.0f64; graph.tensors.len()];
    for sample in samples {
        let input: Vec<Vec<f32>> = sample.iter().map(|v| v.iter().map(|&x| x as f32).collect()).collect();
        let (Ok(trace), Ok(float)) = (model.eval(&input), graph.eval_f64(sample)) else { continue };
        for (t, (q, f)) in trace.values.iter().zip(&float).enumerate() {
            for (&a, &b) in q.iter().zip(f) {
                err[t] = err[t].max((model.dequantize(a) - b).abs());
                mag[t] = mag[t].max(b.abs());
            }
        }
    }
    let resolution = model.dequantize(1);
    let relative = |t: usize| err[t] / mag[t].max(resolution);
    let limit = allowed / output_mag.max(resolution);
    let node = graph
        .nodes
        .iter()
        .find(|n| relative(n.output) > limit)
        .or_else(|| graph.nodes.iter().max_by(|a, b| relative(a.output).total_cmp(&relative(b.output))));
    Error::AccuracyNotMet {
        allowed,
        measured,
        best_k: model.settings.k,
        max_k,
        node: node.map_or_else(String::new, |n| n.name.clone()),
        op_type: node.map_or_else(String::new, |n| n.op_type.clone()),
        node_error: node.map_or(0.0, |n| relative(n.output)),
    }
}

/// A recognised attention mask is exact only while its masked entries dwarf the scores.
fn check_masks(graph: &Graph, cal: &Calibration) -> Result<()> {
    for (softmax, scores) in crate::onnx::masked_scores(graph) {
        let max_abs = cal.mag[scores];
        if max_abs > crate::onnx::MASK_SAFE_MAGNITUDE {
            return Err(Error::MaskTooWeak { threshold: crate::onnx::MASK_THRESHOLD, max_abs, tensor: softmax });
        }
    }
    Ok(())
}

fn candidate(model: &QModel, e: &MeasuredError) -> Candidate {
    let s = &model.settings;
    Candidate {
        k: s.k,
        predicted_prove_s: predicted_prove_us(s.k, s.total_advice(), lookup_count(model)) / 1e6,
        scale_bits: s.scale_bits,
        // Gathered columns are indexed by integers: their scale says nothing of accuracy.
        min_table_scale_bits: s
            .function_tables
            .iter()
            .filter(|f| f.kind != crate::chips::function::FunctionKind::Table)
            .map(|f| f.in_scale)
            .min(),
        measured: e.max_abs.clone(),
        bound: model.error_bound.clone(),
    }
}

/// Smallest k considered.
const MIN_K: u32 = 8;
/// Extra k tried by `--target accuracy` above the smallest that fits (each doubles prove time).
const ACCURACY_EXTRA_K: u32 = 2;
/// Most integer bits an activation may need: two range-table limbs at the largest k (2·26 bits)
/// less the smallest scale.
pub const MAX_INT_BITS: u32 = 2 * (crate::quant::MAX_K - 2) - MIN_AUTO_SCALE_BITS;
/// Largest activation scale chosen automatically: 2^-16 is below f32 noise for values near 1.
pub const MAX_AUTO_SCALE_BITS: u32 = 16;

/// A cheap precision for counting rows (row counts do not depend on scales).
fn probe_precision(cal: &Calibration) -> Precision {
    let v = MIN_AUTO_SCALE_BITS + cal.int_bits;
    Precision { scale_bits: MIN_AUTO_SCALE_BITS, value_bits: v, lookup_bits: v, function_rows: usize::MAX, matmul: MatMulLayout::Auto }
}

/// Rows of the lowered steps with `lanes` dot lanes (and, with `--matmul auto`, the checks that
/// reach the smallest k not below `floor_k`).
fn quick_rows(graph: &Graph, steps: Vec<crate::quant::Step>, (lanes, floor_k): (usize, u32), opts: &CompileOptions) -> usize {
    let mut m = skeleton(graph, steps);
    m.settings.dot_lanes = lanes;
    m.settings.input_visibility = opts.input_visibility;
    m.settings.output_visibility = opts.output_visibility;
    if opts.matmul == MatMulLayout::Auto {
        checks::choose_checks(graph, &mut m, lanes, floor_k);
    }
    model_rows(&m, lanes)
}

fn skeleton(graph: &Graph, steps: Vec<crate::quant::Step>) -> QModel {
    QModel {
        settings: Settings::default(),
        tensors: graph.tensors.clone(),
        inputs: graph.inputs.clone(),
        outputs: graph.outputs.clone(),
        steps,
        error_bound: Vec::new(),
        calibrated_max_abs: 0.0,
    }
}

/// The quantized model at `k` rows with `lanes` dot lanes: the range table takes up to
/// half the rows (tags up to `k − 2` bits), activations get the finest scale that two
/// table limbs can range-check (at most [`MAX_AUTO_SCALE_BITS`]), and function tables
/// get every row (coarsening their inputs until they fit).
fn build(graph: &Graph, cal: &Calibration, lanes: usize, k: u32, opts: &CompileOptions) -> Result<QModel> {
    let lookup_bits = k - 2;
    let usable = (1usize << k) - RESERVED_ROWS;
    let scale_bits = match opts.scale_bits {
        Some(s) if s + cal.int_bits > 2 * lookup_bits => {
            return Err(Error::Settings(format!(
                "--scale-bits {s} with {} integer bits needs range checks of {} bits; k = {k} allows {}",
                cal.int_bits,
                s + cal.int_bits,
                2 * lookup_bits
            )))
        }
        Some(s) => s,
        None => (2 * lookup_bits).saturating_sub(cal.int_bits).min(MAX_AUTO_SCALE_BITS),
    };
    if scale_bits < MIN_AUTO_SCALE_BITS.min(opts.scale_bits.unwrap_or(MIN_AUTO_SCALE_BITS)) {
        return Err(Error::Settings(format!("k = {k} leaves only {scale_bits} scale bits")));
    }
    let value_bits = scale_bits + cal.int_bits;
    let precision = Precision { scale_bits, value_bits, lookup_bits, function_rows: usable - 1, matmul: opts.matmul };
    let steps = lower(graph, precision, (&cal.mag, &cal.min))?;
    let mut model = skeleton(graph, steps);
    let function_tables: Vec<_> = model
        .steps
        .iter()
        .filter_map(|s| if let crate::quant::StepKind::Function { spec, .. } = &s.kind { Some(spec.clone()) } else { None })
        .collect();
    model.settings = Settings {
        version: SETTINGS_VERSION,
        k,
        scale_bits,
        value_bits,
        lookup_bits,
        dot_lanes: lanes,
        num_advice: MIN_ADVICE.max(lanes + 1),
        num_fixed: crate::chips::poseidon::WIDTH.max(lanes),
        table_tags: Vec::new(),
        function_tables,
        input_visibility: opts.input_visibility,
        output_visibility: opts.output_visibility,
        challenge_advice: 0,
    };
    if opts.matmul == MatMulLayout::Auto {
        // The fewest checks that fit this k (a larger k needs fewer).
        checks::choose_checks(graph, &mut model, lanes, k);
    }
    checks::set_columns(&mut model);
    model.settings.table_tags = model.required_table_tags();
    if table_rows(&model.settings.table_tags) > usable {
        return Err(Error::Settings(format!("k = {k}: the range table does not fit")));
    }
    model.error_bound = ErrorBound::compute(graph, &model.steps, scale_bits, &cal.mag).per_output;
    model.calibrated_max_abs = cal.mag.iter().copied().fold(0.0, f64::max);
    check_fits(&model)?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(max_abs: Vec<f64>) -> MeasuredError {
        MeasuredError { max_abs, samples: 8, reference: "test".into() }
    }

    #[test]
    fn each_output_meets_its_own_allowance_and_nan_never_passes() {
        // The second output is small: 1e-3 is ten times its allowance, whatever the first's.
        assert_eq!(over_allowance(&measured(vec![1e-3, 1e-3]), &[1e-2, 1e-4]), (10.0, 1));
        assert_eq!(over_allowance(&measured(vec![5e-3, 0.0]), &[1e-2, 0.0]), (0.5, 0));
        assert_eq!(over_allowance(&measured(vec![f64::NAN]), &[1.0]).0, f64::INFINITY);
        assert_eq!(over_allowance(&measured(vec![1e-9]), &[0.0]).0, f64::INFINITY);
        assert_eq!(over_allowance(&measured(vec![7.0]), &[f64::INFINITY]).0, 0.0);
        assert_eq!(over_allowance(&MeasuredError { samples: 0, ..measured(vec![0.0]) }, &[1.0]).0, f64::INFINITY);
        assert!(nan_max(0.5, f64::NAN).is_nan() && nan_max(f64::NAN, 0.5).is_nan());
        assert_eq!(MaxError::Relative(0.01).allowed(3.0), 0.03);
        assert_eq!(MaxError::Absolute(0.2).allowed(3.0), 0.2);
    }
}
