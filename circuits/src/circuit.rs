//! The model circuit: chips wired together, one layout function per step kind.
//!
//! Public instances (one column), by default: row 0 is the salted Poseidon commitment to the
//! quantized input, rows 1 to 4 the payee binding ([`PayeeBinding`]), rows 5.. the quantized
//! outputs, flattened in output order.

use std::sync::{Arc, Mutex};

use halo2_proofs::circuit::{Cell, Layouter, SimpleFloorPlanner, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Circuit, Column, ConstraintSystem, Error as PlonkError, Instance};

use crate::chips::dot::{DotChip, DotConfig};
use crate::chips::elementwise::{ElementwiseChip, ElementwiseConfig};
use crate::chips::freivalds::{self, FreivaldsChip, FreivaldsConfig};
use crate::chips::function::{FunctionChip, FunctionConfig};
use crate::chips::pack::{self, PackChip, PackConfig};
use crate::chips::poseidon::{self, CommitmentWitness, PoseidonChip, PoseidonConfig};
use crate::chips::range_table::RangeTableConfig;
use crate::chips::requant::{RequantChip, RequantConfig, RequantParams};
use crate::chips::{fr_from_i64, ElementwiseInstructions, PoseidonInstructions, QCell, RequantInstructions, RowCursor};
use crate::error::{Error, Result};
use crate::quant::{Mutation, PairsLayout, QModel, RequantValues, Settings, StepKind, Trace, Visibility};

mod layout;
pub use layout::RegionSpan;
use layout::{shifted, Layout, SynthResult};

/// Rows kept free at the bottom for halo2's blinding factors.
pub const RESERVED_ROWS: usize = 16;

/// Minimum advice columns: the Poseidon state (13) plus its aux column.
pub const MIN_ADVICE: usize = poseidon::WIDTH + 1;

/// Rows a step occupies with `lanes` dot-product lanes.
pub fn step_rows(kind: &StepKind, lanes: usize) -> usize {
    match kind {
        // the rescale rows, whose inputs are the checked sums
        StepKind::Linear { rows, n, checked: true, .. } => rows * n,
        StepKind::Linear { rows, k, n, .. } => rows * n.div_ceil(lanes) * (k + 1) + rows * n,
        StepKind::Elementwise { coeffs, .. } => coeffs.len(),
        StepKind::DotPairs { .. } => 0, // counted by the caller from the tensor size
        StepKind::Relu { input: _ } | StepKind::Function { .. } => 0, // counted by the caller from the tensor size
        StepKind::View { .. } => 0,
    }
}

/// Public instance rows of the payee binding.
pub const BINDING_INSTANCES: usize = 4;

/// Who a proof pays and for which escrow job: public instance rows right after the input
/// part, each copied into the circuit and read by a gate, so that a proof is valid for one
/// binding only and a copied proof pays only the executor that made it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayeeBinding {
    /// The payee's address (160 bits).
    pub payee: Fr,
    /// The chain's id (EIP-155).
    pub chain_id: Fr,
    /// The escrow contract's address.
    pub escrow: Fr,
    /// The job's id in the escrow.
    pub escrow_job: Fr,
}

impl PayeeBinding {
    /// The instance values, in row order.
    pub fn values(&self) -> [Fr; BINDING_INSTANCES] {
        [self.payee, self.chain_id, self.escrow, self.escrow_job]
    }

    /// From the instance values, in row order.
    pub fn from_values(v: [Fr; BINDING_INSTANCES]) -> Self {
        PayeeBinding { payee: v[0], chain_id: v[1], escrow: v[2], escrow_job: v[3] }
    }
}

/// The commitment to quantized inputs with a salt: the Poseidon chain over the salt and the
/// inputs packed at `value_bits` ([`pack::pack`], design.md §1.2). A random salt makes it hiding.
pub fn salted_commitment(inputs: &[Vec<i64>], salt: Fr, value_bits: u32) -> Fr {
    poseidon::commit(&salted(inputs, salt, value_bits))
}

