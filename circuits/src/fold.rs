//! Graph rewrites that fold constant affine maps into the preceding linear layer.
//!
//! A BatchNormalization (or any `· c` / `+ d` with a constant) after a Conv or Gemm is, in
//! float, part of that layer: `(x·W + b)·c + d = x·(W·c) + (b·c + d)` when `c` is the same
//! for every row of an output column. Folding it removes two elementwise steps, two
//! rescales and their rounding from the circuit.

use crate::ir::{BinaryKind, ConstTensor, Graph, Op, Operand, TensorId};

/// How many nodes read each tensor (a graph output counts as a reader).
fn readers(graph: &Graph) -> Vec<usize> {
    let mut count = vec![0usize; graph.tensors.len()];
    for node in &graph.nodes {
        for t in op_inputs(&node.op) {
            count[t] += 1;
        }
    }
    for &o in &graph.outputs {
        count[o] += 1;
    }
    count
}

/// The activations an op reads.
pub fn op_inputs(op: &Op) -> Vec<TensorId> {
    let operand = |o: &Operand| match o {
        Operand::Tensor(t) => Some(*t),
        Operand::Const(_) => None,
    };
    match op {
        Op::Linear { input, .. } | Op::Relu { input } | Op::Function { input, .. } | Op::View { input, .. } | Op::Table { input, .. } => {
            vec![*input]
        }
        Op::Binary { a, b, .. } => operand(a).into_iter().chain(operand(b)).collect(),
        Op::DotPairs { a, b, .. } => vec![*a, *b],
    }
}

/// A constant affine step `t ∘ c` on an activation, with the constant already broadcast.
fn affine_operands(op: &Op, numel: usize) -> Option<(BinaryKind, TensorId, &ConstTensor)> {
    let Op::Binary { kind, a, b } = op else { return None };
    let (t, c) = match (a, b) {
        (Operand::Tensor(t), Operand::Const(c)) => (*t, c),
        (Operand::Const(c), Operand::Tensor(t)) if *kind != BinaryKind::Sub => (*t, c),
        _ => return None,
    };
    (c.len() == numel).then_some((*kind, t, c))
}

/// Walks back from `t` through single-reader Views to a single-reader Linear. Returns the
/// Linear's node index and, for each element of `t`, the Linear output element it is.
fn linear_source(graph: &Graph, producer: &[Option<usize>], readers: &[usize], t: TensorId) -> Option<(usize, Vec<usize>)> {
    let mut map: Vec<usize> = (0..graph.tensors[t].numel()).collect();
    let mut cur = t;
    loop {
        if readers[cur] != 1 {
            return None;
        }
        let node = producer[cur]?;
        match &graph.nodes[node].op {
            Op::Linear { .. } => break Some((node, map)),
            Op::View { input, index } => {
                map = map.iter().map(|&i| index[i]).collect::<Option<Vec<usize>>>()?;
                cur = *input;
            }
            _ => return None,
        }
    }
}

/// Folds `c` into the Linear at `node`, where element `i` of the affine step's input is
/// the Linear's output element `map[i]`. Returns false (and changes nothing) when it cannot.
fn fold_into(graph: &mut Graph, node: usize, map: &[usize], kind: BinaryKind, c: &ConstTensor) -> bool {
    let Op::Linear { weight, bias, input } = &mut graph.nodes[node].op else { return false };
    let (k, n) = (weight.shape[0], weight.shape[1]);
    let rows = graph.tensors[*input].numel() / k;
    // Every Linear output must be read exactly once, or one constant would apply twice.
    let mut per_output: Vec<Option<f64>> = vec![None; rows * n];
    for (i, &q) in map.iter().enumerate() {
        if per_output[q].replace(c.data[i]).is_some() {
            return false;
        }
    }
    let Some(per_output) = per_output.into_iter().collect::<Option<Vec<f64>>>() else { return false };
    let bias = bias.get_or_insert_with(|| ConstTensor { shape: vec![rows, n], data: vec![0.0; rows * n] });
    match kind {
        BinaryKind::Add => bias.data.iter_mut().zip(&per_output).for_each(|(b, d)| *b += d),
        BinaryKind::Sub => bias.data.iter_mut().zip(&per_output).for_each(|(b, d)| *b -= d),
        BinaryKind::Mul => {
            // The weights are shared by all rows: the multiplier must be one per column.
            let column: Vec<f64> = per_output[..n].to_vec();
            if per_output.chunks(n).any(|row| row != column.as_slice()) {
                return false;
            }
            for (i, w) in weight.data.iter_mut().enumerate() {
                *w *= column[i % n];
            }
            bias.data.iter_mut().zip(&per_output).for_each(|(b, m)| *b *= m);
        }
    }
    true
}

