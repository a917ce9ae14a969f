//! The model circuit: chips wired together, one layout function per step kind.
//!
//! Public instances (one column), by default: row 0 is the salted Poseidon commitment to the
//! quantized input, rows 1 to 4 the payee binding ([`PayeeBinding`]), rows 5.. the quantized
//! outputs, flattened in output order.

use std::sync::Arc;

use halo2_proofs::circuit::{Cell, Layouter, SimpleFloorPlanner, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Circuit, Column, ConstraintSystem, Error as PlonkError, Instance};

use crate::chips::dot::{DotChip, DotConfig, DotWitness};
use crate::chips::elementwise::{ElementwiseChip, ElementwiseConfig};
use crate::chips::function::{FunctionChip, FunctionConfig};
use crate::chips::poseidon::{self, CommitmentWitness, PoseidonChip, PoseidonConfig};
use crate::chips::range_table::RangeTableConfig;
use crate::chips::requant::{RequantChip, RequantConfig, RequantParams, RequantWitness};
use crate::chips::{
    fr_from_i128, fr_from_i64, DotInstructions, ElementwiseInstructions, PoseidonInstructions, QCell, RequantInstructions, RowCursor,
};
use crate::error::{Error, Result};
use crate::quant::{requant, QModel, Settings, StepKind, Trace, Visibility};

/// Rows kept free at the bottom for halo2's blinding factors.
pub const RESERVED_ROWS: usize = 16;

/// Minimum advice columns: the Poseidon state (13) plus its aux column.
pub const MIN_ADVICE: usize = poseidon::WIDTH + 1;

/// Rows a step occupies with `lanes` dot-product lanes.
pub fn step_rows(kind: &StepKind, lanes: usize) -> usize {
    match kind {
        StepKind::Linear { rows, k, n, .. } => rows * n.div_ceil(lanes) * (k + 1) + rows * n,
        StepKind::Elementwise { coeffs, .. } => 2 * coeffs.len(),
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

/// The commitment to quantized inputs with a salt: the Poseidon chain over
/// `[salt, x_0, …, x_{n-1}]` (design.md §1.2). A random salt makes it hiding.
pub fn salted_commitment(inputs: &[Vec<i64>], salt: Fr) -> Fr {
    poseidon::commit(&salted(inputs, salt))
}

fn salted(inputs: &[Vec<i64>], salt: Fr) -> Vec<Fr> {
    std::iter::once(salt).chain(inputs.iter().flatten().map(|&v| fr_from_i64(v))).collect()
}

/// Rows the whole model occupies (commitment, input range checks, binding, steps, the zero cell).
pub fn model_rows(model: &QModel, lanes: usize) -> usize {
    let n_in: usize = model.input_sizes().iter().sum();
    let steps: usize = model
        .steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::Relu { .. } => model.tensors[s.output].numel(),
            // a rescale row to the table's input scale, then a lookup row
            StepKind::Function { .. } => 2 * model.tensors[s.output].numel(),
            // products, one single-lane dot group per output, one rescale per output
            StepKind::DotPairs { width, .. } => {
                let rows = model.tensors[s.output].numel();
                rows * width + rows * (width + 1) + rows
            }
            other => step_rows(other, lanes),
        })
        .sum();
    // The zero cell: padding reads it, and so does `y` of an elementwise step without one.
    let zero = model.steps.iter().any(|s| match &s.kind {
        StepKind::View { index, .. } => index.iter().any(Option::is_none),
        StepKind::Elementwise { y, .. } => y.is_none(),
        _ => false,
    });
    let inputs = match model.settings.input_visibility {
        Visibility::Hashed => poseidon::commitment_rows(n_in + 1),
        Visibility::Public | Visibility::Private => n_in,
    };
    let n_out: usize = model.output_shapes().iter().map(|s| s.iter().product::<usize>()).sum();
    let outputs = if model.settings.output_visibility == Visibility::Hashed { poseidon::commitment_rows(n_out) } else { 0 };
    // The binding: its cells, then one square row per cell.
    let binding = 2 * BINDING_INSTANCES;
    inputs + n_in + binding + steps + usize::from(zero) + outputs
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
    zero_column: Column<halo2_proofs::plonk::Advice>,
    function: Option<FunctionConfig>,
}

