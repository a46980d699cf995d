"""A drill's report as one self-contained HTML page: a to-scale SVG timeline (the kill, each
detection source, the diagnosis, pod Ready, store re-registered, regions healthy, whole again,
leaders back), the clients' curves around the kill (request rate, error ratio, p99 latency), the
impact figures, the diagnosis, and earlier runs' TTD and TTR. No script, no external resource:
it opens from a file, an attachment or a ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from controller.operator.status import parse_rfc3339

TIMELINE_MARKS = (
    ("detectedAt", "ticket", "detect"),
    ("diagnosedAt", "diagnosis", "diagnose"),
    ("podReadyAt", "pod Ready", "recover"),
    ("storeUpAt", "store re-registered", "recover"),
    ("regionsHealthyAt", "regions healthy", "recover"),
    ("recoveredAt", "whole again (TTR)", "whole"),
    ("leadersElectedAt", "leaders elected", "recover"),
    ("leadersBalancedAt", "leaders back", "recover"),
)
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1040px;color:#1d2330}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea}
.verdict{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.Pass{background:#1f8f4e}.Fail,.Undetected{background:#c0392b}.Error{background:#8e44ad}.Aborted{background:#7f8c8d}
table{border-collapse:collapse;margin:6px 0} td,th{border:1px solid #dde2ea;padding:4px 10px;text-align:left}
th{background:#f4f6f9} .muted{color:#66708a} svg text{font:11px system-ui,sans-serif;fill:#1d2330}
.kill{stroke:#c0392b;fill:#c0392b}.detect{stroke:#e67e22;fill:#e67e22}.diagnose{stroke:#8e44ad;fill:#8e44ad}
.recover{stroke:#2980b9;fill:#2980b9}.whole{stroke:#1f8f4e;fill:#1f8f4e}.axis{stroke:#99a3b8}
.curve{fill:none;stroke-width:1.8}.grid{stroke:#eef1f5}
"""


def _t(value: Any) -> float | None:
    return parse_rfc3339(value) if isinstance(value, str) else None


def _fmt(value: Any, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}{unit}"
    return f"{value}{unit}"


# Label geometry for the timeline: 11 px text is at most ~6.6 px a character in the fonts
# browsers pick for system-ui; a lane is one text line.
CHAR_WIDTH = 6.6
LABEL_GAP = 10.0
LANE_HEIGHT = 18


@dataclass(frozen=True)
class PlacedLabel:
    offset: float  # seconds after the kill
    label: str
    css: str
    x: float  # the moment on the axis
    lane: int  # 0, 1, 2...: even lanes above the axis, odd below, further out as they grow
    anchor: str  # "start": the text runs right of x; "end": left of it

    @property
    def text(self) -> str:
        return f"{self.label} +{self.offset:.1f}s"

    @property
    def span(self) -> tuple[float, float]:
        width = len(self.text) * CHAR_WIDTH
        return (self.x, self.x + 3 + width) if self.anchor == "start" else (self.x - 3 - width, self.x)


def place_labels(
    marks: list[tuple[float, str, str]], left: float, right: float, scale: float
) -> list[PlacedLabel]:
    """Each mark's label in the first lane where it overlaps no label already placed: however
    close the moments, no two labels share space (lanes are added as needed)."""
    placed: list[PlacedLabel] = []
    for offset, label, css in sorted(marks):
        x = left + offset * scale
        width = len(f"{label} +{offset:.1f}s") * CHAR_WIDTH
        anchor = "start" if x + 3 + width <= right else "end"
        lane = 0
        while True:
            candidate = PlacedLabel(offset, label, css, x, lane, anchor)
            lo, hi = candidate.span
            if all(
                p.lane != lane or hi + LABEL_GAP <= p.span[0] or p.span[1] + LABEL_GAP <= lo for p in placed
            ):
                break
            lane += 1
        placed.append(candidate)
    return placed


