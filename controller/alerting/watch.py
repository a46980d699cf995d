"""One look at one alerting source for a drill: has an alert that counts fired, and when?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.alerting.alertmanager import AlertmanagerClient, AlertmanagerError
from controller.alerting.matching import (
    AlertTiming,
    RuleInfo,
    VictimIdentity,
    active_at_kill,
    counts,
    first_firing,
    parse_go_duration,
    timings_from_alerts_series,
)
from controller.prom.client import PrometheusClient, PrometheusError
from controller.timefmt import parse_rfc3339

# ALERTS is read from a little before the kill, to see which alerts were already active.
LOOKBACK_SECONDS = 60.0


@dataclass(frozen=True)
class SourceLook:
    """What a source shows now: a matching alert (``found``), pending ones, or an error."""

    found: AlertTiming | None = None
    pending: tuple[AlertTiming, ...] = ()
    error: str | None = None
    suppressed: str | None = None  # Alertmanager holds a matching alert, silenced or inhibited
    already_active: tuple[str, ...] = ()  # matching alert names that were active before the kill


async def look_prometheus(
    prom: PrometheusClient,
    victim: VictimIdentity,
    kill: float,
    now: float,
    alertnames: list[str],
    matchers: dict[str, str],
) -> SourceLook:
    """Prometheus' own record: ``ALERTS`` samples since the kill (so a restarted controller
    reconstructs the same times), cross-checked with ``/api/v1/alerts``' ``activeAt``."""
    try:
        series = await prom.raw_samples('ALERTS{alertstate=~"pending|firing"}', kill - LOOKBACK_SECONDS, now)
        live = await prom.alerts()
    except PrometheusError as exc:
        return SourceLook(error=str(exc))
    active_before = {
        _key(a.get("labels") or {})
        for a in live
        if a.get("activeAt") and parse_rfc3339(str(a["activeAt"])) <= kill
    }
    timings = [
        t
        for t in timings_from_alerts_series(series, kill)
        if _key(t.labels) not in active_before and counts(t.labels, victim, alertnames, matchers)
    ]
    found = first_firing(timings)
    before = [
        labels.get("alertname", "")
        for labels in active_at_kill(series, kill)
        if counts(labels, victim, alertnames, matchers)
    ]
    return SourceLook(
        found=found,
        pending=tuple(t for t in timings if t.firing_at is None),
        already_active=tuple(sorted(set(before))),
    )


async def look_alertmanager(
    am: AlertmanagerClient,
    victim: VictimIdentity,
    kill: float,
    alertnames: list[str],
    matchers: dict[str, str],
) -> SourceLook:
    """Alertmanager's alerts: ``startsAt`` is when Prometheus saw the alert fire. Only an active
    one is a detection (a silenced or inhibited alert pages nobody)."""
    try:
        alerts = await am.alerts()
    except AlertmanagerError as exc:
        return SourceLook(error=str(exc))
    found: list[AlertTiming] = []
    suppressed = None
    for alert in alerts:
        labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
        starts = alert.get("startsAt")
        if (
            not starts
            or parse_rfc3339(str(starts)) <= kill
            or not counts(labels, victim, alertnames, matchers)
        ):
            continue
        state = (alert.get("status") or {}).get("state", "active")
        timing = AlertTiming(labels.get("alertname", ""), labels, firing_at=parse_rfc3339(str(starts)))
        if state == "active":
            found.append(timing)
        else:
            suppressed = f"{timing.name} reached Alertmanager but is {state}"
    first = min(found, key=lambda t: t.firing_at or 0.0) if found else None
    return SourceLook(found=first, suppressed=suppressed)


async def alerting_rules(prom: PrometheusClient) -> dict[str, RuleInfo]:
    """The loaded alerting rules by name (empty when Prometheus cannot say)."""
    try:
        rules: list[dict[str, Any]] = await prom.alerting_rules()
    except PrometheusError:
        return {}
    return {
        str(r["name"]): RuleInfo(
            name=str(r["name"]),
            query=str(r.get("query", "")),
            for_seconds=parse_go_duration(r.get("duration")),
            interval_seconds=parse_go_duration(r.get("groupInterval")) or None,
        )
        for r in rules
        if r.get("name")
    }


def _key(labels: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in labels.items() if k != "alertstate"))
