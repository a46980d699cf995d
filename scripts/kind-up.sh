#!/usr/bin/env bash
# A real drill on kind (needs Docker, kind and kubectl; not runnable on the no-Docker machines
# this project is developed on, where the sandbox plays this part):
#   bash scripts/kind-up.sh
#   kubectl apply -n tikv -f chaosdemo.yaml && kubectl get chaosdemos -n tikv -w
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-up: $tool is required" >&2; exit 1; }
done
kind get clusters | grep -qx chaosdemo || kind create cluster --config kind-config.yaml
docker build -t chaosdemo:dev .
kind load docker-image chaosdemo:dev --name chaosdemo
if [[ -n "${ANTHROPIC_API_KEY:-}" ]]; then
  kubectl create namespace chaosdemo-system --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n chaosdemo-system create secret generic chaosdemo-anthropic \
    --from-literal=api-key="$ANTHROPIC_API_KEY" --dry-run=client -o yaml | kubectl apply -f -
fi
kubectl apply -k manifests/
kubectl wait --for=condition=Established crd/chaosdemos.chaos.operator.dev --timeout=60s
kubectl -n tikv rollout status statefulset/pd --timeout=300s
kubectl -n tikv rollout status statefulset/tikv --timeout=600s
kubectl -n chaosdemo-system rollout status deployment/prometheus --timeout=300s
kubectl -n chaosdemo-system rollout status deployment/chaosdemo --timeout=300s
echo "ready: kubectl apply -n tikv -f chaosdemo.yaml   (or: chaosdemo demo --pd-address http://127.0.0.1:2379 --prometheus-url http://127.0.0.1:9090)"
