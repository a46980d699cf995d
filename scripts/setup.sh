#!/usr/bin/env bash
# Set-up for a fresh machine (Debian, root, Go >= 1.26, Python >= 3.11). Idempotent: a warm
# machine skips what it already has (Debian packages, cached Go binaries, the venv's packages).
#   bash scripts/setup.sh          everything the tests need (what CI runs)
#   bash scripts/setup.sh --demo   what `scripts/demo.sh` needs (no helm)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n==> %s\n' "$*"; }

say "Debian packages: prometheus and prometheus-alertmanager (the real ones the tests use), chromium (the HTML report is tested in it), openssl, tmux"
need=()
command -v prometheus >/dev/null 2>&1 || [[ -x /usr/bin/prometheus ]] || need+=(prometheus)
[[ -x /usr/bin/prometheus-alertmanager ]] || need+=(prometheus-alertmanager)
[[ -x /usr/bin/chromium ]] || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: need root to apt-get install ${need[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
else
  echo "already installed"
fi

if [[ ${1:-} == --demo ]]; then
  # The demo needs the control plane only; helm is for the chart's tests (plain setup builds it).
  say "Control-plane binaries (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok)"
  bash tools/build.sh control-plane
else
  say "Control-plane binaries (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok) and helm"
  bash tools/build.sh
fi

say "Python virtual environment in .venv with the package and its test extra"
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
say "kvproto (PD's and TiKV's gRPC protocols, from the Go module proxy) compiled to Python, and the sandbox's resolver"
bash tools/kvproto.sh .venv/bin/python
say "go-ycsb (YCSB with TiKV's Go client): the sandbox's load, and a second real client in the tests"
bash tools/go_ycsb.sh
# kubectl from the same build, beside the venv's commands: `export PATH=$PWD/.venv/bin:$PATH`.
ln -sf "$(bash tools/build.sh --print)/kubectl" .venv/bin/kubectl
echo "ok: $(.venv/bin/python --version), chaosdemo $(.venv/bin/python -c 'import controller; print(controller.__version__)')"
