#!/usr/bin/env bash
# Builds the real Kubernetes control plane used by the tests and `chaosdemo sandbox`:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok, and helm
# (for the chart's tests), from the Go module proxy, into a cache outside the repository keyed
# by version. A binary that is already in the cache is not rebuilt, so a warm machine skips
# this step in seconds.
#
#   tools/build.sh               build what is missing, print the bin directory last
#   tools/build.sh control-plane build what the sandbox and the demo need (everything but helm,
#                                which only the chart's tests use)
#   tools/build.sh --print       only print the control plane's bin directory
#   tools/build.sh --print-helm  only print helm's bin directory
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${CHAOSDEMO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chaosdemo}"
bin_dir="$cache_root/bin/k8s-v${KUBERNETES_VERSION}_etcd-v${ETCD_VERSION}_kwok-v${KWOK_VERSION}"
# helm has a directory of its own: a new helm version must not rebuild the control plane.
helm_dir="$cache_root/bin/helm-v${HELM_VERSION}"

if [[ "${1:-}" == "--print" ]]; then
  echo "$bin_dir"
  exit 0
fi
if [[ "${1:-}" == "--print-helm" ]]; then
  echo "$helm_dir"
  exit 0
fi

die() { echo "tools/build.sh: error: $*" >&2; exit 1; }

only_control_plane=false
case "${1:-}" in
  "") ;;
  control-plane) only_control_plane=true ;;
  *) die "unknown argument '$1' (expected nothing, control-plane, --print or --print-helm)" ;;
esac

command -v go >/dev/null 2>&1 || die "the 'go' command is not installed; install Go >= 1.26 (see README, Set-up)"
mkdir -p "$bin_dir" "$helm_dir"

# Build flags: strip symbols (less link memory, smaller files) and stamp the real version,
# so `kubectl version` and the API server's /version report v${KUBERNETES_VERSION}
# rather than v0.0.0-master, which would make kubectl warn about skew.
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=v${KUBERNETES_VERSION}"
  k8s_ldflags+=" -X $pkg.gitMajor=${KUBERNETES_VERSION%%.*}"
  minor="${KUBERNETES_VERSION#*.}"; k8s_ldflags+=" -X $pkg.gitMinor=${minor%%.*}"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean"
done

# name | module dir | package | ldflags | output directory | expected cold build (seconds)
# The expected times were measured on this project's 2-core machine kind (README, "Measured on
# this machine"); a slower machine of the kind took up to four times as long.
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
targets=(
  "etcd|etcd|go.etcd.io/etcd/server/v3|-s -w|$bin_dir|48"
  "kube-apiserver|kubernetes|k8s.io/kubernetes/cmd/kube-apiserver|$k8s_ldflags|$bin_dir|152"
  "kube-controller-manager|kubernetes|k8s.io/kubernetes/cmd/kube-controller-manager|$k8s_ldflags|$bin_dir|43"
  "kube-scheduler|kubernetes|k8s.io/kubernetes/cmd/kube-scheduler|$k8s_ldflags|$bin_dir|4"
  "kubectl|kubernetes|k8s.io/kubernetes/cmd/kubectl|$k8s_ldflags|$bin_dir|15"
  "kwok|kwok|sigs.k8s.io/kwok/cmd/kwok|-s -w|$bin_dir|47"
)
$only_control_plane || targets+=("helm|helm|helm.sh/helm/v3/cmd/helm|$helm_ldflags|$helm_dir|60")

total=${#targets[@]}
i=0
started=$(date +%s)
for t in "${targets[@]}"; do
  IFS='|' read -r name moddir pkg ldflags out expected <<<"$t"
  i=$((i + 1))
  if [[ -x "$out/$name" ]]; then
    echo "[$i/$total] $name: cached"
    continue
  fi
  echo "[$i/$total] $name: building $pkg (about ${expected}s on a 2-core machine, up to 4x on a slow one; built once, then cached)"
  t0=$(date +%s)
  # -o to a temporary name then rename: an interrupted build never leaves a half binary
  # that a later run would take as cached.
  if ! (cd "$here/$moddir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/.$name.tmp" "$pkg"); then
    rm -f "$out/.$name.tmp"
    die "building $name ($pkg) failed; see the Go output above. Is the Go module proxy reachable (go env GOPROXY)?"
  fi
  mv "$out/.$name.tmp" "$out/$name"
  echo "[$i/$total] $name: built in $(( $(date +%s) - t0 ))s"
done
$only_control_plane || echo "helm ready in $helm_dir"
echo "control plane binaries ready after $(( $(date +%s) - started ))s in:"
echo "$bin_dir"