/// The circuit for one quantized model and one input.
#[derive(Clone, Debug)]
pub struct ModelCircuit {
    model: Arc<QModel>,
    inputs: Vec<Vec<i64>>,
    /// The input commitment's salt (private; used when the input is hashed).
    salt: Fr,
    /// Who the proof pays (public).
    binding: PayeeBinding,
    /// A deliberately wrong witness, for negative tests only.
    #[cfg(test)]
    tamper: Option<tamper_tests::Tamper>,
}

impl ModelCircuit {
    /// A circuit for quantized inputs (use [`QModel::quantize_inputs`]), with a zero salt and
    /// an empty binding until [`Self::with_salt`] and [`Self::with_binding`] set them.
    pub fn new(model: Arc<QModel>, quantized_inputs: Vec<Vec<i64>>) -> Self {
        ModelCircuit {
            model,
            inputs: quantized_inputs,
            salt: Fr::zero(),
            binding: PayeeBinding::default(),
            #[cfg(test)]
            tamper: None,
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

    /// A circuit with an all-zero input, for key generation.
    pub fn for_keygen(model: Arc<QModel>) -> Self {
        let inputs = model.input_sizes().into_iter().map(|n| vec![0; n]).collect();
        Self::new(model, inputs)
    }

    /// The model.
    pub fn model(&self) -> &QModel {
        &self.model
    }

    /// Evaluates the model and returns the public instances.
    pub fn instances(&self) -> Result<Vec<Fr>> {
        let trace = self.model.eval_quantized(&self.inputs)?;
        Ok(public_instances(&self.model, &self.inputs, self.salt, &self.binding, &trace))
    }
}

/// The public instances for a quantized input and its trace: the input part (salted
/// commitment, values or nothing), the payee binding, then the output part (values or commitment).
pub fn public_instances(model: &QModel, inputs: &[Vec<i64>], salt: Fr, binding: &PayeeBinding, trace: &Trace) -> Vec<Fr> {
    let mut out = match model.settings.input_visibility {
        Visibility::Hashed => vec![salted_commitment(inputs, salt)],
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
        }
    }
}

impl Circuit<Fr> for ModelCircuit {
    type Config = ModelConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = Settings;

    fn without_witnesses(&self) -> Self {
        Self::for_keygen(self.model.clone())
    }