fn salted(inputs: &[Vec<i64>], salt: Fr, value_bits: u32) -> Vec<Fr> {
    let flat: Vec<i64> = inputs.iter().flatten().copied().collect();
    std::iter::once(salt).chain(pack::pack(&flat, value_bits)).collect()
}

/// Elements the input commitment hashes: the salt and the packed inputs.
pub fn committed_elements(n_in: usize, value_bits: u32) -> usize {
    1 + n_in.div_ceil(pack::per_element(value_bits))
}

/// Rows the whole model occupies (commitment, input range checks, binding, steps, the zero cell).
pub fn model_rows(model: &QModel, lanes: usize) -> usize {
    let n_in: usize = model.input_sizes().iter().sum();
    let steps: usize = model
        .steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::Relu { .. } => model.tensors[s.output].numel(),
            // a rescale row to the table's input scale, which is also the lookup row
            StepKind::Function { .. } => model.tensors[s.output].numel(),
            // products, one single-lane dot group per output, one rescale per output
            StepKind::DotPairs { width, layout: PairsLayout::Direct, .. } => {
                let rows = model.tensors[s.output].numel();
                rows * width + rows * (width + 1) + rows
            }
            // the rescale rows, whose inputs are the checked sums
            StepKind::DotPairs { layout: PairsLayout::Freivalds(_), .. } => model.tensors[s.output].numel(),
            other => step_rows(other, lanes),
        })
        .sum();
    // The zero cell: padding reads it, and so does `y` of an elementwise step without one.
    let zero = model.uses_zero_cell();
    let inputs = match model.settings.input_visibility {
        Visibility::Hashed => poseidon::commitment_rows(committed_elements(n_in, model.settings.value_bits)),
        Visibility::Public | Visibility::Private => 0,
    };
    let n_out: usize = model.output_shapes().iter().map(|s| s.iter().product::<usize>()).sum();
    let outputs = if model.settings.output_visibility == Visibility::Hashed { poseidon::commitment_rows(n_out) } else { 0 };
    // The binding: its cells, then one square row per cell.
    let binding = 2 * BINDING_INSTANCES;
    (inputs + n_in + binding + steps + usize::from(zero) + outputs).max(challenge_rows(model))
}

/// Rows the second phase's matrix-product checks occupy in their own columns.
pub fn challenge_rows(model: &QModel) -> usize {
    model
        .steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::DotPairs { layout: PairsLayout::Freivalds(d), .. } => d.batch * freivalds::check_rows(d.m, d.k, d.n),
            StepKind::Linear { rows, k, n, checked: true, .. } => freivalds::check_rows(*rows, *k, *n),
            _ => 0,
        })
        .sum()
}

/// Column configuration of the model circuit.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    dot: DotConfig,
    requant: RequantConfig,
    elementwise: ElementwiseConfig,
    poseidon: PoseidonConfig,
    table: RangeTableConfig,
    instance: Column<Instance>,
    zero_column: Column<Advice>,
    function: Option<FunctionConfig>,
    freivalds: Option<FreivaldsConfig>,
    /// The input packing, in circuits with a hashed input.
    pack: Option<PackConfig>,
    advice: Vec<Column<Advice>>,
}

impl ModelConfig {
    /// The advice columns, in column order (what an audit mutates).
    pub fn advice(&self) -> &[Column<Advice>] {
        &self.advice
    }
}

/// The circuit's parameters: the model's settings (and, in tests, deliberate faults).
#[derive(Clone, Debug, Default)]
pub struct CircuitParams {
    /// The settings stored with the keys.
    pub settings: Settings,
    #[cfg(test)]
    pub(crate) faults: Faults,
}

impl From<Settings> for CircuitParams {
    fn from(settings: Settings) -> Self {
        CircuitParams {
            settings,
            #[cfg(test)]
            faults: Faults::default(),
        }
    }
}

/// Deliberately unsound circuit variants, for the tests that show `zkinfer mutate` can fail.
#[cfg(test)]
#[derive(Clone, Debug, Default)]
pub(crate) struct Faults {
    /// `(step, operand)`: the step reads that operand through fresh cells, not copied from
    /// the producer's (the wire between two layers cut).
    pub unwired: Option<(usize, usize)>,
    /// The rescale chip without its remainder range checks.
    pub unchecked_remainder: bool,
}