def timeline_svg(report: dict[str, Any], width: int = 1000) -> str:
    """Every moment of the run on one axis, seconds after the kill, to scale; each detection
    source at its own firing time; labels laid out so that none overlaps another."""
    timeline = report["timeline"]
    kill = _t(timeline.get("injectedAt"))
    if kill is None:
        return '<p class="muted">Nothing was killed: no timeline.</p>'
    marks: list[tuple[float, str, str]] = [(0.0, "kill", "kill")]
    for key, label, css in TIMELINE_MARKS:
        at = _t(timeline.get(key))
        if at is not None:
            marks.append((at - kill, label, css))
    for source in report["detection"]:
        fired = _t(source.get("firingAt"))
        if fired is not None and source.get("type") != "tickets":
            marks.append((fired - kill, f"{source['name']} fired", "detect"))
    span = max(max(m[0] for m in marks), 1.0)  # at least a second: moments closer share lanes
    left, right = 30, width - 10
    scale = (right - 160 - left) / span  # room right of the last moment for its label
    labels = place_labels(marks, left, right, scale)
    above = (max(lb.lane for lb in labels) // 2) + 1
    below = (max((lb.lane for lb in labels if lb.lane % 2), default=-1) + 1) // 2
    axis_y = 20 + above * LANE_HEIGHT + 16
    height = axis_y + 30 + max(below, 1) * LANE_HEIGHT + 10
    parts = [
        f'<svg id="timeline" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="timeline of the drill, {span:.1f} seconds">',
        f'<line class="axis" x1="{left}" y1="{axis_y}" x2="{left + span * scale:.1f}" y2="{axis_y}"/>',
    ]
    for i in range(6):  # ticks
        x = left + span * scale * i / 5
        parts.append(f'<line class="axis" x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 5}"/>')
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{axis_y + 18}" text-anchor="middle">+{span * i / 5:.1f}s</text>'
        )
    for lb in labels:
        up = lb.lane % 2 == 0
        ring = lb.lane // 2
        y_text = axis_y - 16 - ring * LANE_HEIGHT if up else axis_y + 40 + ring * LANE_HEIGHT
        parts.append(
            f'<circle class="mark {lb.css}" cx="{lb.x:.1f}" cy="{axis_y}" r="5" data-label="{escape(lb.label)}"/>'
        )
        parts.append(
            f'<line class="{lb.css}" x1="{lb.x:.1f}" y1="{axis_y}" x2="{lb.x:.1f}" '
            f'y2="{y_text + (4 if up else -12)}"/>'
        )
        dx = 3 if lb.anchor == "start" else -3
        parts.append(
            f'<text class="label" x="{lb.x + dx:.1f}" y="{y_text}" text-anchor="{lb.anchor}">'
            f"{escape(lb.text)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _curve(series: list[list[Any]], column: int, title: str, unit: str, recovered: float | None) -> str:
    points = [(row[0], row[column]) for row in series if row[column] is not None]
    width, height, pad = 320, 150, 34
    parts = [
        f'<svg class="curve-chart" viewBox="0 0 {width} {height + 30}" width="32%" role="img" aria-label="{title}">'
    ]
    parts.append(f'<text x="{pad}" y="14">{escape(title)}</text>')
    if not points:
        parts.append(f'<text x="{pad}" y="60" class="muted">no data</text></svg>')
        return "".join(parts)
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    top = max(p[1] for p in points) or 1.0

    def xy(t: float, v: float) -> tuple[float, float]:
        x = pad + (t - t0) / ((t1 - t0) or 1.0) * (width - pad - 8)
        return x, height - v / top * (height - 30)

    for frac in (0.0, 0.5, 1.0):
        y = height - frac * (height - 30)
        parts.append(f'<line class="grid" x1="{pad}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}"/>')
        parts.append(f'<text x="2" y="{y + 4:.1f}">{_fmt(top * frac, unit, 2)}</text>')
    for t, css in ((0.0, "kill"), (recovered, "whole")):
        if t is not None and t0 <= t <= t1:
            x, _ = xy(t, 0)
            parts.append(
                f'<line class="{css}" x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height}" stroke-dasharray="3 3"/>'
            )
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(xy(t, v) for t, v in points)
    )
    parts.append(f'<path class="curve" stroke="#2c3e50" d="{path}"/>')
    parts.append(f'<text x="{pad}" y="{height + 22}">{t0:+.0f}s … {t1:+.0f}s from the kill</text></svg>')
    return "".join(parts)


