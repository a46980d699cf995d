"""Each detection source's answer for a drill: the monitor's ticket, a Prometheus alerting rule,
an alert in Alertmanager. Watched from the kill until each answers or the detection window ends;
each is timed on its own, from the servers' timestamps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from controller.alerting.alertmanager import AlertmanagerClient
from controller.alerting.matching import AlertTiming, DrillFacts, RuleInfo, VictimIdentity, why_missed
from controller.alerting.watch import SourceLook, alerting_rules, look_alertmanager, look_prometheus
from controller.operator import recovery_moments
from controller.operator.clients import ClientCache
from controller.operator.model import DetectionSource
from controller.operator.state import Incident, SourceStatus, Timeline, Victim
from controller.prom import PrometheusClient


@dataclass
class AlertingClients:
    """One client per URL, built once and kept while used (bounded: see ClientCache)."""

    prometheus: ClientCache[PrometheusClient] = field(default_factory=lambda: ClientCache(PrometheusClient))
    alertmanager: ClientCache[AlertmanagerClient] = field(
        default_factory=lambda: ClientCache(AlertmanagerClient)
    )

    def prom(self, url: str) -> PrometheusClient:
        return self.prometheus.get(url)

    def am(self, url: str) -> AlertmanagerClient:
        return self.alertmanager.get(url)

    async def aclose(self) -> None:
        await self.prometheus.aclose()
        await self.alertmanager.aclose()


def identity(victim: Victim) -> VictimIdentity:
    return VictimIdentity(
        pod=victim.pod,
        namespace=victim.namespace,
        store_id=victim.store_id,
        store_address=victim.store_address or "",
        status_address=victim.status_address or "",
    )


async def watch_sources(
    clients: AlertingClients,
    specs: Sequence[DetectionSource],
    statuses: Sequence[SourceStatus],
    *,
    victim: Victim,
    kill: float,
    now: float,
    window_over: bool,
    window_seconds: float,
    incident: Incident | None,
    timeline: Timeline,
    rules_url: str,
) -> list[SourceStatus]:
    """The sources' statuses after one more look at those that have not answered."""
    by_name = {s.name: s for s in statuses}
    who = identity(victim)
    rules: dict[str, RuleInfo] | None = None
    out: list[SourceStatus] = []
    for spec in specs:
        st = by_name.get(spec.label) or SourceStatus(name=spec.label, type=spec.type, required=spec.required)
        if st.state in ("Detected", "Missed") or (st.state == "Error" and window_over and st.why):
            out.append(st)
            continue
        st = st.model_copy()
        if spec.type == "tickets":
            look = _ticket_look(incident, timeline)
        elif not spec.url:
            look = SourceLook(
                error=f"no URL: set url on the source or the controller's {_env_for(spec.type)}"
            )
        elif spec.type == "prometheus":
            look = await look_prometheus(
                clients.prom(spec.url), who, kill, now, spec.alertnames, spec.matchers
            )
        else:
            look = await look_alertmanager(clients.am(spec.url), who, kill, spec.alertnames, spec.matchers)
        if look.error:
            st.state, st.why = "Error", look.error
        elif look.found is not None:
            found = look.found
            st.state, st.why = "Detected", None
            st.alert = found.name or None
            st.labels = found.labels or None
            st.pending_at = found.pending_at
            st.firing_at = found.firing_at
            st.seen_at = now
            st.ttd_seconds = (
                None if found.firing_at is None else recovery_moments.seconds_between(kill, found.firing_at)
            )
            if spec.type == "tickets" and incident is not None:
                st.ticket_id = incident.ticket_id
        else:
            st.state, st.why = "Watching", look.suppressed
            pending = next((p for p in look.pending if p.pending_at is not None), None)
            if pending is not None and st.pending_at is None:
                st.pending_at, st.alert = pending.pending_at, pending.name
        if window_over and st.state == "Watching":
            if rules is None:
                rules = await alerting_rules(clients.prom(rules_url)) if rules_url else {}
            st.state = "Missed"
            st.why = look.suppressed or _why(
                spec, st, rules, kill, timeline, window_seconds, look.already_active
            )
        out.append(st)
    return out


def _ticket_look(incident: Incident | None, timeline: Timeline) -> SourceLook:
    if incident is None or timeline.detected_at is None:
        return SourceLook()
    return SourceLook(found=AlertTiming(incident.invariant, {}, firing_at=timeline.detected_at))


def _why(
    spec: DetectionSource,
    st: SourceStatus,
    rules: dict[str, RuleInfo],
    kill: float,
    timeline: Timeline,
    window_seconds: float,
    already_active: tuple[str, ...],
) -> str:
    if spec.type == "tickets":
        return f"the monitor opened no ticket for the victim's store within {window_seconds:.0f}s"
    facts = DrillFacts(
        detection_window=window_seconds,
        outage_seconds=None if timeline.store_up_at is None else timeline.store_up_at - kill,
        pending={st.alert: st.pending_at - kill} if st.alert and st.pending_at else {},
        already_active=frozenset(already_active),
    )
    return why_missed(spec.alertnames, rules, facts)


def _env_for(kind: str) -> str:
    return {"prometheus": "CHAOSDEMO_PROMETHEUS_URL", "alertmanager": "CHAOSDEMO_ALERTMANAGER_URL"}.get(
        kind, ""
    )