/// Collects the regions of a synthesis, for audits ([`ModelCircuit::with_region_log`]).
pub type RegionLog = Arc<Mutex<Vec<RegionSpan>>>;

/// The circuit for one quantized model and one input. It evaluates the model once, when it is
/// made; synthesis lays out that evaluation's values.
#[derive(Clone, Debug)]
pub struct ModelCircuit {
    model: Arc<QModel>,
    pub(crate) inputs: Vec<Vec<i64>>,
    /// The input commitment's salt (private; used when the input is hashed).
    salt: Fr,
    /// Who the proof pays (public).
    binding: PayeeBinding,
    /// Every witness value.
    trace: Arc<Trace>,
    /// A deliberately wrong witness value (audits only).
    mutation: Option<Mutation>,
    regions: Option<RegionLog>,
    #[cfg(test)]
    pub(crate) faults: Faults,
}

impl ModelCircuit {
    /// A circuit for quantized inputs (use [`QModel::quantize_inputs`]), with a zero salt and
    /// an empty binding until [`Self::with_salt`] and [`Self::with_binding`] set them. Evaluates
    /// the model: fails where the input overflows or leaves a function table.
    pub fn new(model: Arc<QModel>, quantized_inputs: Vec<Vec<i64>>) -> Result<Self> {
        let trace = Arc::new(model.eval_quantized(&quantized_inputs)?);
        Ok(Self::from_trace(model, quantized_inputs, trace))
    }

    fn from_trace(model: Arc<QModel>, inputs: Vec<Vec<i64>>, trace: Arc<Trace>) -> Self {
        ModelCircuit {
            model,
            inputs,
            salt: Fr::zero(),
            binding: PayeeBinding::default(),
            trace,
            mutation: None,
            regions: None,
            #[cfg(test)]
            faults: Faults::default(),
        }
    }

    /// The same circuit with the input commitment's salt.
    pub fn with_salt(mut self, salt: Fr) -> Self {
        self.salt = salt;
        self
    }

    /// The same circuit bound to a payee and an escrow job.
    pub fn with_binding(mut self, binding: PayeeBinding) -> Self {
        self.binding = binding;
        self
    }

    /// The same circuit with one deliberately wrong witness value, every later value and the
    /// claimed outputs recomputed from it (audits and negative tests; see [`Mutation`]). Fails
    /// where the wrong value has no witness (it leaves a range the evaluation checks).
    pub fn with_mutation(mut self, mutation: Mutation) -> Result<Self> {
        self.trace = Arc::new(self.model.eval_mutated(&self.inputs, Some(&mutation))?);
        self.mutation = Some(mutation);
        Ok(self)
    }

    /// The same circuit, recording where each region lies into `log` at every synthesis.
    pub fn with_region_log(mut self, log: RegionLog) -> Self {
        self.regions = Some(log);
        self
    }

    /// A circuit for key generation: a zero input's witness where it evaluates, else zeros of
    /// the right shapes (key generation reads no witness value).
    pub fn for_keygen(model: Arc<QModel>) -> Self {
        let inputs: Vec<Vec<i64>> = model.input_sizes().into_iter().map(|n| vec![0; n]).collect();
        let trace = model.eval_quantized(&inputs).unwrap_or_else(|_| Trace::placeholder(&model));
        Self::from_trace(model, inputs, Arc::new(trace))
    }

    /// The model.
    pub fn model(&self) -> &QModel {
        &self.model
    }

    /// The witness this circuit lays out.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The public instances: the input part, the binding, and the outputs this circuit's
    /// witness computes.
    pub fn instances(&self) -> Vec<Fr> {
        public_instances(&self.model, &self.inputs, self.salt, &self.binding, &self.trace)
    }

    /// The first-phase advice columns of a circuit with these settings, in column order.
    pub fn advice_columns(settings: &Settings) -> Vec<Column<Advice>> {
        let mut meta = ConstraintSystem::default();
        Self::configure_with_params(&mut meta, settings.clone().into()).advice
    }

