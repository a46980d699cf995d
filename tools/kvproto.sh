#!/usr/bin/env bash
# Generates Python modules for PD's and TiKV's gRPC protocols (kvproto, from the Go module
# proxy) into a cache outside the repository, keyed by kvproto's version, and builds the
# sandbox's name resolver (tools/sandbox_dns.c), keyed by its source. Nothing generated is
# committed. Needs Go (to download the module), gcc, and a Python with grpcio-tools.
#
#   tools/kvproto.sh PYTHON      generate what is missing (PYTHON: the venv's interpreter)
#   tools/kvproto.sh --print     print the generated modules' directory
#   tools/kvproto.sh --print-dns print the resolver library's path
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache_root="${CHAOSDEMO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chaosdemo}"
out="$cache_root/kvproto/$KVPROTO_VERSION"
dns_hash="$(sha256sum "$here/sandbox_dns.c" | cut -c1-12)"
dns_lib="$cache_root/lib/sandbox-dns-$dns_hash/libsandboxdns.so"

case "${1:-}" in
  --print) echo "$out"; exit 0 ;;
  --print-dns) echo "$dns_lib"; exit 0 ;;
  "") echo "tools/kvproto.sh: error: give the Python interpreter that has grpcio-tools" >&2; exit 1 ;;
esac
# Absolute (a relative .venv/bin/python would not be found once the download's subshell has
# changed directory); not resolved through symlinks, which would leave the venv.
python="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
die() { echo "tools/kvproto.sh: error: $*" >&2; exit 1; }

if [[ -f "$out/.complete" ]]; then
  echo "kvproto $KVPROTO_VERSION: cached"
else
  command -v go >/dev/null 2>&1 || die "the 'go' command is not installed (README, Set-up)"
  echo "kvproto $KVPROTO_VERSION: downloading from the Go module proxy and generating Python"
  dir="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "github.com/pingcap/kvproto@$KVPROTO_VERSION" \
    | "$python" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  [[ -d "$dir/proto" ]] || die "kvproto's module has no proto/ directory at $dir"
  rm -rf "$out" && mkdir -p "$out"
  "$python" -m grpc_tools.protoc -I"$dir/proto" -I"$dir/include" --python_out="$out" --grpc_python_out="$out" \
    "$dir"/proto/*.proto "$dir/include/eraftpb.proto" "$dir/include/rustproto.proto" \
    "$dir/include/gogoproto/gogo.proto" || die "protoc failed on kvproto $KVPROTO_VERSION"
  touch "$out/.complete"
  echo "kvproto: generated into $out"
fi

if [[ -f "$dns_lib" ]]; then
  echo "sandbox resolver: cached"
else
  command -v gcc >/dev/null 2>&1 || die "gcc is not installed (README, Set-up)"
  mkdir -p "$(dirname "$dns_lib")"
  gcc -shared -fPIC -O2 -Wall -Werror -o "$dns_lib" "$here/sandbox_dns.c" -ldl
  echo "sandbox resolver: built $dns_lib"
fi
