"""PD's JSON conventions, both ways: PD's writers and the parsers the clients use.

PD formats sizes as ``typeutil.ByteSize`` ("311.7GiB"), durations as Go's
``time.Duration.String()`` ("36m20.48s"), timestamps as RFC 3339 with nanoseconds, and
``last_heartbeat`` as unix nanoseconds.
"""

from __future__ import annotations

import re

from controller.timefmt import format_rfc3339, parse_rfc3339

_UNITS = [("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]i?B|B)?\s*$", re.IGNORECASE)
_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def format_size(n_bytes: int) -> str:
    """Like PD's ByteSize.MarshalJSON: one decimal, binary units, no trailing '.0'."""
    for unit, factor in _UNITS:
        if n_bytes >= factor:
            text = f"{n_bytes / factor:.1f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return f"{n_bytes}B"


def parse_size(text: str) -> int:
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"not a PD size string: {text!r}")
    value, unit = float(match.group(1)), (match.group(2) or "B")
    unit_norm = unit.upper().replace("IB", "iB")
    factors = {u.upper().replace("IB", "iB"): f for u, f in _UNITS}
    factors.update({"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "PB": 1000**5})
    if unit_norm not in factors:
        raise ValueError(f"unknown size unit in {text!r}")
    return int(value * factors[unit_norm])


def format_duration(seconds: float) -> str:
    """Go's time.Duration.String() for durations of a second or more (and sub-second ones)."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:.6f}".rstrip("0").rstrip(".") + "ms"
    hours, rem = divmod(seconds, 3600)
    minutes, secs = divmod(rem, 60)
    sec_text = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{sec_text}"
    if minutes:
        return f"{int(minutes)}m{sec_text}"
    return sec_text


def parse_duration(text: str) -> float:
    text = text.strip()
    if text in ("0", "0s"):
        return 0.0
    pos, total = 0, 0.0
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    for match in _DURATION_PART_RE.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(body) or not body:
        raise ValueError(f"not a Go duration: {text!r}")
    return sign * total


__all__ = [
    "format_duration",
    "format_rfc3339",
    "format_size",
    "parse_duration",
    "parse_rfc3339",
    "parse_size",
]
