#!/usr/bin/env bash
# Tests the coordinator's HTTP API against the OpenAPI document it serves, with schemathesis
# (PyPI, pinned): a coordinator with the shipped tiny model (and model registration on) is
# started on a free port, and every documented operation gets a bounded number of generated
# requests. It fails on any 5xx, any undocumented status, content type or header, and any
# response that does not conform to its schema.
#
# Usage: scripts/api-check.sh [EXAMPLES_PER_OPERATION]   (default 25; ZKINFER_BIN picks the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-25}
bin=${ZKINFER_BIN:-target/debug/zkinfer}
[ -x "$bin" ] || cargo build --quiet --bin zkinfer
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
"$bin" compile examples/tiny/model.onnx -o "$tmp/tiny" --calibration examples/tiny/calibration.json >/dev/null
"$bin" setup "$tmp/tiny" --dev-srs >/dev/null 2>&1
"$bin" coordinator --listen 127.0.0.1:0 --database-url "sqlite:$tmp/coordinator.db" --api-key check:KEY \
  --model "tiny:$tmp/tiny" --models-dir "$tmp/models" --dev-srs --long-poll-secs 1 \
  >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
pid=$!
addr=
for _ in $(seq 1 600); do
  addr=$(grep -o 'http://[0-9.:]*' "$tmp/coordinator.out" 2>/dev/null | head -n 1 || true)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/coordinator.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "the coordinator did not start" >&2; cat "$tmp/coordinator.err" >&2; exit 1; }
echo "api-check: schemathesis against $addr/v1/openapi.json, $examples examples per operation"
"$venv/bin/schemathesis" run "$addr/v1/openapi.json" \
  --header "x-api-key: KEY" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-examples "$examples" --seed 7 --workers 1 --request-timeout 30 --no-color --generation-database none \
  --report junit --report-junit-path target/api-check.junit.xml
