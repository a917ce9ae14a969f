#!/usr/bin/env bash
# Batch settlement end to end on anvil (tests/aggregation.rs): N proofs of the tiny example, each
# bound to its own job and payee, folded by `zkinfer aggregate`, verified by the generated
# aggregation verifier and settled by one `submitBatch`, balances to the wei; it prints the
# aggregation's time, memory, proof bytes and gas. Minutes and gigabytes: not part of
# scripts/test.sh.
#
#   scripts/aggregation.sh [N] [K] [FAN_IN] [LEAF_K]   (defaults: 2 22 2 20; N > FAN_IN makes a
#   tree whose leaves fold FAN_IN proofs at LEAF_K, under a top circuit at K)
# ZKINFER_AGG_SRS=FILE passes an SRS file (at least 2^K points) instead of generating the
# development SRS each run (about 30 s at K = 22, 60 s at K = 23). ZKINFER_AGG_MODEL=examples/mlp proves
# another example (default examples/tiny). ZKINFER_AGG_FIXTURE=DIR writes tests/wrapped_settlement.rs's
# fixture (run with examples/mlp, N = 1, K = 23).
set -euo pipefail
cd "$(dirname "$0")/.."
export ZKINFER_AGG_N="${1:-2}" ZKINFER_AGG_K="${2:-22}" ZKINFER_AGG_FAN_IN="${3:-2}" ZKINFER_AGG_LEAF_K="${4:-20}"
# The figures, for papers/benchmarks.md and benches/plots.py (aggregation_gas.svg).
export ZKINFER_AGG_REPORT="${ZKINFER_AGG_REPORT:-$PWD/target/aggregation}"
exec cargo test --release -p zkinfer --test aggregation -- --ignored --nocapture
