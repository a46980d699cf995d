#!/usr/bin/env bash
# The demo on a fresh machine, no Docker: set up (skipped when done), start the sandbox (skipped
# when running), run one staged drill. Arguments go to `chaosdemo demo` (e.g. --yes).
# The sandbox keeps running afterwards for kubectl; stop it with `.venv/bin/chaosdemo sandbox down`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ ! -x .venv/bin/chaosdemo ]] || ! .venv/bin/python -c 'from controller.sandbox.binaries import require_all; require_all()' 2>/dev/null; then
  bash scripts/setup.sh --demo
fi
if ! .venv/bin/chaosdemo sandbox status >/dev/null 2>&1; then
  .venv/bin/chaosdemo sandbox down >/dev/null 2>&1 || true
  .venv/bin/chaosdemo sandbox up
fi
kubeconfig=$(.venv/bin/chaosdemo sandbox status | sed -n 's/^export KUBECONFIG=//p')
KUBECONFIG="$kubeconfig" .venv/bin/chaosdemo demo "$@"
echo
echo "The sandbox is still running. Try:"
echo "  export KUBECONFIG=$kubeconfig"
echo "  kubectl get pods -n tikv; kubectl get chaosdemos -A; .venv/bin/chaosdemo tickets list"
echo "Stop it with: .venv/bin/chaosdemo sandbox down"
