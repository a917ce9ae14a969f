#!/usr/bin/env bash
# Runs the whole test suite: what CI runs (.ci/run calls this script).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# A clean build of the suite takes about 3 GB under target/ and the tests write keys under /tmp:
# say how much room there is, so a full disk shows up as such and not as failing tests.
df -h "${CARGO_TARGET_DIR:-target}" "${TMPDIR:-/tmp}" 2>/dev/null || true
# The coordinator's store tests also run on Postgres, on a throwaway local server.
if url=$(./scripts/pg-test.sh); then
  export ZKINFER_TEST_DATABASE_URL=$url
  trap './scripts/pg-test.sh stop' EXIT
elif [ -n "${CI:-}" ]; then
  echo "could not start PostgreSQL for the tests" >&2
  exit 1
else
  echo "SKIPPED the Postgres runs of the store tests: could not start PostgreSQL (scripts/pg-test.sh)"
fi
# The CUDA MSM kernels must compile under NVRTC. There is no GPU in CI, so this is a compile
# check only (prover/src/msm/cuda): the suite is built once with the prover's `cuda` feature,
# and with NVRTC present its test `nvrtc_compiles_kernels` must pass. NVRTC comes from PyPI's
# wheel (libnvrtc.so, no toolkit), in a venv under target/; 12.8 is the CUDA version of
# cudarc's `cuda-12080` feature.
nvrtc_wheel="nvidia-cuda-nvrtc-cu12==12.8.93"
nvrtc_venv=target/nvrtc-venv
if { [ -x "$nvrtc_venv/bin/pip" ] || python3 -m venv "$nvrtc_venv" >/dev/null 2>&1; } \
  && "$nvrtc_venv/bin/pip" install -q "$nvrtc_wheel" >/dev/null 2>&1; then
  nvrtc_lib=$(echo "$PWD/$nvrtc_venv"/lib/python3*/site-packages/nvidia/cuda_nvrtc/lib)
  export LD_LIBRARY_PATH="$nvrtc_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ZKINFER_REQUIRE_NVRTC=1
elif [ -n "${CI:-}" ]; then
  echo "could not pip install $nvrtc_wheel for the NVRTC kernel compile check" >&2
  exit 1
else
  echo "SKIPPED NVRTC kernel compile check: could not pip install $nvrtc_wheel (no network?)"
fi
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --features zkinfer-prover/cuda --no-fail-fast
else
  cargo test --workspace --features zkinfer-prover/cuda
fi
# Batch settlement end to end on anvil, for one proof (tests/aggregation.rs; about 6 minutes and
# 6 GiB, so it runs alone, after the suite). scripts/aggregation.sh runs it for more proofs.
ZKINFER_AGG_N=1 ZKINFER_AGG_K=20 cargo test -p zkinfer --features zkinfer-prover/cuda --test aggregation -- --ignored
# The coordinator's API against its own OpenAPI document (schemathesis, from PyPI).
./scripts/api-check.sh 25
# The shipped example models must be exactly what the generator script makes.
if python3 -m pip install -q -r scripts/requirements.txt >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  python3 scripts/make_models.py --examples-dir "$tmp" >/dev/null
  # (examples/torch_cnn and examples/gpt are exported by torch, a 5 GB install: their scripts
  # are not re-run here; scripts/check_gpt.py checks the GPT's committed outputs without torch.)
  for f in $(cd examples && find . \( -path ./torch_cnn -o -path ./gpt \) -prune -o \( -name '*.onnx' -o -name '*.json' \) -print | sort); do
    case "$f" in
      # Reference outputs are float32 sums whose last bits follow the machine's BLAS kernels:
      # equal to 1e-6 (relative) is the same output.
      */expected.json) python3 scripts/same_outputs.py "examples/$f" "$tmp/$f" \
        || { echo "examples/$f differs from scripts/make_models.py output beyond float rounding"; exit 1; } ;;
      *) cmp -s "examples/$f" "$tmp/$f" || { echo "examples/$f differs from scripts/make_models.py output"; exit 1; } ;;
    esac
  done
  echo "examples: models and inputs reproduced byte for byte by scripts/make_models.py, reference outputs to float rounding"
  python3 scripts/check_gpt.py || exit 1
  rm -rf "$tmp"
else
  echo "SKIPPED example reproduction check: could not pip install scripts/requirements.txt"
fi
