#!/usr/bin/env bash
# Builds go-ycsb (github.com/pingcap/go-ycsb, with TiKV's Go client) from the Go module proxy into
# a cache outside the repository, keyed by its version. go-ycsb's go.mod has replace directives,
# so `go install module@version` refuses it: it is built from the downloaded module instead. With
# cgo, so that GODEBUG=netdns=cgo makes it resolve names through libc (the sandbox's resolver).
#
#   tools/go_ycsb.sh          build it if missing (about 8 minutes cold on a 2-core machine)
#   tools/go_ycsb.sh --print  print the binary's path
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache_root="${CHAOSDEMO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chaosdemo}"
out="$cache_root/bin/go-ycsb-$GO_YCSB_VERSION/go-ycsb"
if [[ "${1:-}" == "--print" ]]; then echo "$out"; exit 0; fi
die() { echo "tools/go_ycsb.sh: error: $*" >&2; exit 1; }
if [[ -x "$out" ]]; then echo "go-ycsb $GO_YCSB_VERSION: cached"; exit 0; fi
command -v go >/dev/null 2>&1 || die "the 'go' command is not installed (README, Set-up)"
echo "go-ycsb $GO_YCSB_VERSION: building from the Go module proxy (about 8 minutes cold; then cached)"
json="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "github.com/pingcap/go-ycsb@$GO_YCSB_VERSION")"
dir="$(sed -n 's/.*"Dir": "\(.*\)",*/\1/p' <<<"$json" | head -1)"
[[ -d "$dir" ]] || die "go-ycsb's module was not downloaded: $json"
work="$(mktemp -d)"
cp -r "$dir/." "$work/" && chmod -R u+w "$work"
mkdir -p "$(dirname "$out")"
(cd "$work" && CGO_ENABLED=1 GOFLAGS=-mod=mod go build -ldflags "-s -w" -o "$out.tmp" ./cmd/go-ycsb) \
  || die "go build of go-ycsb failed"
cp "$work/workloads/workloada" "$(dirname "$out")/workloada"
mv "$out.tmp" "$out"
rm -rf "$work"
echo "go-ycsb: built $out"
