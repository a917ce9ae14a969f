//! The circuits crate's error type.

use thiserror::Error;

/// Errors from importing, quantizing and laying out a model.
#[derive(Debug, Error)]
pub enum Error {
    /// The file is not a valid ONNX protobuf.
    #[error("malformed ONNX: {reason}")]
    MalformedOnnx {
        /// What the decoder reported.
        reason: String,
    },
    /// The graph uses an operator that has no lowering.
    #[error("unsupported ONNX op `{op_type}` at node `{node}`")]
    UnsupportedOp {
        /// The ONNX op type, e.g. `Sigmoid`.
        op_type: String,
        /// The node's name (or its first output when unnamed).
        node: String,
    },
    /// An attribute or input combination the lowering does not handle.
    #[error("node `{node}` ({op_type}): {reason}")]
    UnsupportedNode {
        /// The ONNX op type.
        op_type: String,
        /// The node's name.
        node: String,
        /// Which attribute or input is not supported.
        reason: String,
    },
    /// A tensor referenced by a node was never produced.
    #[error("node `{node}` reads tensor `{tensor}`, which no earlier node or initializer defines")]
    MissingTensor {
        /// The node's name.
        node: String,
        /// The tensor name.
        tensor: String,
    },
    /// Shapes of a node's operands do not fit together.
    #[error("node `{node}`: shape mismatch: {lhs:?} vs {rhs:?}")]
    ShapeMismatch {
        /// The node's name.
        node: String,
        /// The first shape.
        lhs: Vec<usize>,
        /// The second shape.
        rhs: Vec<usize>,
    },
    /// The model's input has a dimension that is not fixed.
    #[error("input `{input}` has a dynamic dimension at axis {axis}; only the batch axis may be dynamic (it is set to 1)")]
    DynamicShape {
        /// The input name.
        input: String,
        /// The dynamic axis.
        axis: usize,
    },
    /// The user-provided input has the wrong number of values.
    #[error("input {index} has {got} values, but the model expects {expected} (shape {shape:?})")]
    InputLength {
        /// Which model input.
        index: usize,
        /// How many values were given.
        got: usize,
        /// How many the shape needs.
        expected: usize,
        /// The input's shape.
        shape: Vec<usize>,
    },
    /// The wrong number of input tensors was given.
    #[error("the model takes {expected} input tensor(s), {got} given")]
    InputCount {
        /// How many the model takes.
        expected: usize,
        /// How many were given.
        got: usize,
    },
    /// A quantized value left the range that the circuit range-checks.
    #[error("value overflow at node `{node}`: {value} (float {float:.4}) is outside the representable range ±{limit} (±{float_limit:.4} at scale 2^{scale_bits}); recompile with calibration data that covers this input, or fewer --scale-bits")]
    Overflow {
        /// The node whose output overflowed.
        node: String,
        /// The quantized value.
        value: i128,
        /// The value in real units.
        float: f64,
        /// The largest magnitude allowed.
        limit: i128,
        /// The limit in real units.
        float_limit: f64,
        /// The scale of the tensor.
        scale_bits: u32,
    },
    /// A function node's input left the range its lookup table covers.
    #[error("node `{node}`: input {value:.4} is outside the calibrated table range [{lo:.4}, {hi:.4}]; recompile with calibration data that covers this input")]
    OutsideTable {
        /// The function node.
        node: String,
        /// The input (real units).
        value: f64,
        /// Table start (real units).
        lo: f64,
        /// Table end (real units).
        hi: f64,
    },
    /// A non-finite input value.
    #[error("input {index} value {position} is not finite ({value})")]
    NonFinite {
        /// Which input.
        index: usize,
        /// Position in the flattened input.
        position: usize,
        /// The value.
        value: f32,
    },
    /// Calibration data did not fit the model input.
    #[error("calibration input {index} has {got} values, not a multiple of the input size {size}")]
    Calibration {
        /// Which input.
        index: usize,
        /// Length given.
        got: usize,
        /// The input size.
        size: usize,
    },
    /// Calibration reached values no circuit can range-check (or not finite).
    #[error("calibrated activations reach {max_abs:e} at `{tensor}`, more than {max_int_bits} integer bits can hold in any circuit: check the model's weights and the calibration data")]
    CalibratedRange {
        /// The tensor with the largest magnitude.
        tensor: String,
        /// Its largest absolute value (or NaN / infinity).
        max_abs: f64,
        /// The most integer bits a circuit can hold.
        max_int_bits: u32,
    },
    /// A decoded compiled model that is not well formed ([`crate::quant::QModel::validate`]).
    #[error("malformed compiled model: {reason}; recompile it from its ONNX file")]
    MalformedModel {
        /// Which part is inconsistent.
        reason: String,
    },
    /// A mutation (audits only) names a step, operand or element the model does not have.
    #[error("the mutation {0:?} names a step, operand or element this model does not have")]
    NoSuchMutationTarget(crate::quant::Mutation),
    /// The honest witness fails the circuit's own constraints (`zkinfer mutate` checks it first).
    #[error("the honest witness does not satisfy the circuit: {failures}; this is a bug in zkinfer, please report it")]
    HonestWitnessRejected {
        /// MockProver's failures, summarised.
        failures: String,
    },
    /// No circuit size `compile` tried meets the error `--max-error` allows.
    #[error("no circuit up to k = {max_k} meets --max-error {allowed:e}: the best measures {measured:e} (at k = {best_k}); the error first exceeds {node_error:e} (relative to that tensor's magnitude) at node `{node}` ({op_type}). Allow more with --max-error, or try --target accuracy or a larger --max-k")]
    AccuracyNotMet {
        /// The error allowed, absolute.
        allowed: f64,
        /// The smallest measured max |quantized − float| over the circuits tried.
        measured: f64,
        /// The k of that circuit.
        best_k: u32,
        /// The largest k tried.
        max_k: u32,
        /// The first node (in graph order) whose relative error exceeds the allowed relative error.
        node: String,
        /// That node's ONNX op type.
        op_type: String,
        /// Its relative error.
        node_error: f64,
    },
    /// A Gather by an activation met an index that is not an integer in the table's range.
    #[error("node `{node}` gathers by an activation, whose values must be integers in [0, {len}); the calibration gave {value}: pass --calibration with valid token ids")]
    TableIndex {
        /// The node.
        node: String,
        /// The offending value.
        value: f64,
        /// The table's length.
        len: usize,
    },
    /// A recognised attention mask whose masked entries are not negligible against the
    /// calibrated activations.
    #[error("the scores of the masked softmax `{tensor}` reach {max_abs:e} in calibration, while its mask is only known to be at most {threshold:e}: a masked entry's weight e^(x + mask − max) may not be negligible, so masking it out exactly would change the model; use a larger mask value (-1e4 or -inf)")]
    MaskTooWeak {
        /// What a masked entry holds at most.
        threshold: f64,
        /// The largest calibrated |score|.
        max_abs: f64,
        /// The softmax node.
        tensor: String,
    },
    /// Settings that cannot be laid out (for example a scale too large for the table).
    #[error("invalid circuit settings: {0}")]
    Settings(String),
    /// No k up to the limit fits the model.
    #[error("the model needs {rows} rows, more than 2^{max_k} allows")]
    TooLarge {
        /// Rows needed.
        rows: usize,
        /// The largest k tried.
        max_k: u32,
    },
    /// Float reference inference in candle failed.
    #[error("float reference (candle) failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// A halo2 synthesis error.
    #[error("circuit synthesis: {0}")]
    Synthesis(String),
}

impl From<halo2_proofs::plonk::Error> for Error {
    fn from(e: halo2_proofs::plonk::Error) -> Self {
        Error::Synthesis(format!("{e:?}"))
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