def impact_section(report: dict[str, Any]) -> str:
    """The client's own view first (the prober), then the server's (Prometheus), labelled; and a
    plain word when no client sent anything, instead of figures that would read as "no cost"."""
    impact = report.get("impact")
    if not impact:
        return '<p class="muted">No client impact measured (no Prometheus, or no kill).</p>'
    parts = []
    if impact.get("client"):
        parts.append(_client_section(impact["client"]))
    if impact.get("note"):
        leaderless = (
            f" {_fmt(impact.get('regionsWithoutLeader'))} region(s) had no leader for "
            f"{_fmt(impact.get('leaderlessSeconds'), 's')}."
            if impact.get("regionsWithoutLeader")
            else ""
        )
        parts.append(
            f'<div id="impact"><p id="impact-note" class="muted">{escape(impact["note"])}.{leaderless}</p></div>'
        )
    elif impact.get("error"):
        parts.append(
            f'<p class="muted">Server-side impact could not be measured: {escape(impact["error"])}</p>'
        )
    elif impact.get("during") or impact.get("series"):
        parts.append(
            "<h3>Server side: TiKV's gRPC metrics (Prometheus)</h3>" + _server_section(report, impact)
        )
    return "".join(parts)


def _figure_rows(figures: dict[str, Any]) -> str:
    rows = []
    for window in ("before", "during", "after"):
        f = figures.get(window) or {}
        rows.append(
            f"<tr><th>{window}</th><td>{_fmt(f.get('requests'))}</td><td>{_fmt(f.get('failed'))}</td>"
            f"<td>{_fmt(f.get('stalled'))}</td><td>{_fmt(f.get('errorRatio'))}</td>"
            f"<td>{_fmt(f.get('p50Seconds'), 's')}</td><td>{_fmt(f.get('p99Seconds'), 's')}</td></tr>"
        )
    return "".join(rows)


_FIGURE_HEAD = (
    "<tr><th></th><th>requests</th><th>failed</th><th>stalled</th>"
    "<th>error ratio</th><th>p50</th><th>p99</th></tr>"
)


def _writes_section(writes: dict[str, Any]) -> str:
    removed = writes.get("removed")
    put_back = (
        f"{_fmt(removed)} key(s) it wrote removed at the end"
        if removed is not None
        else f"its keys not removed: {escape(writes.get('error') or 'unknown')}"
    )
    return (
        f"<h4>Of which writes, under {escape(repr(writes.get('keyPrefix')))}: "
        f"{_fmt(writes.get('regions'))} region(s)</h4>"
        f'<table id="client-writes">{_FIGURE_HEAD}{_figure_rows(writes)}</table>'
        f"<p>{put_back}; {_fmt(writes.get('foreignKeys'))} key(s) holding someone else's value left alone.</p>"
    )


def _client_section(client: dict[str, Any]) -> str:
    writes = _writes_section(client["writes"]) if client.get("writes") else ""
    if client.get("error"):
        return f'<p class="muted">TiKV\'s client: no figures ({escape(client["error"])})</p>{writes}'
    regions = ", ".join(
        f"{r['regionId']} ({_fmt(r.get('unavailableSeconds'), 's')})"
        for r in client.get("unavailableRegions") or []
    )
    still_count = client.get("regionsStillUnavailable") or 0
    still = (
        f" ({still_count} still not answering when the prober stopped: their seconds are a lower bound)"
        if still_count
        else ""
    )
    return (
        "<h3>What a client met: TiKV's own client, one key per region</h3>"
        f'<table id="client-impact">{_FIGURE_HEAD}{_figure_rows(client)}</table>'
        f"<p>Some region answered nothing for {_fmt(client.get('unavailableSeconds'), 's')}; "
        f"{_fmt(client.get('regionsUnavailable'))} of {_fmt(client.get('regions'))} region(s) probed"
        f"{': ' + escape(regions) if regions else ''}"
        f"{still}. Each region read at most "
        f"{_fmt(client.get('probeIntervalSeconds'), 's')} apart (deadline {_fmt(client.get('deadlineSeconds'), 's')}).</p>"
        f"{writes}"
    )


