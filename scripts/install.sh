#!/usr/bin/env bash
# Install Switchboard into .venv (with optional extras: ./scripts/install.sh test).
# The README's first quick-start command and scripts/test.sh both use this.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-}

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip

# llama-cpp-python compiles from source the first time (about 5 minutes on 2 cores); pip caches
# the wheel. A "native" build turns on every instruction the build machine has, including Intel
# AMX, whose matrix kernels crashed (SIGSEGV in ggml_backend_amx_mul_mat) on the first token on
# an AMX machine here: on x86_64 we build for AVX2 instead, which every recent x86 CPU runs.
if [ "$(uname -m)" = x86_64 ] && [ -z "${CMAKE_ARGS:-}" ]; then
  export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
fi
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"

# A wheel cached from an earlier native build is reused whatever CMAKE_ARGS says: check that the
# bundled model answers, and rebuild once without the cache if it does not.
if ! .venv/bin/python -m bot.providers.local.smoke >/dev/null 2>&1; then
  echo "the local model engine failed its smoke test: rebuilding llama-cpp-python without the cache" >&2
  .venv/bin/python -m pip install -q --no-cache-dir --force-reinstall --no-deps llama-cpp-python
  .venv/bin/python -m bot.providers.local.smoke
fi
