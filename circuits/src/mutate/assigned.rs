//! Which advice cells a synthesis assigns. MockProver starts every advice cell at 0 and cannot
//! tell an assigned cell from an untouched one, so an audit records the assignments itself,
//! with an [`Assignment`] that keeps only their positions.

use std::collections::HashSet;

use halo2_proofs::circuit::{SimpleFloorPlanner, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{
    Advice, Any, Assigned, Assignment, Challenge, Circuit, Column, ConstraintSystem, Error as PlonkError, Fixed, FloorPlanner, Instance,
    Selector,
};

use crate::circuit::ModelCircuit;
use crate::error::{Error, Result};

#[derive(Default)]
struct Recorder {
    cells: HashSet<(usize, usize)>,
}

impl Assignment<Fr> for Recorder {
    fn enter_region<NR: Into<String>, N: FnOnce() -> NR>(&mut self, _: N) {}
    fn annotate_column<A: FnOnce() -> AR, AR: Into<String>>(&mut self, _: A, _: Column<Any>) {}
    fn exit_region(&mut self) {}
    fn enable_selector<A: FnOnce() -> AR, AR: Into<String>>(
        &mut self,
        _: A,
        _: &Selector,
        _: usize,
    ) -> std::result::Result<(), PlonkError> {
        Ok(())
    }
    fn query_instance(&self, _: Column<Instance>, _: usize) -> std::result::Result<Value<Fr>, PlonkError> {
        Ok(Value::unknown())
    }
    fn assign_advice<'v>(&mut self, column: Column<Advice>, row: usize, _: Value<Assigned<Fr>>) -> Value<&'v Assigned<Fr>> {
        self.cells.insert((column.index(), row));
        Value::unknown()
    }
    fn assign_fixed(&mut self, _: Column<Fixed>, _: usize, _: Assigned<Fr>) {}
    fn copy(&mut self, _: Column<Any>, _: usize, _: Column<Any>, _: usize) {}
    fn fill_from_row(&mut self, _: Column<Fixed>, _: usize, _: Value<Assigned<Fr>>) -> std::result::Result<(), PlonkError> {
        Ok(())
    }
    fn get_challenge(&self, _: Challenge) -> Value<Fr> {
        Value::unknown()
    }
    fn push_namespace<NR: Into<String>, N: FnOnce() -> NR>(&mut self, _: N) {}
    fn pop_namespace(&mut self, _: Option<String>) {}
}

/// The `(advice column index, row)` of every advice cell the circuit assigns.
pub(super) fn assigned_cells(circuit: &ModelCircuit) -> Result<HashSet<(usize, usize)>> {
    let mut meta = ConstraintSystem::default();
    let config = ModelCircuit::configure_with_params(&mut meta, circuit.params());
    let mut recorder = Recorder::default();
    SimpleFloorPlanner::synthesize(&mut recorder, circuit, config, meta.constants().clone())
        .map_err(|e| Error::HonestWitnessRejected { failures: format!("synthesis failed: {e:?}") })?;
    Ok(recorder.cells)
}
