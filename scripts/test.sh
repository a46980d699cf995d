#!/usr/bin/env bash
# The test command: lint, type-check, then the whole test-suite (unit and integration, which
# start a real control plane, the TiKV emulator and Prometheus as local processes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=.venv/bin
if [[ ! -x $py/pytest ]]; then
  echo "test: .venv is missing; run 'bash scripts/setup.sh' first" >&2
  exit 1
fi
$py/ruff check controller tests benchmarks
$py/mypy
exec $py/pytest "$@"
