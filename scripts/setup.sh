#!/usr/bin/env bash
# Installs what the build needs and is not on a fresh machine: protoc (candle-onnx's build).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null 2>&1; then
  echo "installing protobuf-compiler (needed to build candle-onnx)…"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq protobuf-compiler >/dev/null
fi
# A PostgreSQL server for the store's Postgres tests (scripts/pg-test.sh starts a throwaway one).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing postgresql (the coordinator's Postgres tests)…"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq postgresql >/dev/null
fi
# solcjs and anvil for the on-chain verifier and escrow (pinned in verifier-contract/package-lock.json).
nm=verifier-contract/node_modules
if [ ! -x $nm/@foundry-rs/anvil-linux-amd64/bin/anvil ] || [ ! -f $nm/solc/package.json ] || [ ! -f $nm/solc-escrow/package.json ] \
  || [ ! -f $nm/@openzeppelin/contracts/package.json ] || [ ! -f $nm/circomlibjs/package.json ]; then
  echo "installing solc, OpenZeppelin's contracts, circomlibjs and anvil from npm (verifier-contract/package-lock.json)…"
  npm ci --prefix verifier-contract --no-audit --no-fund --loglevel=error
fi