    /// Every advice column, the second phase's (the matrix-product checks) after the first's.
    pub fn all_advice_columns(settings: &Settings) -> Vec<Column<Advice>> {
        let mut meta = ConstraintSystem::default();
        let config = Self::configure_with_params(&mut meta, settings.clone().into());
        config.advice.iter().copied().chain(config.freivalds.iter().flat_map(|f| f.columns())).collect()
    }
}

/// The public instances for a quantized input and its trace: the input part (salted
/// commitment, values or nothing), the payee binding, then the output part (values or commitment).
pub fn public_instances(model: &QModel, inputs: &[Vec<i64>], salt: Fr, binding: &PayeeBinding, trace: &Trace) -> Vec<Fr> {
    let mut out = match model.settings.input_visibility {
        Visibility::Hashed => vec![salted_commitment(inputs, salt, model.settings.value_bits)],
        Visibility::Public => inputs.iter().flatten().map(|&v| fr_from_i64(v)).collect(),
        Visibility::Private => Vec::new(),
    };
    out.extend(binding.values());
    out.extend(output_instances(model, &trace.outputs(model)));
    out
}

/// The output part of the public instances for the model's quantized outputs (one flattened
/// list per output): the values, or their Poseidon commitment when outputs are hashed. An
/// optimistic job posts exactly these on chain.
pub fn output_instances(model: &QModel, outputs: &[Vec<i64>]) -> Vec<Fr> {
    let values: Vec<Fr> = outputs.iter().flatten().map(|&v| fr_from_i64(v)).collect();
    match model.settings.output_visibility {
        Visibility::Hashed => vec![poseidon::commit(&values)],
        _ => values,
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            version: crate::quant::SETTINGS_VERSION,
            k: 8,
            scale_bits: 4,
            value_bits: 6,
            lookup_bits: 6,
            dot_lanes: 13,
            num_advice: MIN_ADVICE,
            num_fixed: poseidon::WIDTH,
            table_tags: vec![6],
            function_tables: Vec::new(),
            input_visibility: Visibility::Hashed,
            output_visibility: Visibility::Public,
            challenge_advice: 0,
        }
    }
}

impl Circuit<Fr> for ModelCircuit {
    type Config = ModelConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = CircuitParams;

    fn without_witnesses(&self) -> Self {
        Self::for_keygen(self.model.clone())
    }

