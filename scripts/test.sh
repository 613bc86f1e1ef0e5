#!/usr/bin/env bash
# Install everything the test suite needs, check the gates, then run the whole suite.
# This is the README's second quick-start command; .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless Chromium for the webchat end-to-end test (Debian's package; no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi

./scripts/install.sh test

# Gates: lint, format, types, and the import rules between packages (pyproject.toml)
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "error: no test ran" >&2
  exit 1
fi
exit "$status"
