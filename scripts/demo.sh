#!/usr/bin/env bash
# Sets everything up and runs the demo: compile, set up, prove and verify the shipped MLP off
# chain and on anvil, then run the proving market on anvil, ZK and optimistic (unless
# --off-chain-only).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The demo shares the test build (dev profile, dependencies at opt-level 3).
cargo build --bin zkinfer
market="--market --optimistic"
for a in "$@"; do [ "$a" = --off-chain-only ] && market=; done
exec ./target/debug/zkinfer demo $market "$@"