    fn params(&self) -> CircuitParams {
        CircuitParams {
            settings: self.model.settings.clone(),
            #[cfg(test)]
            faults: self.faults.clone(),
        }
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, params: CircuitParams) -> ModelConfig {
        let s = &params.settings;
        let advice: Vec<_> = (0..s.num_advice.max(MIN_ADVICE).max(s.dot_lanes + 1)).map(|_| meta.advice_column()).collect();
        advice.iter().for_each(|a| meta.enable_equality(*a));
        let fixed: Vec<_> = (0..s.num_fixed.max(poseidon::WIDTH).max(s.dot_lanes)).map(|_| meta.fixed_column()).collect();
        let constants = meta.fixed_column();
        meta.enable_constant(constants);
        let instance = meta.instance_column();
        meta.enable_equality(instance);
        let table = RangeTableConfig::configure(meta, &s.table_tags);
        let dot = DotChip::configure(meta, advice[0], &advice[1..=s.dot_lanes], &fixed[..s.dot_lanes]);
        let state: [_; poseidon::WIDTH] = std::array::from_fn(|i| advice[i]);
        let rc: [_; poseidon::WIDTH] = std::array::from_fn(|i| fixed[i]);
        let poseidon = PoseidonChip::configure(meta, state, advice[poseidon::WIDTH], rc);
        let requant_columns = (std::array::from_fn(|i| advice[i]), std::array::from_fn(|i| fixed[i]));
        #[cfg(test)]
        let requant = if params.faults.unchecked_remainder {
            RequantChip::configure_without_remainder_range(
                meta,
                requant_columns.0,
                requant_columns.1,
                table.clone(),
                (s.value_bits, s.lookup_bits),
            )
        } else {
            RequantChip::configure(meta, requant_columns.0, requant_columns.1, table.clone(), (s.value_bits, s.lookup_bits))
        };
        #[cfg(not(test))]
        let requant = RequantChip::configure(meta, requant_columns.0, requant_columns.1, table.clone(), (s.value_bits, s.lookup_bits));
        // An elementwise row is also its rescale row (z is the requant input, column 0) and a
        // lookup row is also its rescale row (x is the requant output, column 5): the three chips
        // share rows in disjoint columns (requant advice 0..8 and fixed 0..5).
        let elementwise = ElementwiseChip::configure(meta, [advice[8], advice[9], advice[0]], std::array::from_fn(|i| fixed[5 + i]));
        // The function lookup exists only in circuits that use a function table.
        let function = (!s.function_tables.is_empty()).then(|| FunctionChip::configure(meta, advice[5], advice[10], fixed[9]));
        // The second phase exists only in circuits with a random-challenge matrix product.
        let freivalds = (s.challenge_advice > 0).then(|| FreivaldsChip::configure(meta));
        // The packs sit beside the inputs' rescale rows, reading their input column.
        let pack = (s.input_visibility == Visibility::Hashed).then(|| PackChip::configure(meta, advice[0], advice[11], s.value_bits));
        ModelConfig { dot, requant, elementwise, poseidon, table, instance, zero_column: advice[0], function, freivalds, pack, advice }
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> ModelConfig {
        Self::configure_with_params(meta, CircuitParams::default())
    }

    fn synthesize(&self, config: ModelConfig, mut layouter: impl Layouter<Fr>) -> std::result::Result<(), PlonkError> {
        config.table.load(&mut layouter)?;
        let function = config.function.clone().map(FunctionChip::construct);
        if let Some(f) = &function {
            f.load(&mut layouter, &self.model.settings.function_tables)?;
        }
        let model = &*self.model;
        let trace = &*self.trace;
        let mut ly = Layout {
            cursor: RowCursor::new((1usize << model.settings.k).saturating_sub(RESERVED_ROWS)),
            dot: DotChip::construct(config.dot.clone()),
            requant: RequantChip::construct(config.requant.clone()),
            elementwise: ElementwiseChip::construct(config.elementwise.clone()),
            lanes: model.settings.dot_lanes,
            zero: None,
            zero_column: config.zero_column,
            zero_value: match self.mutation {
                Some(Mutation::Zero { delta }) => delta,
                _ => 0,
            },
            step: None,
            spans: Vec::new(),
            checks: Vec::new(),
        };
        let mut tensors: Vec<Option<Vec<QCell>>> = vec![None; model.tensors.len()];

        // The inputs, on their range-check rows (the values come from the evaluation, which a
        // mutation may make compute on another x than the commitment's or the instances').
        let rows: Vec<RequantValues> = trace.inputs.iter().flatten().copied().collect();
        let mut input_cells = self.assign_inputs(&config, &mut ly, &mut layouter, &rows)?.into_iter();
        if model.inputs.len() != self.inputs.len() {
            return Err(PlonkError::Synthesis);
        }
        for (&id, values) in model.inputs.iter().zip(&self.inputs) {
            let cells: Vec<QCell> = input_cells.by_ref().take(values.len()).collect();
            // Every input value has its own row: a short trace must not leave a tensor short.
            if cells.len() != values.len() {
                return Err(PlonkError::Synthesis);
            }
            tensors[id] = Some(cells);
        }
        if input_cells.next().is_some() {
            return Err(PlonkError::Synthesis);
        }

        for (index, step) in model.steps.iter().enumerate() {
            ly.step = Some(index);
            let out = self.synthesize_step(index, &tensors, function.as_ref(), &mut ly, &mut layouter)?;
            tensors[step.output] = Some(out);
        }
        ly.step = None;

        let mut outputs = Vec::new();
        for &o in &model.outputs {
            outputs.extend(tensors[o].as_ref().ok_or(PlonkError::Synthesis)?.iter().copied());
        }
        self.expose_binding(&config, &mut ly, &mut layouter)?;
        self.expose_outputs(&config, &mut ly, &mut layouter, &outputs)?;
        match &config.freivalds {
            Some(cfg) => check_products(cfg, &mut layouter, &ly.checks, model.settings.k, &mut ly.spans)?,
            // Checked steps leave their sums free until the check binds them: never without it
            // (a model that skipped validation could ask for this).
            None if !ly.checks.is_empty() => return Err(PlonkError::Synthesis),
            None => {}
        }
        if let Some(log) = &self.regions {
            *log.lock().map_err(|_| PlonkError::Synthesis)? = std::mem::take(&mut ly.spans);
        }
        Ok(())
    }
}

impl ModelCircuit {
    /// Lays out one step from its rows in the trace; returns its output cells.
    fn synthesize_step<L: Layouter<Fr>>(
        &self,
        index: usize,
        tensors: &[Option<Vec<QCell>>],
        function: Option<&FunctionChip>,
        ly: &mut Layout,
        layouter: &mut L,
    ) -> SynthResult<Vec<QCell>> {
        let step = &self.model.steps[index];
        let st = self.trace.steps.get(index).ok_or(PlonkError::Synthesis)?;
        let get = |id: usize| tensors.get(id).cloned().flatten().ok_or(PlonkError::Synthesis);
        let read = |id: usize, operand: usize, ly: &mut Layout, layouter: &mut L| self.read_operand(get(id)?, index, operand, ly, layouter);
        Ok(match &step.kind {
            StepKind::Linear { input, rows, k, n, weight, bias, shift, checked } => {
                let x = read(*input, 0, ly, layouter)?;
                if *checked {
                    ly.linear_checked(layouter, &x, (*rows, *k, *n), (weight, bias), &st.rescale, *shift)?
                } else {
                    ly.linear(layouter, &x, (*rows, *k, *n), (weight, bias), &st.rescale, *shift)?
                }
            }
            StepKind::Elementwise { x, y, coeffs, shift } => {
                let xv = read(*x, 0, ly, layouter)?;
                let yv = y.map(|y| read(y, 1, ly, layouter)).transpose()?;
                ly.elementwise(layouter, (&xv, yv.as_deref()), coeffs, &st.rescale, *shift)?
            }
            StepKind::DotPairs { a, b, width, shift, layout } => {
                let (av, bv) = (read(*a, 0, ly, layouter)?, read(*b, 1, ly, layouter)?);
                match layout {
                    PairsLayout::Direct => ly.dot_pairs(layouter, (&av, &bv), *width, &st.products, &st.rescale, *shift)?,
                    PairsLayout::Freivalds(d) => ly.matmul_checked(layouter, (&av, &bv), *d, &st.rescale, *shift)?,
                }
            }
            StepKind::Relu { input } => {
                let cells: Vec<Cell> = read(*input, 0, ly, layouter)?.iter().map(|c| c.cell).collect();
                ly.requant(layouter, &cells, &st.rescale, RequantParams { shift: 0, relu: true })?
            }
            StepKind::Function { input, spec } => {
                let x = read(*input, 0, ly, layouter)?;
                let shift = self.model.settings.scale_bits.checked_sub(spec.in_scale).ok_or(PlonkError::Synthesis)?;
                let ys = self.trace.values.get(step.output).ok_or(PlonkError::Synthesis)?;
                ly.function(layouter, function.ok_or(PlonkError::Synthesis)?, &x, spec, shift, &st.rescale, ys)?
            }
            StepKind::View { input, index } => {
                let x = get(*input)?;
                let mut out = Vec::with_capacity(index.len());
                for i in index {
                    out.push(match i {
                        Some(i) => x.get(*i).copied().ok_or(PlonkError::Synthesis)?,
                        None => ly.zero(layouter)?,
                    });
                }
                out
            }
        })
    }

