#!/usr/bin/env bash
# Installs what the build needs and is not on a fresh machine: protoc (candle-onnx's build).
set -euo pipefail
if ! command -v protoc >/dev/null 2>&1; then
  echo "installing protobuf-compiler (needed to build candle-onnx)…"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq protobuf-compiler >/dev/null
fi
