//! From ONNX bytes to a [`QModel`]: import, calibrate, choose the circuit shape, quantize.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chips::range_table::table_rows;
use crate::circuit::{check_fits, model_rows, MIN_ADVICE, RESERVED_ROWS};
use crate::error::{Error, Result};
use crate::ir::Graph;
use crate::quant::{lower, ErrorBound, QModel, Settings, Visibility, SETTINGS_VERSION};

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
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions { scale_bits: None, max_k: None, input_visibility: Visibility::Hashed, output_visibility: Visibility::Public }
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
            *m = q.iter().zip(f).fold(*m, |acc, (&a, &b)| acc.max((model.dequantize(a) - b).abs()));
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
        for ((m, lo), v) in mag.iter_mut().zip(min.iter_mut()).zip(&values) {
            *m = v.iter().fold(*m, |a, x| a.max(x.abs()));
            *lo = v.iter().fold(*lo, |a, &x| a.min(x));
        }
    }
    let max = mag.iter().copied().fold(0.0, f64::max);
    let int_bits = if max <= 1.0 { 1 } else { max.log2().ceil() as u32 + 1 };
    Ok(Calibration { mag, min, int_bits })
}

/// Predicted prove time in µs, fitted on this machine class: 2^k·(4.0·advice + 16.6 + 17·lookups).
pub fn predicted_prove_us(k: u32, advice: usize, lookups: usize) -> f64 {
    (1u64 << k) as f64 * (4.0 * advice as f64 + 16.6 + 17.0 * lookups as f64)
}

/// Compiles ONNX bytes with optional calibration data (EZKL format: one list per input).
pub fn compile(onnx: &[u8], calibration: Option<&[Vec<f32>]>, opts: &CompileOptions) -> Result<Compiled> {
    if opts.output_visibility == Visibility::Private {
        return Err(Error::Settings("outputs must be public or hashed: a proof with no output binds nothing".into()));
    }
    let graph = crate::onnx::import_bytes(onnx)?;
    let samples = calibration_samples(&graph, calibration)?;
    let cal = calibrate(&graph, &samples)?;
    let max_k = opts.max_k.unwrap_or(DEFAULT_MAX_K);
    let mut best: Option<(f64, QModel)> = None;
    for lanes in LANE_CHOICES {
        if let Some(model) = shape_for_lanes(&graph, &cal, lanes, opts, max_k)? {
            let cost = predicted_prove_us(model.settings.k, model.settings.num_advice, 3);
            if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                best = Some((cost, model));
            }
        }
    }
    let (_, model) = best.ok_or_else(|| {
        let rows = lower(&graph, 8, 10, (&cal.mag, &cal.min))
            .map(|steps| quick_rows(&graph, steps, LANE_CHOICES[LANE_CHOICES.len() - 1], opts))
            .unwrap_or(0);
        match opts.scale_bits {
            Some(s) if rows + RESERVED_ROWS <= 1usize << max_k => {
                Error::Settings(format!("--scale-bits {s} needs a range table larger than 2^{max_k} rows"))
            }
            _ => Error::TooLarge { rows, max_k },
        }
    })?;
    let measured = measure(onnx, &graph, &model, &samples);
    Ok(Compiled { graph, model, onnx_sha256: hex::encode(Sha256::digest(onnx)), measured })
}

fn quick_rows(graph: &Graph, steps: Vec<crate::quant::Step>, lanes: usize, opts: &CompileOptions) -> usize {
    let mut m = skeleton(graph, steps);
    m.settings.dot_lanes = lanes;
    m.settings.input_visibility = opts.input_visibility;
    m.settings.output_visibility = opts.output_visibility;
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

/// The cheapest k for `lanes`, with its quantized model, or `None` when nothing fits.
fn shape_for_lanes(graph: &Graph, cal: &Calibration, lanes: usize, opts: &CompileOptions, max_k: u32) -> Result<Option<QModel>> {
    let scale_override = opts.scale_bits;
    // Row counts do not depend on scales: measure them once.
    let rows = quick_rows(graph, lower(graph, MIN_AUTO_SCALE_BITS, MIN_AUTO_SCALE_BITS + cal.int_bits, (&cal.mag, &cal.min))?, lanes, opts);
    for k in 6..=max_k {
        let usable = (1usize << k).saturating_sub(RESERVED_ROWS);
        if rows > usable {
            continue;
        }
        let value_bits = match scale_override {
            Some(s) => s + cal.int_bits,
            None => (k - 2).max(MIN_AUTO_SCALE_BITS + cal.int_bits),
        };
        let scale_bits = value_bits - cal.int_bits;
        let steps = lower(graph, scale_bits, value_bits, (&cal.mag, &cal.min))?;
        let mut model = skeleton(graph, steps);
        model.settings.value_bits = value_bits;
        let tags = model.required_table_tags();
        let function_rows: usize = 1 + model
            .steps
            .iter()
            .map(|s| if let crate::quant::StepKind::Function { spec, .. } = &s.kind { spec.rows() } else { 0 })
            .sum::<usize>();
        if table_rows(&tags) > usable || function_rows > usable {
            continue;
        }
        model.settings = Settings {
            version: SETTINGS_VERSION,
            k,
            scale_bits,
            value_bits,
            dot_lanes: lanes,
            num_advice: MIN_ADVICE.max(lanes + 1),
            num_fixed: crate::chips::poseidon::WIDTH.max(lanes),
            table_tags: tags,
            function_tables: model
                .steps
                .iter()
                .filter_map(|s| if let crate::quant::StepKind::Function { spec, .. } = &s.kind { Some(spec.clone()) } else { None })
                .collect(),
            input_visibility: opts.input_visibility,
            output_visibility: opts.output_visibility,
        };
        model.error_bound = ErrorBound::compute(graph, &model.steps, scale_bits, &cal.mag).per_output;
        model.calibrated_max_abs = cal.mag.iter().copied().fold(0.0, f64::max);
        check_fits(&model)?;
        return Ok(Some(model));
    }
    Ok(None)
}
