//! The audit on a small model: no survivor in the honest circuit, and survivors at exactly the
//! wire or the range check that a deliberately broken circuit variant lacks.

use std::sync::Arc;

use super::{audit, Options, Report};
use crate::circuit::{Faults, ModelCircuit};
use crate::compile::{compile, CompileOptions};
use crate::data::InputData;
use crate::error::Error;
use crate::quant::{Mutation, StepKind};

fn tiny() -> ModelCircuit {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tiny");
    let read = |f: &str| InputData::from_json(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap().input_data;
    let onnx = std::fs::read(dir.join("model.onnx")).unwrap();
    let model = Arc::new(compile(&onnx, Some(&read("calibration.json")), &CompileOptions::default()).unwrap().model);
    ModelCircuit::new(model.clone(), model.quantize_inputs(&read("input.json")).unwrap()).unwrap()
}

fn run(circuit: &ModelCircuit, budget: usize) -> Report {
    audit(circuit, &Options { budget, seed: 7 }, &|_, _, _| {}).unwrap()
}

#[test]
fn the_honest_circuit_has_no_survivor_and_every_chip_kind_is_exercised() {
    let report = run(&tiny(), 400);
    assert!(report.outcomes.len() >= 400, "{} mutants", report.outcomes.len());
    let survivors: Vec<_> = report.survivors().collect();
    assert!(survivors.is_empty(), "survivors: {survivors:#?}");
    let tally = report.by_chip();
    for chip in ["permutation", "dot", "requant", "elementwise", "poseidon"] {
        assert!(tally.get(chip).is_some_and(|t| t.made > 0), "no {chip} mutant: {tally:?}");
    }
    assert!(tally["permutation"].caught_by.keys().all(|k| k == "permutation"), "{:?}", tally["permutation"]);
}

/// With the copy between two layers cut, the wrong read there survives, and nothing else.
#[test]
fn a_cut_wire_leaves_exactly_its_wrong_read_alive() {
    // One more row bit: the cut wire's fresh cells need rows of their own.
    let mut model = tiny().model().clone();
    model.settings.k += 1;
    let model = Arc::new(model);
    let honest = tiny();
    let mut circuit = ModelCircuit::new(model.clone(), honest.inputs.clone()).unwrap();
    let step = model.steps.iter().rposition(|s| matches!(s.kind, StepKind::Linear { .. })).expect("a linear step");
    circuit.faults = Faults { unwired: Some((step, 0)), ..Faults::default() };
    let report = run(&circuit, 200);
    let survivors: Vec<_> = report.survivors().collect();
    assert_eq!(survivors.len(), 1, "{survivors:#?}");
    let s = survivors[0];
    assert_eq!(s.chip, "permutation");
    assert!(s.mutant.starts_with(&format!("Read {{ step: {step}, operand: 0,")), "{}", s.mutant);
    let at = s.location.as_ref().expect("a survivor's location");
    assert_eq!((at.region, at.node.as_deref()), ("unwired", Some(circuit.model().steps[step].node.as_str())));
}

/// With the rescale's remainder range check gone, exactly the shifted quotients survive.
#[test]
fn a_missing_range_check_leaves_exactly_the_shifted_quotients_alive() {
    let mut circuit = tiny();
    circuit.faults = Faults { unchecked_remainder: true, ..Faults::default() };
    let report = run(&circuit, 200);
    let quotients = report.outcomes.iter().filter(|o| o.mutant.starts_with("Quotient")).count();
    let survivors: Vec<_> = report.survivors().collect();
    assert!(quotients > 0 && survivors.len() == quotients, "{quotients} quotient mutants; survivors {survivors:#?}");
    // Rescale rows: their own regions, and the rows they share with elementwise, function and input cells.
    let rescale_rows = ["requant", "elementwise", "function", "inputs"];
    assert!(
        survivors.iter().all(|s| s.chip == "requant" && s.location.as_ref().is_some_and(|l| rescale_rows.contains(&l.region))),
        "{survivors:#?}"
    );
}

/// A mutation that names a step, an operand or an element the model lacks is refused, never
/// silently a no-op (which would pass as a survivor or hide one).
#[test]
fn a_mutation_of_something_that_does_not_exist_is_refused() {
    let circuit = tiny();
    let steps = circuit.model().steps.len();
    let n_in: usize = circuit.model().input_sizes().iter().sum();
    let relu = circuit.model().steps.iter().position(|s| matches!(s.kind, StepKind::Relu { .. })).expect("a ReLU step");
    for m in [
        Mutation::Output { step: steps, element: 0, delta: 1 },
        Mutation::Output { step: 0, element: usize::MAX, delta: 1 },
        Mutation::Read { step: 0, operand: 0, element: usize::MAX, delta: 1 },
        Mutation::Input { element: n_in, delta: 1 },
        Mutation::Read { step: relu, operand: 1, element: 0, delta: 1 },
        Mutation::Accumulator { step: relu, element: 0, delta: 1 },
    ] {
        assert!(matches!(circuit.clone().with_mutation(m), Err(Error::NoSuchMutationTarget(_))), "{m:?}");
    }
}

/// A circuit with matrix products checked by a challenge: single cells are drawn in the second
/// phase's columns too, located in its regions, and each is caught by a Freivalds gate.
#[test]
fn single_cells_of_the_second_phase_are_drawn_and_caught() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cnn");
    let read = |f: &str| InputData::from_json(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap().input_data;
    let onnx = std::fs::read(dir.join("model.onnx")).unwrap();
    let model = Arc::new(compile(&onnx, Some(&read("calibration.json")), &CompileOptions::default()).unwrap().model);
    assert!(model.settings.challenge_advice > 0, "the CNN's convolutions are checked by default");
    let circuit = ModelCircuit::new(model.clone(), model.quantize_inputs(&read("input.json")).unwrap()).unwrap();
    let report = run(&circuit, 600);
    assert!(report.survivors().next().is_none(), "{:#?}", report.survivors().collect::<Vec<_>>());
    let first_phase = ModelCircuit::advice_columns(&model.settings).len();
    let second: Vec<_> = report.outcomes.iter().filter(|o| o.mutant.starts_with("cell freivalds")).collect();
    assert!(!second.is_empty(), "no second-phase cell drawn");
    for o in &second {
        let at = o.location.as_ref().unwrap();
        assert!(at.column >= first_phase && o.chip == "freivalds", "{o:?}");
        assert!(o.caught_by.iter().any(|c| c.contains("freivalds") || c == "permutation"), "{o:?}");
    }
    // And no first-phase cell is placed in a second-phase region, or the other way round.
    assert!(report.outcomes.iter().filter_map(|o| o.location.as_ref()).all(|l| (l.region == "freivalds") == (l.column >= first_phase)));
}
