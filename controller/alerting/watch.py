"""One look at one alerting source for a drill: has an alert that counts fired, and when?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.alerting.alertmanager import AlertmanagerClient, AlertmanagerError
from controller.alerting.matching import (
    AlertTiming,
    ClusterIdentity,
    IgnoredAlert,
    Match,
    RuleInfo,
    VictimIdentity,
    active_at_kill,
    first_firing,
    ignored,
    judge,
    parse_go_duration,
    timings_from_alerts_series,
)
from controller.alerting.notifications import NotificationLog
from controller.prom.client import PrometheusClient, PrometheusError
from controller.timefmt import parse_rfc3339

# ALERTS is read from a little before the kill, to see which alerts were already active.
LOOKBACK_SECONDS = 60.0


@dataclass(frozen=True)
class Scope:
    """Whom a source's alerts must be about: the victims or the cluster, filtered as the source says."""

    victims: Sequence[VictimIdentity]
    cluster: ClusterIdentity
    alertnames: Sequence[str] = ()
    matchers: Mapping[str, str] = field(default_factory=dict)

    def judge(self, labels: Mapping[str, str]) -> Match:
        return judge(labels, self.victims, self.cluster, self.alertnames, self.matchers)


@dataclass(frozen=True)
class SourceLook:
    """What a source shows now: a matching alert (``found``), pending ones, or an error."""

    found: AlertTiming | None = None
    tie: Match | None = None  # why ``found`` counts
    pending: tuple[AlertTiming, ...] = ()
    error: str | None = None
    suppressed: str | None = None  # Alertmanager holds a matching alert, silenced or inhibited
    already_active: tuple[str, ...] = ()  # matching alert names that were active before the kill
    ignored: tuple[IgnoredAlert, ...] = ()  # fired during the drill, but not about it


def _first(judged: list[tuple[AlertTiming, Match]]) -> tuple[AlertTiming | None, Match | None]:
    found = first_firing(t for t, m in judged if m.counts)
    return found, next((m for t, m in judged if t is found), None)


async def look_prometheus(prom: PrometheusClient, scope: Scope, kill: float, now: float) -> SourceLook:
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
    judged = [
        (t, scope.judge(t.labels))
        for t in timings_from_alerts_series(series, kill)
        if _key(t.labels) not in active_before
    ]
    found, tie = _first(judged)
    before = [
        labels.get("alertname", "") for labels in active_at_kill(series, kill) if scope.judge(labels).counts
    ]
    return SourceLook(
        found=found,
        tie=tie,
        pending=tuple(t for t, m in judged if m.counts and t.firing_at is None),
        already_active=tuple(sorted(set(before))),
        ignored=ignored(judged),
    )


async def look_alertmanager(am: AlertmanagerClient, scope: Scope, kill: float) -> SourceLook:
    """Alertmanager's alerts: ``startsAt`` is when Prometheus saw the alert fire. Only an active
    one is a detection (a silenced or inhibited alert pages nobody)."""
    try:
        alerts = await am.alerts()
    except AlertmanagerError as exc:
        return SourceLook(error=str(exc))
    judged: list[tuple[AlertTiming, Match]] = []
    suppressed = None
    for alert in alerts:
        labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
        starts = alert.get("startsAt")
        if not starts or parse_rfc3339(str(starts)) <= kill:
            continue
        timing = AlertTiming(labels.get("alertname", ""), labels, firing_at=parse_rfc3339(str(starts)))
        match = scope.judge(labels)
        state = (alert.get("status") or {}).get("state", "active")
        if state == "active" or not match.counts:
            judged.append((timing, match))
        else:
            suppressed = f"{timing.name} reached Alertmanager but is {state}"
    found, tie = _first(judged)
    return SourceLook(found=found, tie=tie, suppressed=suppressed, ignored=ignored(judged))


def look_notifications(notifications: NotificationLog, scope: Scope, kill: float) -> SourceLook:
    """The webhook notifications received since the kill: the first that pages an alert which
    counts and started after the kill is the detection, timed at its arrival."""
    judged = [
        (
            AlertTiming(alert.name, alert.labels, firing_at=n.received_at, started_at=alert.started),
            scope.judge(alert.labels),
        )
        for n in notifications.since(kill)
        for alert in n.alerts
        if alert.status == "firing" and (alert.started or 0.0) > kill
    ]
    found, tie = _first(judged)
    return SourceLook(found=found, tie=tie, ignored=ignored(judged))


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
            labels={str(k): str(v) for k, v in (r.get("labels") or {}).items()},
        )
        for r in rules
        if r.get("name")
    }


def _key(labels: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in labels.items() if k != "alertstate"))
