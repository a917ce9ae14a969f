//! Deliberately wrong witnesses, for audits of the circuit's constraints (`zkinfer mutate` and
//! the negative tests). A mutation changes one value; the evaluation recomputes everything
//! after it honestly, up to the outputs that the public instances then claim, so that only
//! the constraint that binds the changed value can reject it. Proving never uses one.

use serde::Serialize;

/// One wrong witness value (every later value follows it honestly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Mutation {
    /// Step `step` reads `delta` more at `element` of its operand `operand` (0 or 1) than its
    /// producer's cell holds, and computes on that: only the copy between them binds it.
    Read {
        /// The reading step.
        step: usize,
        /// Which operand (0: the first; 1: the second).
        operand: usize,
        /// The element read.
        element: usize,
        /// The change.
        delta: i64,
    },
    /// The model computes on input `element` (flattened over the inputs) shifted by `delta`,
    /// while the commitment (or the public input) holds the honest value.
    Input {
        /// The element, flattened over every input.
        element: usize,
        /// The change.
        delta: i64,
    },
    /// The shared zero cell (padding, and the missing second operand) holds `delta`.
    Zero {
        /// The value of the cell.
        delta: i64,
    },
    /// The step's accumulator (a dot sum, an elementwise value or a product of a pair) is
    /// `delta` more at `element`, and its rescale follows it.
    Accumulator {
        /// The step.
        step: usize,
        /// The element (for a product of two activations: the product's index).
        element: usize,
        /// The change.
        delta: i64,
    },
    /// The step's output is `delta` more at `element` than its rescale (or table) gives.
    Output {
        /// The step.
        step: usize,
        /// The element.
        element: usize,
        /// The change.
        delta: i64,
    },
    /// The rescale's quotient is `delta` more at `element` and its remainder `delta·2^shift`
    /// less: the rounding identity still holds, only the remainder's range check binds it.
    Quotient {
        /// The step (for a function: its rescale to the table's scale).
        step: usize,
        /// The element.
        element: usize,
        /// The change.
        delta: i64,
    },
}

impl Mutation {
    /// The step the mutation changes, if it is a step's.
    pub fn step(&self) -> Option<usize> {
        match *self {
            Mutation::Read { step, .. }
            | Mutation::Accumulator { step, .. }
            | Mutation::Output { step, .. }
            | Mutation::Quotient { step, .. } => Some(step),
            Mutation::Input { .. } | Mutation::Zero { .. } => None,
        }
    }

    /// The same mutation with the opposite change.
    pub fn negated(mut self) -> Self {
        match &mut self {
            Mutation::Read { delta, .. }
            | Mutation::Input { delta, .. }
            | Mutation::Zero { delta }
            | Mutation::Accumulator { delta, .. }
            | Mutation::Output { delta, .. }
            | Mutation::Quotient { delta, .. } => *delta = -*delta,
        }
        self
    }

    /// `delta` at `element` of operand `operand` of `step`, if this mutation is that read.
    pub(crate) fn read_at(&self, at_step: usize, at_operand: usize) -> Option<(usize, i64)> {
        match *self {
            Mutation::Read { step, operand, element, delta } if step == at_step && operand == at_operand => Some((element, delta)),
            _ => None,
        }
    }
}
