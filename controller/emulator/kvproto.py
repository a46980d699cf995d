"""PD's and TiKV's protocol messages and gRPC services, generated from kvproto at set-up.

kvproto (``github.com/pingcap/kvproto``, the definitions TiKV, PD and every TiKV client build
from) is downloaded from the Go module proxy and compiled to Python by ``tools/kvproto.sh`` into
a cache keyed by its version; nothing generated is in the repository. The generated modules
import each other by their bare names (``import metapb_pb2``), so their directory goes on
``sys.path``.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from controller.sandbox.binaries import REPO_ROOT

SCRIPT = REPO_ROOT / "tools" / "kvproto.sh"


class MissingKvprotoError(RuntimeError):
    """The generated modules are not there; the message says how to make them."""


def generated_dir() -> Path:
    override = os.environ.get("CHAOSDEMO_KVPROTO_DIR")
    if override:
        return Path(override)
    if not SCRIPT.exists():
        raise MissingKvprotoError(
            f"{SCRIPT} not found: set CHAOSDEMO_KVPROTO_DIR to kvproto's generated Python"
        )
    out = subprocess.run(["bash", str(SCRIPT), "--print"], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def sandbox_dns_library() -> Path:
    """The sandbox's stand-in for cluster DNS (tools/sandbox_dns.c), for LD_PRELOAD."""
    out = subprocess.run(["bash", str(SCRIPT), "--print-dns"], check=True, capture_output=True, text=True)
    path = Path(out.stdout.strip())
    if not path.exists():
        raise MissingKvprotoError(
            f"the sandbox resolver is missing at {path}: run `bash tools/kvproto.sh .venv/bin/python`"
        )
    return path


@cache
def _module(name: str) -> ModuleType:
    directory = generated_dir()
    if not (directory / ".complete").exists():
        raise MissingKvprotoError(
            f"kvproto's Python modules are missing at {directory}: run "
            "`bash tools/kvproto.sh .venv/bin/python` (scripts/setup.sh does; README, Set-up)"
        )
    if str(directory) not in sys.path:
        sys.path.append(str(directory))
    return importlib.import_module(name)


def pdpb() -> Any:
    return _module("pdpb_pb2")


def pdpb_grpc() -> Any:
    return _module("pdpb_pb2_grpc")


def metapb() -> Any:
    return _module("metapb_pb2")


def kvrpcpb() -> Any:
    return _module("kvrpcpb_pb2")


def errorpb() -> Any:
    return _module("errorpb_pb2")


def tikvpb() -> Any:
    return _module("tikvpb_pb2")


def tikvpb_grpc() -> Any:
    return _module("tikvpb_pb2_grpc")
