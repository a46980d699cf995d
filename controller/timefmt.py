"""RFC 3339 timestamps, both ways, for everything the project reads or writes.

Kubernetes writes seconds ("2026-11-25T12:00:00Z"), PD nanoseconds with a zone offset, and the
controller milliseconds; Python's ``fromisoformat`` stops at microseconds, so the fraction is
parsed separately and kept to the nanosecond.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def format_rfc3339(ts: float, *, digits: int = 9) -> str:
    """UTC, ``Z``, with up to ``digits`` fractional digits (trailing zeros dropped)."""
    whole = int(ts // 1)
    # Rounded, not cut: a parsed "…10.025" is the float 10.02499999…, and must write back as .025
    # (cutting gave .024, so a figure computed from written moments drifted by a millisecond).
    scale = 10**digits
    units = round((ts - whole) * scale)
    if units >= scale:
        whole, units = whole + 1, units - scale
    base = datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{units:0{digits}d}".rstrip("0") if digits else ""
    return f"{base}{'.' + frac if frac else ''}Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch; raises ValueError on anything that is not RFC 3339."""
    match = _RFC3339_RE.match(text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    base, frac, zone = match.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    whole = datetime.fromisoformat(base.replace("t", "T").replace(" ", "T") + zone).timestamp()
    return whole + (float(frac) if frac else 0.0)


def parse_optional_rfc3339(text: str | None) -> float | None:
    return None if not text else parse_rfc3339(text)