    fn params(&self) -> Settings {
        self.model.settings.clone()
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, s: Settings) -> ModelConfig {
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
        let requant = RequantChip::configure(
            meta,
            std::array::from_fn(|i| advice[i]),
            std::array::from_fn(|i| fixed[i]),
            table.clone(),
            (s.value_bits, s.lookup_bits),
        );
        let elementwise = ElementwiseChip::configure(meta, std::array::from_fn(|i| advice[i]), std::array::from_fn(|i| fixed[i]));
        // The function lookup exists only in circuits that use a function table.
        let function = (!s.function_tables.is_empty()).then(|| FunctionChip::configure(meta, advice[0], advice[1], fixed[0]));
        ModelConfig { dot, requant, elementwise, poseidon, table, instance, zero_column: advice[0], function }
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> ModelConfig {
        Self::configure_with_params(meta, Settings::default())
    }

    fn synthesize(&self, config: ModelConfig, mut layouter: impl Layouter<Fr>) -> std::result::Result<(), PlonkError> {
        config.table.load(&mut layouter)?;
        let function = config.function.clone().map(FunctionChip::construct);
        if let Some(f) = &function {
            f.load(&mut layouter, &self.model.settings.function_tables)?;
        }
        let model = &*self.model;
        let mut ly = Layout {
            cursor: RowCursor::new((1usize << model.settings.k).saturating_sub(RESERVED_ROWS)),
            dot: DotChip::construct(config.dot.clone()),
            requant: RequantChip::construct(config.requant.clone()),
            elementwise: ElementwiseChip::construct(config.elementwise.clone()),
            lanes: model.settings.dot_lanes,
            zero: None,
            zero_column: config.zero_column,
            zero_delta: self.tamper_at(Site::Zero).map_or(0, |(_, _, d)| d),
            tamper: None,
            acc_tamper: None,
        };
        let mut tensors: Vec<Option<Vec<QCell>>> = vec![None; model.tensors.len()];

        // The inputs (committed, public or private), then a range check of each input value.
        let flat: Vec<i64> = self.inputs.iter().flatten().copied().collect();
        let input_cells = self.assign_inputs(&config, &mut ly, &mut layouter, &flat)?;
        let mut next = 0;
        for (&id, values) in model.inputs.iter().zip(&self.inputs) {
            let cells = &input_cells[next..next + values.len()];
            let mut acc: Vec<i128> = values.iter().map(|&v| i128::from(v)).collect();
            // (negative tests: compute on x while the commitment holds x′)
            if let Some((_, element, delta)) = self.tamper_at(Site::Input) {
                if let Some(a) = element.checked_sub(next).and_then(|i| acc.get_mut(i)) {
                    *a += i128::from(delta);
                }
            }
            next += values.len();
            tensors[id] = Some(ly.requant(&mut layouter, cells, &acc, RequantParams { shift: 0, relu: false })?);
        }

        for (index, step) in model.steps.iter().enumerate() {
            let tamper = self.tamper_at(Site::Step(index));
            let aimed = |target: Target| tamper.filter(|t| t.0 == target).map(|(_, e, d)| (e, d));
            (ly.tamper, ly.acc_tamper) = (aimed(Target::Output), aimed(Target::Accumulator));
            // A step's operands, as the step reads them (the cells stay the producer's).
            let get = |id: usize| tensors[id].clone().ok_or(PlonkError::Synthesis);
            let first = |id: usize| shifted(get(id)?, aimed(Target::Operand));
            let second = |id: usize| shifted(get(id)?, aimed(Target::SecondOperand));
            let out = match &step.kind {
                StepKind::Linear { input, rows, k, n, weight, bias, shift } => {
                    ly.linear(&mut layouter, &first(*input)?, (*rows, *k, *n), weight, bias, *shift)?
                }
                StepKind::Elementwise { x, y, coeffs, shift } => {
                    let yv = y.map(second).transpose()?;
                    ly.elementwise(&mut layouter, &first(*x)?, yv.as_deref(), coeffs, *shift)?
                }
                StepKind::DotPairs { a, b, width, shift } => ly.dot_pairs(&mut layouter, &first(*a)?, &second(*b)?, *width, *shift)?,
                StepKind::Relu { input } => {
                    let x = first(*input)?;
                    let cells: Vec<_> = x.iter().map(|c| c.cell).collect();
                    let acc: Vec<i128> = x.iter().map(|c| i128::from(c.value)).collect();
                    ly.requant(&mut layouter, &cells, &acc, RequantParams { shift: 0, relu: true })?
                }
                StepKind::Function { input, spec } => {
                    // Rescale to the table's input scale (a rounding, range-checked), then look up.
                    let x = first(*input)?;
                    let acc: Vec<i128> = x.iter().map(|c| i128::from(c.value)).collect();
                    let cells: Vec<_> = x.iter().map(|c| c.cell).collect();
                    let shift = model.settings.scale_bits.checked_sub(spec.in_scale).ok_or(PlonkError::Synthesis)?;
                    let tamper = ly.tamper.take(); // aimed at the table output, not the rescale
                    let x = ly.requant(&mut layouter, &cells, &acc, RequantParams { shift, relu: false })?;
                    let chip = function.as_ref().ok_or(PlonkError::Synthesis)?;
                    let cells: Vec<_> = x.iter().map(|c| c.cell).collect();
                    let xs: Vec<i64> = x.iter().map(|c| c.value).collect();
                    // Outside the table there is no valid witness: `prove` reports that from the
                    // evaluation before proving; key generation (zero input) just needs some value.
                    let mut ys: Vec<i64> = xs.iter().map(|&v| spec.apply(v).unwrap_or(0)).collect();
                    if let Some((element, delta)) = tamper {
                        *ys.get_mut(element).ok_or(PlonkError::Synthesis)? += delta;
                    }
                    let off = ly.cursor.alloc(xs.len())?;
                    layouter.assign_region(|| "function", |mut region| chip.assign_rows(&mut region, off, &cells, spec.id, &xs, &ys))?
                }
                StepKind::View { input, index } => {
                    let x = get(*input)?;
                    let mut out = Vec::with_capacity(index.len());
                    for i in index {
                        out.push(match i {
                            Some(i) => x.get(*i).copied().ok_or(PlonkError::Synthesis)?,
                            None => ly.zero(&mut layouter)?,
                        });
                    }
                    out
                }
            };
            tensors[step.output] = Some(out);
        }

        let mut outputs = Vec::new();
        for &o in &model.outputs {
            outputs.extend(tensors[o].as_ref().ok_or(PlonkError::Synthesis)?.iter().copied());
        }
        #[cfg(test)]
        if let Some(t) = &self.tamper {
            *t.exposed.lock().map_err(|_| PlonkError::Synthesis)? = outputs.iter().map(|c| c.value).collect();
        }
        self.expose_binding(&config, &mut ly, &mut layouter)?;
        self.expose_outputs(&config, &mut ly, &mut layouter, &outputs)
    }
}

impl ModelCircuit {
    /// The deliberate witness error aimed at `site`, as (target, element, delta): negative
    /// tests only; always `None` outside them.
    fn tamper_at(&self, _site: Site) -> Option<(Target, usize, i64)> {
        #[cfg(test)]
        return self.tamper.as_ref().filter(|t| t.site == _site).map(|t| (t.target, t.element, t.delta));
        #[cfg(not(test))]
        None
    }