def _server_section(report: dict[str, Any], impact: dict[str, Any]) -> str:
    kill = _t(report["timeline"].get("injectedAt"))
    whole = _t(report["timeline"].get("recoveredAt"))
    recovered = whole - kill if whole is not None and kill is not None else None
    series = impact.get("series") or []
    charts = "".join(
        _curve(series, col, title, unit, recovered)
        for col, title, unit in ((1, "requests / s", ""), (2, "error ratio", ""), (3, "p99 latency", "s"))
    )
    rows = []
    for window in ("before", "during", "after"):
        f = impact.get(window) or {}
        rows.append(
            f"<tr><th>{window}</th><td>{_fmt(f.get('requestsPerSecond'))}</td>"
            f"<td>{_fmt(f.get('errorRatio'))}</td><td>{_fmt(f.get('p99Seconds'), 's')}</td></tr>"
        )
    worst = impact.get("worst") or {}
    worst_at = _t(worst.get("at"))
    extra = (
        f"<p>Worst moment: {'+' + format(worst_at - kill, '.1f') + 's' if worst_at and kill else '-'} "
        f"(error ratio {_fmt(worst.get('errorRatio'))}, p99 {_fmt(worst.get('p99Seconds'), 's')}). "
        f"Requests failed during {_fmt(impact.get('unavailableSeconds'), 's')}; "
        f"{_fmt(impact.get('regionsWithoutLeader'))} region(s) had no leader for "
        f"{_fmt(impact.get('leaderlessSeconds'), 's')}. Resolution {_fmt(impact.get('resolutionSeconds'), 's')}.</p>"
    )
    return (
        f'<div id="impact">{charts}</div><table id="impact-figures"><tr><th></th><th>requests/s</th>'
        f"<th>error ratio</th><th>p99</th></tr>{''.join(rows)}</table>{extra}"
    )


def history_section(report: dict[str, Any]) -> str:
    runs = [h for h in report["history"] if h.get("timeToDetectSeconds") or h.get("timeToRecoverSeconds")]
    m = report["metrics"]
    runs = [
        *reversed(runs),
        {"generation": "now", **{k: m.get(k) for k in ("timeToDetectSeconds", "timeToRecoverSeconds")}},
    ]
    top = (
        max(
            [r.get("timeToDetectSeconds") or 0 for r in runs]
            + [r.get("timeToRecoverSeconds") or 0 for r in runs]
        )
        or 1.0
    )
    width, bar = 1000, 16
    parts = [
        f'<svg id="history" viewBox="0 0 {width} {len(runs) * 2 * bar + 20}" width="100%" role="img" aria-label="TTD and TTR across runs">'
    ]
    for i, run in enumerate(runs):
        y = 10 + i * 2 * bar
        parts.append(f'<text x="0" y="{y + 12}">run {escape(str(run.get("generation")))}</text>')
        for j, (key, css) in enumerate(
            (("timeToDetectSeconds", "detect"), ("timeToRecoverSeconds", "whole"))
        ):
            value = run.get(key)
            if value is None:
                continue
            length = value / top * (width - 200)
            parts.append(
                f'<rect class="{css}" x="90" y="{y + j * (bar - 4)}" width="{length:.1f}" height="{bar - 6}"/>'
            )
            parts.append(
                f'<text x="{95 + length:.1f}" y="{y + j * (bar - 4) + 9}">{"TTD" if j == 0 else "TTR"} {value:.1f}s</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def to_html(report: dict[str, Any]) -> str:
    victim = report["victim"] or {}
    m = report["metrics"]
    d = report.get("diagnosis") or {}
    verdict = report["verdict"] or report["phase"] or "-"
    diagnosis = (
        f"<p><b>{escape(d.get('rootCauseCategory', ''))}</b> ({escape(d.get('confidence', ''))} confidence, by "
        f"{escape(d.get('diagnoser', ''))}{', blind' if d.get('blind') else ''}): {escape(d.get('summary', ''))}</p>"
        f"<p>Matches the injected fault: <b>{d.get('matchesInjectedFault')}</b></p>"
        if d
        else '<p class="muted">No diagnosis.</p>'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chaos drill {escape(report["namespace"])}/{escape(report["name"])}</title>
<style>{CSS}</style></head><body>
<h1>Chaos drill {escape(report["namespace"])}/{escape(report["name"])}</h1>
<p><span class="verdict {escape(verdict)}" id="verdict">{escape(verdict)}</span> {escape(report["message"] or "")}</p>
<table><tr><th>victim</th><td>{escape(str(victim.get("pod", "-")))} (store {escape(str(victim.get("storeId", "-")))})</td></tr>
<tr><th>time to detect</th><td>{escape(str(m.get("timeToDetect") or "-"))}</td></tr>
<tr><th>time to recover</th><td>{escape(str(m.get("timeToRecover") or "-"))}</td></tr></table>
<h2>Timeline</h2>
{timeline_svg(report)}
<h2>What clients felt</h2>
{impact_section(report)}
<h2>Diagnosis</h2>
{diagnosis}
<h2>This drill's runs: TTD and TTR</h2>
{history_section(report)}
</body></html>
"""
