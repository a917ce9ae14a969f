#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (libFuzzer), each for a given time, from seeds made
# from the shipped tiny model. Usage: scripts/fuzz.sh [SECONDS_EACH] [TARGET...]
#   SECONDS_EACH  how long each target runs (default 600)
#   TARGET        proof_envelope, model_files, onnx_import, api_bodies (default: all four)
# Each target's libFuzzer log and final statistics go to fuzz/runs/TARGET.log, its corpus grows
# in fuzz/corpus/TARGET, and a crash is saved under fuzz/artifacts/TARGET/ (reproduce with
# `cargo fuzz run --sanitizer none TARGET fuzz/artifacts/TARGET/crash-…`). Exits 1 if any target
# crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(proof_envelope model_files onnx_import api_bodies)
case "$secs" in '' | *[!0-9]*) echo "SECONDS_EACH must be a whole number of seconds, not '$secs'" >&2; exit 2 ;; esac

# cargo-fuzz itself, pinned. The toolchain here is stable; cargo-fuzz's instrumentation flags
# need nothing unstable once the address sanitizer is off (safe Rust: no memory errors to find).
fuzz_version=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -q "$fuzz_version"; then
  echo "installing cargo-fuzz $fuzz_version from crates.io…"
  cargo install -q --locked cargo-fuzz --version "$fuzz_version"
fi

# Seeds: the tiny model's directory files and proof, the example ONNX files, request bodies.
cargo build -q --bin zkinfer
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
z=target/debug/zkinfer
$z compile examples/tiny/model.onnx -o "$work/tiny" --calibration examples/tiny/calibration.json >/dev/null
$z setup "$work/tiny" --dev-srs >/dev/null
$z prove "$work/tiny" --input examples/tiny/input.json -o "$work/tiny.zkp" >/dev/null
seed() { mkdir -p "fuzz/corpus/$1"; cat > "fuzz/corpus/$1/$2"; }
seed proof_envelope tiny.zkp < "$work/tiny.zkp"
{ printf '\0'; cat "$work/tiny/model.zkm"; } | seed model_files model.zkm
{ printf '\1'; cat "$work/tiny/setup.json"; } | seed model_files setup.json
{ printf '\2'; cat "$work"/tiny/keys/*/vk.bin; } | seed model_files vk.bin
for m in tiny cnn torch_cnn transformer unsupported; do seed onnx_import "$m.onnx" < "examples/$m/model.onnx"; done
printf '\0{"model_id":"m","input":[0.5,-1,2,0],"deadline_s":600}' | seed api_bodies submit
printf '\4proof' | seed api_bodies proof
printf '\5{"reason":"out of memory"}' | seed api_bodies fail
printf '\6{"quantized_outputs":[[1,2]],"outputs_hash":"0x%064d","post_tx":"0x%064d","signature":"0x00"}' 0 0 | seed api_bodies result
printf '\7{"agrees":false,"challenge_tx":null}' | seed api_bodies audit
printf '\10{"hpke_public_key":"0x%064d","hpke_key_signature":"0x00","price_wei":"1000","gpu":false,"models":["m"]}' 0 | seed api_bodies register

mkdir -p fuzz/runs
failed=0
for t in "${targets[@]}"; do
  echo "fuzzing $t for ${secs}s (log: fuzz/runs/$t.log)…"
  # -rss_limit_mb: a malformed file must not make a reader take gigabytes either.
  if ! cargo fuzz run --sanitizer none "$t" "fuzz/corpus/$t" -- \
      -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 \
      > "fuzz/runs/$t.log" 2>&1; then
    echo "  $t CRASHED: see fuzz/runs/$t.log and fuzz/artifacts/$t/"
    failed=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/runs/$t.log" | grep -o '[0-9]*$' || echo "?")
  last=$(grep -E '^#[0-9]+' "fuzz/runs/$t.log" | tail -1 || true)
  echo "  $t: $execs executions; last status: $last"
done
exit $failed