    /// Assigns the input values and exposes them as the settings say; returns their cells.
    fn assign_inputs(
        &self,
        config: &ModelConfig,
        ly: &mut Layout,
        layouter: &mut impl Layouter<Fr>,
        flat: &[i64],
    ) -> SynthResult<Vec<Cell>> {
        let visibility = self.model.settings.input_visibility;
        if visibility == Visibility::Hashed {
            // The salt is the chain's first element: a free private cell, read only by the hash.
            let values: Vec<Fr> = std::iter::once(self.salt).chain(flat.iter().map(|&v| fr_from_i64(v))).collect();
            let cw = CommitmentWitness::compute(&values);
            let off = ly.cursor.alloc(poseidon::commitment_rows(values.len()))?;
            let chip = PoseidonChip::construct(config.poseidon.clone());
            let (cells, digest) =
                layouter.assign_region(|| "input commitment", |mut region| chip.assign_commitment(&mut region, off, &cw))?;
            layouter.constrain_instance(digest, config.instance, 0);
            return Ok(cells[1..].to_vec());
        }
        let off = ly.cursor.alloc(flat.len())?;
        let col = config.zero_column;
        let cells: Vec<Cell> = layouter.assign_region(
            || "inputs",
            |mut region| {
                Ok(flat.iter().enumerate().map(|(i, &v)| region.assign_advice(col, off + i, Value::known(fr_from_i64(v))).cell()).collect())
            },
        )?;
        if visibility == Visibility::Public {
            for (i, c) in cells.iter().enumerate() {
                layouter.constrain_instance(*c, config.instance, i);
            }
        }
        Ok(cells)
    }

    /// Copies the payee binding from its instance rows into cells that a gate reads
    /// (each squared by the elementwise gate), so that no layout leaves a binding row unused.
    fn expose_binding(&self, config: &ModelConfig, ly: &mut Layout, layouter: &mut impl Layouter<Fr>) -> SynthResult<()> {
        let values = self.binding.values();
        let off = ly.cursor.alloc(2 * BINDING_INSTANCES)?;
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
                let off = ly.cursor.alloc(poseidon::commitment_rows(outputs.len()))?;
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

/// Synthesis state: the row cursor and the chips.
struct Layout {
    cursor: RowCursor,
    dot: DotChip,
    requant: RequantChip,
    elementwise: ElementwiseChip,
    lanes: usize,
    /// A cell fixed to 0, for zero padding (made on first use).
    zero: Option<QCell>,
    zero_column: halo2_proofs::plonk::Column<halo2_proofs::plonk::Advice>,
    /// The zero cell's value: 0, except in negative tests.
    zero_delta: i64,
    /// `(element, delta)`: the next rescale outputs `delta` more at `element` (negative tests;
    /// always `None` outside them).
    tamper: Option<(usize, i64)>,
    /// `(element, delta)`: the step's accumulator (dot sum, elementwise or product value) is
    /// `delta` more at `element`, and its rescale follows it (negative tests; else `None`).
    acc_tamper: Option<(usize, i64)>,
}

type SynthResult<T> = std::result::Result<T, PlonkError>;

/// Where a negative test puts its wrong witness value ([`ModelCircuit::tamper_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Site {
    /// A value computed on: the commitment (or the input cells) hold the honest one.
    Input,
    /// The shared constant-zero cell.
    Zero,
    /// The step with this index.
    Step(usize),
}

/// What of a step a negative test changes; every later value follows it honestly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The step's final rescale output (for a function step, the table output).
    Output,
    /// The value the step reads from its first operand, while the copy is of the producer's cell.
    Operand,
    /// The same for the second operand.
    SecondOperand,
    /// The value before the rescale: a dot sum, an elementwise result or a product.
    Accumulator,
}

/// `cells` with the value at `element` shifted by `delta` (a negative test's wrong read).
fn shifted(mut cells: Vec<QCell>, tamper: Option<(usize, i64)>) -> SynthResult<Vec<QCell>> {
    if let Some((element, delta)) = tamper {
        cells.get_mut(element).ok_or(PlonkError::Synthesis)?.value += delta;
    }
    Ok(cells)
}

impl Layout {
    /// The shared constant-zero cell (one row, made on first use).
    fn zero(&mut self, layouter: &mut impl Layouter<Fr>) -> SynthResult<QCell> {
        if let Some(z) = self.zero {
            return Ok(z);
        }
        let off = self.cursor.alloc(1)?;
        let (col, value) = (self.zero_column, self.zero_delta);
        let cell = layouter.assign_region(
            || "zero",
            |mut region| {
                let cell = region.assign_advice(col, off, Value::known(fr_from_i64(value))).cell();
                region.constrain_constant(cell, Fr::zero())?;
                Ok(cell)
            },
        )?;
        let z = QCell { cell, value };
        self.zero = Some(z);
        Ok(z)
    }

