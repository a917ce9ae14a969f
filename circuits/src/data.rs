//! JSON data files in EZKL's formats.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `{"input_data": [[...flattened f32 values...]]}`: one list per model input
/// (for calibration, several samples concatenated).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputData {
    /// One flattened list per model input.
    pub input_data: Vec<Vec<f32>>,
}

impl InputData {
    /// Parses the JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Settings(format!("input JSON: {e} (expected {{\"input_data\": [[...]]}})")))
    }
}

/// `{"outputs": [[...dequantized f32...]], "shapes": [[...]]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputData {
    /// One flattened list per model output.
    pub outputs: Vec<Vec<f32>>,
    /// The shape of each output.
    pub shapes: Vec<Vec<usize>>,
}
