"""The coverage page: one self-contained HTML file an SRE takes to a review. Per fault drilled,
a to-scale strip of every source's time-to-detect (one dot per drill, misses counted at the
right), the table of caught and missed with the TTD distribution and the reason most misses
share, and the rules that would have caught what was missed, as replayed on the drills' data."""

from __future__ import annotations

import time
from html import escape

from controller.coverage.summary import Coverage, FaultCoverage, SourceCoverage
from controller.ui.html_report import CHAR_WIDTH, CSS

PAGE_CSS = (
    CSS
    + """
.dot{fill:#e67e22;fill-opacity:.75}.miss{fill:#c0392b;font-weight:600}.src{fill:#1d2330}
.prop code{background:#f4f6f9;padding:1px 4px;border-radius:3px}
table.coverage{width:100%;table-layout:fixed} table.coverage td{overflow-wrap:anywhere}
"""
)
# Column widths of the coverage table (percent): the reason gets the room it needs.
COLUMNS = (
    ("source", 20),
    ("type", 10),
    ("rules", 14),
    ("caught", 7),
    ("median TTD", 7),
    ("p95", 6),
    ("worst", 6),
    ("why it missed (most misses)", 30),
)
WIDTH = 1000
NAME_RIGHT, PLOT_LEFT, PLOT_RIGHT, MISS_LEFT = 200, 220, 850, 870
ROW = 24
NAME_CHARS = int(NAME_RIGHT / CHAR_WIDTH) - 1


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) + " UTC"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _short(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def _tick(seconds: float, span: float) -> str:
    """Whole seconds on a long axis; tenths on a short one, where whole ones would repeat."""
    return f"{seconds:.0f}" if span >= 10 else f"{seconds:.1f}"


def strip_svg(fault: FaultCoverage) -> str:
    """Each source's TTDs on one shared axis, to scale; misses counted right of the plot."""
    worst = max((t for s in fault.sources for t in s.ttds), default=0.0)
    span = max(worst * 1.05, 1.0)
    scale = (PLOT_RIGHT - PLOT_LEFT) / span
    height = 20 + ROW * len(fault.sources) + 30
    axis_y = 20 + ROW * len(fault.sources)
    parts = [
        f'<svg class="ttd-strip" id="strip-{escape(fault.fault)}" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-label="time to detect of each source, {escape(fault.fault)}">',
        f'<line class="axis" x1="{PLOT_LEFT}" y1="{axis_y}" x2="{PLOT_RIGHT}" y2="{axis_y}"/>',
    ]
    for i in range(5):
        x = PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * i / 4
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{axis_y}"/>')
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle">+{_tick(span * i / 4, span)}s</text>'
        )
    for n, source in enumerate(fault.sources):
        y = 20 + ROW * n + ROW / 2
        parts.append(
            f'<text class="src" x="{NAME_RIGHT}" y="{y + 4:.1f}" text-anchor="end">'
            f"<title>{escape(source.source)}</title>{escape(_short(source.source))}</text>"
        )
        for ttd in source.ttds:
            parts.append(
                f'<circle class="dot" cx="{PLOT_LEFT + ttd * scale:.1f}" cy="{y:.1f}" r="4" data-ttd="{ttd:.3f}"/>'
            )
        if source.missed or source.errors:
            label = f"missed {source.missed}" + (f", {source.errors} error" if source.errors else "")
            parts.append(f'<text class="miss" x="{MISS_LEFT}" y="{y + 4:.1f}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _row(s: SourceCoverage) -> str:
    rules = ", ".join(s.alerts) or "any alert about the drill"
    why = (
        f"{escape(s.dominant_miss)} <span class='muted'>({s.dominant_miss_count} of {s.missed} misses)</span>"
        if s.dominant_miss
        else "-"
    )
    return (
        f"<tr><td>{escape(s.source)}</td><td>{escape(s.type)}</td><td>{escape(rules)}</td>"
        f"<td>{s.caught} of {s.drills}</td><td>{_secs(s.ttd_median)}</td><td>{_secs(s.ttd_p95)}</td>"
        f"<td>{_secs(s.ttd_worst)}</td><td class='why'>{why}</td></tr>"
    )


def fault_section(fault: FaultCoverage) -> str:
    table = (
        f'<table class="coverage" id="table-{escape(fault.fault)}"><tr>'
        + "".join(f'<th style="width:{width}%">{name}</th>' for name, width in COLUMNS)
        + "</tr>"
        + "".join(_row(s) for s in fault.sources)
        + "</table>"
    )
    proposals = ""
    if fault.proposals:
        items = "".join(
            f"<li><code>{escape(p.expr)}</code> <code>for: {p.for_seconds:g}s</code>: {escape(p.meaning)}; "
            f"<strong>{escape(p.sentence)}</strong>"
            + (f" <span class='muted'>({p.unavailable} not replayable)</span>" if p.unavailable else "")
            + "</li>"
            for p in fault.proposals
        )
        proposals = (
            "<h3>What would have caught it</h3><p class='muted'>Suggestions, never applied: each "
            "expression evaluated over these drills' windows in Prometheus.</p>"
            f'<ul class="prop" id="proposals-{escape(fault.fault)}">{items}</ul>'
        )
    return (
        f'<h2 id="fault-{escape(fault.fault)}">{escape(fault.fault)}: {fault.drills} drill(s), '
        f"{_when(fault.first_at)} to {_when(fault.last_at)}</h2>" + strip_svg(fault) + table + proposals
    )


def _first_drill(coverage: Coverage) -> float:
    """Where the range starts: the query's start, or the first drill when it is later."""
    return max(coverage.since, min((f.first_at for f in coverage.faults), default=coverage.since))


def to_html(coverage: Coverage, title: str = "Alert coverage") -> str:
    faults = "".join(fault_section(f) for f in coverage.faults) or '<p class="muted">No drill recorded.</p>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{PAGE_CSS}</style></head><body>
<h1>{escape(title)}</h1>
<p id="summary">{coverage.drills} drill(s) of {len(coverage.faults)} fault type(s), from
{_when(_first_drill(coverage))} to {_when(coverage.until)}. Each source is timed from the kill by the
servers' own timestamps; a miss says why.</p>
{faults}
</body></html>
"""