    /// A step's operand as the step reads it: the producer's cells (a mutation may shift the
    /// value read; a test fault may cut the wire).
    fn read_operand(
        &self,
        cells: Vec<QCell>,
        index: usize,
        operand: usize,
        _ly: &mut Layout,
        _layouter: &mut impl Layouter<Fr>,
    ) -> SynthResult<Vec<QCell>> {
        let cells = shifted(cells, self.mutation.and_then(|m| m.read_at(index, operand)))?;
        #[cfg(test)]
        if self.faults.unwired == Some((index, operand)) {
            return _ly.unwired(_layouter, &cells);
        }
        Ok(cells)
    }

    /// Lays out one shift-0 rescale row per input value (its range check), whose input cell is
    /// the value itself: hashed with the salt into the commitment (through packed elements), or
    /// copied to the instances, or free (a private input); returns the range-checked values.
    fn assign_inputs(
        &self,
        config: &ModelConfig,
        ly: &mut Layout,
        layouter: &mut impl Layouter<Fr>,
        rows: &[RequantValues],
    ) -> SynthResult<Vec<QCell>> {
        let visibility = self.model.settings.input_visibility;
        let pack = match (visibility, &config.pack) {
            (Visibility::Hashed, Some(p)) => Some(PackChip::construct(p.clone())),
            (Visibility::Hashed, None) => return Err(PlonkError::Synthesis),
            _ => None,
        };
        // The packs read the rescale rows' inputs, which those rows range-check.
        if pack.as_ref().is_some_and(|p| p.value_column() != ly.requant.input_column()) {
            return Err(PlonkError::Synthesis);
        }
        let witness = ly.requant_witness(rows);
        let values: Vec<i64> = rows.iter().map(|r| i64::try_from(r.a).map_err(|_| PlonkError::Synthesis)).collect::<SynthResult<_>>()?;
        let off = ly.alloc(rows.len(), "inputs")?;
        let rq = &ly.requant;
        let params = RequantParams { shift: 0, relu: false };
        let (cells, out, packs) = layouter.assign_region(
            || "inputs",
            |mut region| {
                let (cells, out) = rq.assign_rows_input_unchecked(&mut region, off, params, &witness)?;
                let packs = pack.as_ref().map(|p| p.assign_packs_unchecked(&mut region, off, &values)).transpose()?;
                Ok((cells, out, packs))
            },
        )?;
        match (visibility, packs) {
            (Visibility::Hashed, Some(packs)) => {
                // The salt is the chain's first element: a free private cell, read only by the hash.
                let elements: Vec<Fr> = std::iter::once(self.salt).chain(packs.iter().map(|(_, v)| *v)).collect();
                let cw = CommitmentWitness::compute(&elements);
                let off = ly.alloc(poseidon::commitment_rows(elements.len()), "input commitment")?;
                let chip = PoseidonChip::construct(config.poseidon.clone());
                let digest = layouter.assign_region(
                    || "input commitment",
                    |mut region| {
                        let (hashed, digest) = chip.assign_commitment(&mut region, off, &cw)?;
                        for (h, (p, _)) in hashed.iter().skip(1).zip(&packs) {
                            region.constrain_equal(*h, *p);
                        }
                        Ok(digest)
                    },
                )?;
                layouter.constrain_instance(digest, config.instance, 0);
            }
            (Visibility::Public, _) => {
                for (i, c) in cells.iter().enumerate() {
                    layouter.constrain_instance(*c, config.instance, i);
                }
            }
            _ => {}
        }
        Ok(out)
    }

