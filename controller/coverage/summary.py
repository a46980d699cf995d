"""Coverage across recorded drills: per fault and detection source, how many drills it caught,
its time-to-detect distribution, and the reason most of its misses share."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

from controller.coverage.records import DrillRecord


class SourceCoverage(BaseModel):
    source: str
    type: str
    alerts: list[str] = Field(default_factory=list)  # the rules it counts (empty: any)
    drills: int = 0
    caught: int = 0
    missed: int = 0
    errors: int = 0
    ttds: list[float] = Field(default_factory=list)  # seconds after the kill, caught drills
    ttd_median: float | None = None
    ttd_p95: float | None = None
    ttd_worst: float | None = None
    dominant_miss: str | None = None  # one example of the most common miss reason
    dominant_miss_count: int = 0

    @property
    def verdict(self) -> str:
        if self.drills == 0:
            return "never drilled"
        if self.caught == self.drills:
            return "caught every drill"
        return "missed every drill" if self.caught == 0 else f"caught {self.caught} of {self.drills}"


class Proposal(BaseModel):
    """A rule that would have caught a fault the sources missed, replayed on the drills' data."""

    name: str
    expr: str
    for_seconds: float
    meaning: str
    fired: int = 0
    drills: int = 0
    unavailable: int = 0  # drills whose data Prometheus could not replay
    delays: list[float] = Field(default_factory=list)

    @property
    def sentence(self) -> str:
        if not self.delays:
            return f"would have fired in none of {self.drills} drills"
        worst = max(self.delays)
        return (
            f"would have fired {percentile(self.delays, 50):.0f}s after the kill (median; worst "
            f"{worst:.0f}s) in {self.fired} of {self.drills} drills"
        )


class FaultCoverage(BaseModel):
    fault: str
    drills: int
    first_at: float
    last_at: float
    sources: list[SourceCoverage]
    proposals: list[Proposal] = Field(default_factory=list)

    @property
    def missed_by_some(self) -> bool:
        return any(s.missed for s in self.sources)


class Coverage(BaseModel):
    since: float
    until: float
    drills: int
    faults: list[FaultCoverage]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _shape(reason: str) -> str:
    """A miss reason with its numbers taken out: two drills' "back after 2.3s" and "back after
    3.1s" are the same reason."""
    return re.sub(r"[+-]?\d+(?:\.\d+)?", "#", reason)


def _source_coverage(name: str, records: Sequence[DrillRecord]) -> SourceCoverage:
    outcomes = [s for r in records for s in r.sources if s.name == name]
    first = outcomes[0]
    ttds = [s.ttd_seconds for s in outcomes if s.state == "Detected" and s.ttd_seconds is not None]
    misses = [s.why or "no reason recorded" for s in outcomes if s.state == "Missed"]
    shapes = Counter(_shape(w) for w in misses)
    dominant = shapes.most_common(1)[0] if shapes else None
    return SourceCoverage(
        source=name,
        type=first.type,
        alerts=first.alertnames,
        drills=len(outcomes),
        caught=sum(s.state == "Detected" for s in outcomes),
        missed=len(misses),
        errors=sum(s.state == "Error" for s in outcomes),
        ttds=ttds,
        ttd_median=percentile(ttds, 50) if ttds else None,
        ttd_p95=percentile(ttds, 95) if ttds else None,
        ttd_worst=max(ttds) if ttds else None,
        dominant_miss=next(w for w in misses if _shape(w) == dominant[0]) if dominant else None,
        dominant_miss_count=dominant[1] if dominant else 0,
    )


def summarize(records: Iterable[DrillRecord], *, since: float = 0.0, until: float | None = None) -> Coverage:
    """Coverage per fault (in the order first drilled) and source (in the order first seen)."""
    by_fault: dict[str, list[DrillRecord]] = {}
    for r in sorted(records, key=lambda r: r.injected_at):
        by_fault.setdefault(r.fault, []).append(r)
    faults = []
    for fault, drills in by_fault.items():
        names = list(dict.fromkeys(s.name for r in drills for s in r.sources))
        faults.append(
            FaultCoverage(
                fault=fault,
                drills=len(drills),
                first_at=drills[0].injected_at,
                last_at=drills[-1].injected_at,
                sources=[_source_coverage(n, drills) for n in names],
            )
        )
    every = [r for rs in by_fault.values() for r in rs]
    return Coverage(
        since=since,
        until=until if until is not None else max((r.injected_at for r in every), default=since),
        drills=len(every),
        faults=faults,
    )
