#!/usr/bin/env bash
# zkinfer vs EZKL on the same ONNX models, inputs and machine, in one run.
# Installs EZKL from PyPI into a virtualenv (target/ezkl-venv), builds zkinfer in release mode,
# then runs benches/ezkl/side_by_side.py. Usage: benches/ezkl/side_by_side.sh [MODEL ...]
# (default: mlp cnn transformer). Results: target/side_by_side/results.json and a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${EZKL_VENV:-target/ezkl-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r benches/ezkl/requirements.txt
cargo build --release --bin zkinfer
exec "$venv/bin/python" benches/ezkl/side_by_side.py --zkinfer target/release/zkinfer --out target/side_by_side "$@"
