#!/usr/bin/env bash
# Prove one model with two zkinfer binaries in one run, alternating, to compare layouts or
# builds on the same machine and hour (papers/benchmarks.md, issue #17's before/after).
#
#   benches/ab_prove.sh MODEL_DIR BEFORE_BIN BEFORE_FLAGS AFTER_BIN AFTER_FLAGS [ROUNDS]
#   e.g. benches/ab_prove.sh examples/transformer /tmp/zkinfer-621bd9a "--matmul direct" target/debug/zkinfer "" 2
#
# Each round compiles, sets up (--dev-srs) and proves twice with each binary; prints k, rows,
# advice cells per MAC, each prove's wall time and peak RSS, and the proof size.
set -euo pipefail
if [[ $# -lt 5 ]]; then
  sed -n 2,9p "$0" >&2
  exit 2
fi
model=$1 before=$2 before_flags=$3 after=$4 after_flags=$5 rounds=${6:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
one() { # label binary flags
  local d="$work/$1"
  rm -rf "$d"
  # shellcheck disable=SC2086 # the flags are a word list
  "$2" compile "$model/model.onnx" --calibration "$model/calibration.json" -o "$d" $3 >/dev/null
  "$2" setup "$d" --dev-srs >/dev/null 2>&1
  "$2" info "$d" | grep -E '^(circuit|work|checked)' | sed "s/^/$1: /"
  for i in 1 2; do
    /usr/bin/time -f "$1: prove $i: %e s wall, peak RSS %M KiB" "$2" prove "$d" --input "$model/input.json" -o "$d/p.zkp" 2>&1 >/dev/null | grep -E 'wall|rror'
  done
  "$2" verify "$d" "$d/p.zkp" >/dev/null && echo "$1: proof verifies, $(stat -c %s "$d/p.zkp") bytes"
}
for _ in $(seq "$rounds"); do
  one before "$before" "$before_flags"
  one after "$after" "$after_flags"
done