/// Folds constant `·`, `+` and `−` steps into the Linear (Conv, Gemm, MatMul by a constant)
/// that feeds them, through any Views in between. A folded step becomes an identity View,
/// which costs nothing in the circuit. Returns how many steps were folded.
pub fn fold_affine_into_linear(graph: &mut Graph) -> usize {
    let mut folded = 0;
    for j in 0..graph.nodes.len() {
        let mut producer = vec![None; graph.tensors.len()];
        for (i, node) in graph.nodes.iter().enumerate() {
            producer[node.output] = Some(i);
        }
        let numel = graph.tensors[graph.nodes[j].output].numel();
        let Some((kind, t, c)) = affine_operands(&graph.nodes[j].op, numel) else { continue };
        let c = c.clone();
        let Some((lin, map)) = linear_source(graph, &producer, &readers(graph), t) else { continue };
        if fold_into(graph, lin, &map, kind, &c) {
            graph.nodes[j].op = Op::View { input: t, index: (0..numel).map(Some).collect() };
            folded += 1;
        }
    }
    folded
}

/// Rewrites every activation an op reads through `map`.
fn remap_inputs(op: &mut Op, map: &[Option<TensorId>]) -> Option<()> {
    let operand = |o: &mut Operand| -> Option<()> {
        if let Operand::Tensor(t) = o {
            *t = map[*t]?;
        }
        Some(())
    };
    match op {
        Op::Linear { input, .. } | Op::Relu { input } | Op::Function { input, .. } | Op::View { input, .. } | Op::Table { input, .. } => {
            *input = map[*input]?
        }
        Op::Binary { a, b, .. } => {
            operand(a)?;
            operand(b)?;
        }
        Op::DotPairs { a, b, .. } => {
            *a = map[*a]?;
            *b = map[*b]?;
        }
    }
    Some(())
}