    /// Rescales accumulators (`acc[i]` is the value in `cells[i]`) in one region.
    fn requant(
        &mut self,
        layouter: &mut impl Layouter<Fr>,
        cells: &[halo2_proofs::circuit::Cell],
        acc: &[i128],
        params: RequantParams,
    ) -> SynthResult<Vec<QCell>> {
        let (v, l) = (self.requant.value_bits(), self.requant.lookup_bits());
        let mut witness: Vec<RequantWitness> = acc
            .iter()
            .map(|&a| requant(a, params.shift, params.relu, v).map(|r| RequantWitness::new(r, l)).ok_or(PlonkError::Synthesis))
            .collect::<SynthResult<_>>()?;
        if let Some((element, delta)) = self.tamper.take() {
            let w = witness.get_mut(element).ok_or(PlonkError::Synthesis)?;
            w.y += fr_from_i64(delta);
            w.y_int += delta;
        }
        let off = self.cursor.alloc(cells.len())?;
        let chip = &self.requant;
        layouter.assign_region(|| "requant", |mut region| chip.assign_rows(&mut region, off, cells, params, &witness))
    }

    fn linear(
        &mut self,
        layouter: &mut impl Layouter<Fr>,
        x: &[QCell],
        (rows, k, n): (usize, usize, usize),
        weight: &[i64],
        bias: &[i64],
        shift: u32,
    ) -> SynthResult<Vec<QCell>> {
        let mut acc_cells = Vec::with_capacity(rows * n);
        let mut acc_values = Vec::with_capacity(rows * n);
        for m in 0..rows {
            let xs = &x[m * k..(m + 1) * k];
            let x_fr: Vec<Fr> = xs.iter().map(|c| fr_from_i64(c.value)).collect();
            for start in (0..n).step_by(self.lanes) {
                let lanes: Vec<usize> = (start..n.min(start + self.lanes)).collect();
                let weights: Vec<Vec<Fr>> = lanes
                    .iter()
                    .map(|&j| std::iter::once(bias[m * n + j]).chain((0..k).map(|i| weight[i * n + j])).map(fr_from_i64).collect())
                    .collect();
                for &j in &lanes {
                    let dot = xs
                        .iter()
                        .enumerate()
                        .fold(i128::from(bias[m * n + j]), |s, (i, c)| s + i128::from(c.value) * i128::from(weight[i * n + j]));
                    acc_values.push(dot);
                }
                let mut witness = DotWitness::compute(&x_fr, &weights);
                if let Some((element, delta)) = self.acc_tamper.filter(|t| (m * n + start..m * n + start + lanes.len()).contains(&t.0)) {
                    let sum = witness.acc[element - m * n - start].last_mut().ok_or(PlonkError::Synthesis)?;
                    *sum += fr_from_i64(delta);
                    acc_values[element] += i128::from(delta);
                }
                let off = self.cursor.alloc(k + 1)?;
                let chip = &self.dot;
                let cells = layouter.assign_region(|| "dot", |mut region| chip.assign_group(&mut region, off, xs, &weights, &witness))?;
                acc_cells.extend(cells);
            }
        }
        self.requant(layouter, &acc_cells, &acc_values, RequantParams { shift, relu: false })
    }

