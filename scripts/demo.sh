#!/usr/bin/env bash
# Sets everything up and runs the demo: compile, set up, prove and verify the shipped MLP.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The demo shares the test build (dev profile, dependencies at opt-level 3).
cargo build --bin zkinfer
exec ./target/debug/zkinfer demo "$@"