    /// Copies the payee binding from its instance rows into cells that a gate reads
    /// (each squared by the elementwise gate), so that no layout leaves a binding row unused.
    fn expose_binding(&self, config: &ModelConfig, ly: &mut Layout, layouter: &mut impl Layouter<Fr>) -> SynthResult<()> {
        let values = self.binding.values();
        let off = ly.alloc(2 * BINDING_INSTANCES, "payee binding")?;
        let (col, chip) = (config.zero_column, &ly.elementwise);
        let cells = layouter.assign_region(
            || "payee binding",
            |mut region| {
                let cells: Vec<(Cell, Fr)> =
                    values.iter().enumerate().map(|(i, v)| (region.assign_advice(col, off + i, Value::known(*v)).cell(), *v)).collect();
                chip.assign_squares(&mut region, off + BINDING_INSTANCES, &cells)?;
                Ok(cells)
            },
        )?;
        let first = self.model.binding_offset();
        for (i, (cell, _)) in cells.iter().enumerate() {
            layouter.constrain_instance(*cell, config.instance, first + i);
        }
        Ok(())
    }

    /// Copies the outputs to the instances, or commits to them and exposes the commitment.
    fn expose_outputs(
        &self,
        config: &ModelConfig,
        ly: &mut Layout,
        layouter: &mut impl Layouter<Fr>,
        outputs: &[QCell],
    ) -> SynthResult<()> {
        let first = self.model.output_offset();
        match self.model.settings.output_visibility {
            Visibility::Public => {
                for (i, c) in outputs.iter().enumerate() {
                    layouter.constrain_instance(c.cell, config.instance, first + i);
                }
            }
            Visibility::Hashed => {
                let cw = CommitmentWitness::compute(&outputs.iter().map(|c| fr_from_i64(c.value)).collect::<Vec<_>>());
                let off = ly.alloc(poseidon::commitment_rows(outputs.len()), "output commitment")?;
                let chip = PoseidonChip::construct(config.poseidon.clone());
                let digest = layouter.assign_region(
                    || "output commitment",
                    |mut region| {
                        let (cells, digest) = chip.assign_commitment(&mut region, off, &cw)?;
                        for (committed, out) in cells.iter().zip(outputs) {
                            region.constrain_equal(*committed, out.cell);
                        }
                        Ok(digest)
                    },
                )?;
                layouter.constrain_instance(digest, config.instance, first);
            }
            Visibility::Private => return Err(PlonkError::Synthesis),
        }
        Ok(())
    }
}

/// Ends the first phase (every factor and sum is committed), draws the challenge and lays out
/// each pending matrix-product check in the second-phase columns, from row 0.
fn check_products(
    cfg: &FreivaldsConfig,
    layouter: &mut impl Layouter<Fr>,
    checks: &[layout::PendingCheck],
    k: u32,
    spans: &mut Vec<RegionSpan>,
) -> std::result::Result<(), PlonkError> {
    layouter.next_phase();
    let rho = layouter.get_challenge(cfg.challenge());
    let chip = FreivaldsChip::construct(cfg.clone());
    let mut cursor = RowCursor::new((1usize << k).saturating_sub(RESERVED_ROWS));
    for check in checks {
        let (m, kk, n) = check.dims;
        let rows = freivalds::check_rows(m, kk, n);
        let off = cursor.alloc(rows)?;
        spans.push(RegionSpan { name: "freivalds", step: check.step, rows: off..off + rows, second_phase: true });
        layouter.assign_region(
            || "freivalds",
            |mut region| {
                freivalds::assign_matmul_check(&chip, &mut region, off, (&check.a, check.b(), &check.c, &check.bias), check.dims, rho)
            },
        )?;
    }
    Ok(())
}

/// Checks that a model's settings can hold it (rows and table).
pub fn check_fits(model: &QModel) -> Result<()> {
    let s = &model.settings;
    let usable = (1usize << s.k).saturating_sub(RESERVED_ROWS);
    let rows = model_rows(model, s.dot_lanes);
    let table = crate::chips::range_table::table_rows(&s.table_tags);
    if rows > usable || table > usable {
        return Err(Error::Settings(format!("k = {} gives {usable} usable rows; the model needs {rows} and the table {table}", s.k)));
    }
    let function_rows = 1 + s.function_tables.iter().map(|f| f.rows()).sum::<usize>();
    if function_rows > usable {
        return Err(Error::Settings(format!("the function tables need {function_rows} rows, k = {} gives {usable}", s.k)));
    }
    if model.required_table_tags().iter().any(|t| !s.table_tags.contains(t)) {
        return Err(Error::Settings("range table lacks a needed width".into()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "circuit_tamper_tests.rs"]
mod tamper_tests;