    /// Products `a·b` (exact, not rescaled), summed per row by single-lane dot groups with
    /// weights 1, then rescaled once by `2^shift`.
    fn dot_pairs(
        &mut self,
        layouter: &mut impl Layouter<Fr>,
        a: &[QCell],
        b: &[QCell],
        width: usize,
        shift: u32,
    ) -> SynthResult<Vec<QCell>> {
        // (Activations of more than 31 bits could overflow a product: no witness, not a wrong one.)
        let mut z: Vec<i64> =
            a.iter().zip(b).map(|(x, y)| x.value.checked_mul(y.value).ok_or(PlonkError::Synthesis)).collect::<SynthResult<_>>()?;
        if let Some((element, delta)) = self.acc_tamper.take() {
            *z.get_mut(element).ok_or(PlonkError::Synthesis)? += delta;
        }
        let z_fr: Vec<Fr> = z.iter().map(|&v| fr_from_i64(v)).collect();
        let coeffs_fr = vec![[0i64, 0, 1, 0].map(fr_from_i64); a.len()];
        let off = self.cursor.alloc(a.len())?;
        let chip = &self.elementwise;
        let cells = layouter.assign_region(|| "products", |mut region| chip.assign_rows(&mut region, off, a, b, &coeffs_fr, &z_fr))?;
        let products: Vec<QCell> = cells.into_iter().zip(&z).map(|(cell, &value)| QCell { cell, value }).collect();
        let ones = vec![std::iter::once(Fr::zero()).chain(std::iter::repeat_n(Fr::one(), width)).collect::<Vec<_>>()];
        let (mut acc_cells, mut acc_values) = (Vec::new(), Vec::new());
        for row in products.chunks(width) {
            let xs: Vec<Fr> = row.iter().map(|c| fr_from_i64(c.value)).collect();
            let witness = DotWitness::compute(&xs, &ones);
            let off = self.cursor.alloc(width + 1)?;
            let chip = &self.dot;
            acc_cells
                .extend(layouter.assign_region(|| "dot pairs", |mut region| chip.assign_group(&mut region, off, row, &ones, &witness))?);
            acc_values.push(row.iter().map(|c| i128::from(c.value)).sum::<i128>());
        }
        self.requant(layouter, &acc_cells, &acc_values, RequantParams { shift, relu: false })
    }

    fn elementwise(
        &mut self,
        layouter: &mut impl Layouter<Fr>,
        x: &[QCell],
        y: Option<&[QCell]>,
        coeffs: &[[i64; 4]],
        shift: u32,
    ) -> SynthResult<Vec<QCell>> {
        let mut z: Vec<i128> = coeffs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (xv, yv) = (i128::from(x[i].value), y.map_or(0, |y| i128::from(y[i].value)));
                i128::from(c[0]) * xv + i128::from(c[1]) * yv + i128::from(c[2]) * xv * yv + i128::from(c[3])
            })
            .collect();
        if let Some((element, delta)) = self.acc_tamper.take() {
            *z.get_mut(element).ok_or(PlonkError::Synthesis)? += i128::from(delta);
        }
        let coeffs_fr: Vec<[Fr; 4]> = coeffs.iter().map(|c| c.map(fr_from_i64)).collect();
        let z_fr: Vec<Fr> = z.iter().map(|&v| fr_from_i128(v)).collect();
        // Without a second operand, `y` is copied from the zero cell, so it is never free.
        let zeros;
        let y = match y {
            Some(y) => y,
            None => {
                zeros = vec![self.zero(layouter)?; x.len()];
                &zeros
            }
        };
        let off = self.cursor.alloc(x.len())?;
        let chip = &self.elementwise;
        let cells = layouter.assign_region(|| "elementwise", |mut region| chip.assign_rows(&mut region, off, x, y, &coeffs_fr, &z_fr))?;
        self.requant(layouter, &cells, &z, RequantParams { shift, relu: false })
    }
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
