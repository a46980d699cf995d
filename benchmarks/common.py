"""Shared helpers: percentiles, the machine's description, writing results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
    }


def machine() -> dict[str, Any]:
    cpu = _proc_field("/proc/cpuinfo", "model name", ":")
    mem_kib = int(_proc_field("/proc/meminfo", "MemTotal", ":").split()[0] or 0)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def write(name: str, data: dict[str, Any], command: str = "") -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    data = {
        "benchmark": name,
        "command": command or f"python -m benchmarks.{name}",
        "machine": machine(),
        **data,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    print(json.dumps(data, indent=2, default=str), file=sys.stderr)
    return path


def _proc_field(path: str, key: str, sep: str) -> str:
    try:
        text = Path(path).read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith(key):
            return line.split(sep, 1)[1].strip()
    return ""


def rss_peak_mib(pid: int) -> float:
    """VmHWM: the peak resident set size of a process, from /proc."""
    return rss_mib(pid, "VmHWM")


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """A process's resident set size now (VmRSS) or at its peak (VmHWM), from /proc."""
    value = _proc_field(f"/proc/{pid}/status", f"{field}:", ":")
    return int(value.split()[0]) / 1024 if value else float("nan")


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
