#!/usr/bin/env bash
# The test command. Two tiers (README, "Tests"):
#
#   bash scripts/test.sh                    lint, type-check, then every test (what CI runs)
#   bash scripts/test.sh --fast             lint, type-check, unit, contract and property tests:
#                                           no control plane, no emulator, a few minutes
#   bash scripts/test.sh --repeat N PATTERN run the tests whose id matches PATTERN (pytest -k)
#                                           N times in a row, stopping at the first failure:
#                                           how a flake is found before CI finds it
#
# Anything after the options goes to pytest. Every run prints the 20 slowest tests. The full run
# uses CHAOSDEMO_TEST_WORKERS pytest-xdist workers (default 2; 0 runs in this process).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=.venv/bin
if [[ ! -x $py/pytest ]]; then
  echo "test: .venv is missing; run 'bash scripts/setup.sh' first" >&2
  exit 1
fi

mode=all
repeat=0
pattern=""
case "${1:-}" in
  --fast)
    mode=fast
    shift
    ;;
  --repeat)
    mode=repeat
    [[ $# -ge 3 ]] || { echo "usage: scripts/test.sh --repeat N PATTERN [pytest args]" >&2; exit 2; }
    repeat=$2
    pattern=$3
    [[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "test: --repeat needs a positive count, got '$repeat'" >&2; exit 2; }
    shift 3
    ;;
esac

started=$(date +%s)
report_time() { echo "test: $mode run took $(( $(date +%s) - started ))s"; }
trap report_time EXIT

if [[ $mode != repeat ]]; then
  $py/ruff check controller tests benchmarks
  $py/mypy
fi

case $mode in
  fast)
    # tests/unit holds everything that needs no real process beyond Python itself.
    $py/pytest tests/unit --durations=20 "$@"
    ;;
  repeat)
    for ((i = 1; i <= repeat; i++)); do
      echo "==> run $i of $repeat: -k '$pattern'"
      # Exit 5 (nothing collected) is a mistyped pattern, not a pass.
      $py/pytest -k "$pattern" --durations=20 "$@"
    done
    ;;
  *)
    # Two workers, each with its own control plane: most of a drill is waiting on the emulated
    # cluster's clock, so two at once use the two cores without slowing each other much.
    $py/pytest -n "${CHAOSDEMO_TEST_WORKERS:-2}" --durations=20 "$@"
    ;;
esac