/// Removes the nodes no output depends on (and their tensors), renumbering the rest; the
/// inputs stay, read or not. Returns how many nodes were removed.
pub fn prune_unread(graph: &mut Graph) -> usize {
    let mut live = vec![false; graph.tensors.len()];
    graph.outputs.iter().chain(&graph.inputs).for_each(|&t| live[t] = true);
    for node in graph.nodes.iter().rev() {
        if live[node.output] {
            op_inputs(&node.op).into_iter().for_each(|t| live[t] = true);
        }
    }
    let before = graph.nodes.len();
    if live.iter().all(|&l| l) {
        return 0;
    }
    let mut map = vec![None; graph.tensors.len()];
    let mut next = 0;
    for (t, &l) in live.iter().enumerate() {
        if l {
            map[t] = Some(next);
            next += 1;
        }
    }
    // Every tensor a live node reads is live, so every lookup succeeds; were one to fail, the
    // graph stays as it was.
    let renumbered = (|| -> Option<(Vec<crate::ir::Node>, Vec<TensorId>, Vec<TensorId>)> {
        let mut nodes = Vec::new();
        for node in graph.nodes.iter().filter(|n| live[n.output]) {
            let mut node = node.clone();
            remap_inputs(&mut node.op, &map)?;
            node.output = map[node.output]?;
            nodes.push(node);
        }
        let inputs = graph.inputs.iter().map(|&t| map[t]).collect::<Option<_>>()?;
        let outputs = graph.outputs.iter().map(|&t| map[t]).collect::<Option<_>>()?;
        Some((nodes, inputs, outputs))
    })();
    let Some((nodes, inputs, outputs)) = renumbered else { return 0 };
    let tensors = std::mem::take(&mut graph.tensors);
    graph.tensors = tensors.into_iter().zip(&live).filter_map(|(t, &l)| l.then_some(t)).collect();
    (graph.nodes, graph.inputs, graph.outputs) = (nodes, inputs, outputs);
    before - graph.nodes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Node, TensorInfo};

    fn node(name: &str, op: Op, output: TensorId) -> Node {
        Node { name: name.into(), op_type: "test".into(), op, output }
    }

    /// x[2,2] → Linear(W, b) → Mul c → Add d, as a BatchNormalization after a Gemm.
    fn graph(mul: Vec<f64>) -> Graph {
        let info = |name: &str| TensorInfo { name: name.into(), shape: vec![2, 2] };
        let weight = ConstTensor { shape: vec![2, 2], data: vec![1.0, -2.0, 0.5, 3.0] };
        let bias = Some(ConstTensor { shape: vec![2, 2], data: vec![0.1, 0.2, 0.1, 0.2] });
        let c = |data: Vec<f64>| Operand::Const(ConstTensor { shape: vec![2, 2], data });
        Graph {
            tensors: vec![info("x"), info("lin"), info("mul"), info("add")],
            inputs: vec![0],
            outputs: vec![3],
            nodes: vec![
                node("lin", Op::Linear { input: 0, weight, bias }, 1),
                node("mul", Op::Binary { kind: BinaryKind::Mul, a: Operand::Tensor(1), b: c(mul) }, 2),
                node("add", Op::Binary { kind: BinaryKind::Add, a: Operand::Tensor(2), b: c(vec![1.0, -1.0, 1.0, -1.0]) }, 3),
            ],
        }
    }

    #[test]
    fn per_column_affine_folds_and_keeps_values() {
        let mut g = graph(vec![2.0, 0.5, 2.0, 0.5]);
        let before = g.eval_f64(&[vec![0.3, -0.7, 1.1, 0.4]]).unwrap();
        assert_eq!(fold_affine_into_linear(&mut g), 2);
        assert!(g.nodes[1..].iter().all(|n| matches!(n.op, Op::View { .. })));
        let after = g.eval_f64(&[vec![0.3, -0.7, 1.1, 0.4]]).unwrap();
        for (a, b) in before[3].iter().zip(&after[3]) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn per_row_multiplier_is_not_folded() {
        // Rows would need different weights: folding would be wrong, so the Mul stays.
        let mut g = graph(vec![2.0, 2.0, 0.5, 0.5]);
        // The Add after it reads the Mul, not the Linear, so it stays too.
        assert_eq!(fold_affine_into_linear(&mut g), 0);
        assert!(matches!(g.nodes[1].op, Op::Binary { kind: BinaryKind::Mul, .. }));
    }

    #[test]
    fn unread_nodes_are_pruned_and_the_rest_renumbered() {
        // x → lin → mul → add (output), plus an unread Relu of lin.
        let mut g = graph(vec![2.0, 0.5, 2.0, 0.5]);
        g.tensors.insert(2, TensorInfo { name: "dead".into(), shape: vec![2, 2] });
        for n in &mut g.nodes[1..] {
            n.output += 1;
        }
        if let Op::Binary { a: Operand::Tensor(t), .. } = &mut g.nodes[2].op {
            *t += 1;
        }
        g.outputs = vec![4];
        g.nodes.insert(1, node("dead", Op::Relu { input: 1 }, 2));
        let x = vec![0.3, -0.7, 1.1, 0.4];
        let before = g.eval_f64(std::slice::from_ref(&x)).unwrap()[4].clone();
        assert_eq!(prune_unread(&mut g), 1);
        assert_eq!(g.tensors.len(), 4);
        assert!(g.nodes.iter().all(|n| n.name != "dead"));
        assert_eq!(g.outputs, vec![3]);
        assert_eq!(g.eval_f64(&[x]).unwrap()[3], before);
        assert_eq!(prune_unread(&mut g), 0);
    }

    #[test]
    fn a_second_reader_blocks_folding() {
        let mut g = graph(vec![2.0, 0.5, 2.0, 0.5]);
        g.outputs.push(1); // the Linear output is also a model output
        assert_eq!(fold_affine_into_linear(&mut g), 0);
    }
}
