"""Each detection source's answer for a drill: the monitor's ticket, a Prometheus alerting rule,
an alert in Alertmanager. Watched from the kill until each answers or the detection window ends;
each is timed on its own, from the servers' timestamps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from controller.alerting.alertmanager import AlertmanagerClient
from controller.alerting.matching import AlertTiming, ClusterIdentity, RuleInfo, VictimIdentity
from controller.alerting.misses import DrillFacts, why_missed
from controller.alerting.notifications import NotificationLog
from controller.alerting.replay import RuleReplay, replay_rule
from controller.alerting.watch import (
    Scope,
    SourceLook,
    alerting_rules,
    look_alertmanager,
    look_notifications,
    look_prometheus,
)
from controller.httpaccess import PLAIN, ServerAccess
from controller.operator import recovery_moments
from controller.operator.clients import ClientCache
from controller.operator.model import DetectionSource
from controller.operator.state import IgnoredAlertStatus, Incident, SourceStatus, Timeline, Victim
from controller.prom import PrometheusClient


@dataclass
class AlertingClients:
    """One client per URL and access (TLS, credentials), built once and kept while used
    (bounded: see ClientCache)."""

    prometheus: ClientCache[PrometheusClient] = field(init=False)
    alertmanager: ClientCache[AlertmanagerClient] = field(init=False)
    # What the controller's webhook receiver took in (None: the controller runs no receiver).
    notifications: NotificationLog | None = None
    _access: dict[str, ServerAccess] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.prometheus = ClientCache(
            lambda key: PrometheusClient(self._url(key), access=self._access_of(key))
        )
        self.alertmanager = ClientCache(
            lambda key: AlertmanagerClient(self._url(key), access=self._access_of(key))
        )

    def _key(self, url: str, access: ServerAccess) -> str:
        if not access.identity:
            return url
        self._access[access.identity] = access
        return f"{url}#{access.identity}"

    @staticmethod
    def _url(key: str) -> str:
        return key.partition("#")[0]

    def _access_of(self, key: str) -> ServerAccess:
        identity = key.partition("#")[2]
        return self._access[identity] if identity else PLAIN

    def prom(self, url: str, access: ServerAccess = PLAIN) -> PrometheusClient:
        return self.prometheus.get(self._key(url, access))

    def am(self, url: str, access: ServerAccess = PLAIN) -> AlertmanagerClient:
        return self.alertmanager.get(self._key(url, access))

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


def cluster_identity(
    victims: Sequence[Victim], namespace: str, pd_address: str, *, tikv_job: str, pd_job: str
) -> ClusterIdentity:
    """The drilled cluster as alert labels can name it (a source's clusterLabels are added per source)."""
    who = [identity(v) for v in victims]
    return ClusterIdentity.around(namespace, pd_address, who, tikv_job=tikv_job, pd_job=pd_job)


async def watch_sources(
    clients: AlertingClients,
    specs: Sequence[DetectionSource],
    statuses: Sequence[SourceStatus],
    *,
    victims: Sequence[Victim],
    cluster: ClusterIdentity,
    kill: float,
    now: float,
    window_over: bool,
    window_seconds: float,
    incident: Incident | None,
    timeline: Timeline,
    reach: Mapping[str, ServerAccess],
    rules: PrometheusClient | None,
) -> list[SourceStatus]:
    """The sources' statuses after one more look at those that have not answered (``reach``:
    each source's TLS and credentials by its label; ``rules``: the Prometheus whose alerting
    rules explain a miss)."""
    by_name = {s.name: s for s in statuses}
    who = [identity(v) for v in victims]
    rule_infos: dict[str, RuleInfo] | None = None
    out: list[SourceStatus] = []
    for spec in specs:
        st = by_name.get(spec.label) or SourceStatus(name=spec.label, type=spec.type, required=spec.required)
        if st.state in ("Detected", "Missed") or (st.state == "Error" and window_over and st.why):
            out.append(st)
            continue
        st = st.model_copy()
        scope = _scope(spec, who, cluster)  # whom this source's alerts must be about
        if spec.type == "tickets":
            look = _ticket_look(incident, timeline)
        elif spec.type == "alertmanager-notification":
            look = (
                look_notifications(clients.notifications, scope, kill)
                if clients.notifications is not None
                else SourceLook(
                    error="the controller runs no webhook receiver: set CHAOSDEMO_WEBHOOK_ADDRESS "
                    "and route Alertmanager to it (README: timing the page)"
                )
            )
        elif not spec.url:
            look = SourceLook(
                error=f"no URL: set url on the source or the controller's {_env_for(spec.type)}"
            )
        elif spec.type == "prometheus":
            look = await look_prometheus(
                clients.prom(spec.url, reach.get(spec.label, PLAIN)), scope, kill, now
            )
        else:
            look = await look_alertmanager(clients.am(spec.url, reach.get(spec.label, PLAIN)), scope, kill)
        if look.ignored:
            st.ignored = [
                IgnoredAlertStatus(alert=i.name, reason=i.reason, firingAt=i.firing_at) for i in look.ignored
            ]
        if look.error:
            st.state, st.why = "Error", look.error
        elif look.found is not None:
            found = look.found
            st.state, st.why = "Detected", None
            st.alert = found.name or None
            st.labels = found.labels or None
            st.victim = look.tie.victim if look.tie else None
            st.pending_at = found.pending_at
            st.firing_at = found.firing_at
            st.alert_started_at = found.started_at
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
            if rule_infos is None:
                rule_infos = await alerting_rules(rules) if rules is not None else {}
            replays = (
                await _replays(rules, spec, rule_infos, scope, kill, now)
                if rules is not None and spec.type != "tickets"
                else {}
            )
            st.state = "Missed"
            st.why = look.suppressed or _why(
                spec, st, rule_infos, replays, kill, timeline, window_seconds, look.already_active
            )
        out.append(st)
    return out


def _scope(spec: DetectionSource, victims: list[VictimIdentity], cluster: ClusterIdentity) -> Scope:
    return Scope(
        victims=victims,
        cluster=replace(cluster, declared=spec.cluster_labels),
        alertnames=spec.alertnames,
        matchers=spec.matchers,
    )


async def _replays(
    prom: PrometheusClient,
    spec: DetectionSource,
    rules: dict[str, RuleInfo],
    scope: Scope,
    kill: float,
    now: float,
) -> dict[str, RuleReplay]:
    """Each expected rule's expression over the drill window, judged like its alerts would be."""
    return {
        name: await replay_rule(prom, rules[name], scope.judge, kill, now)
        for name in spec.alertnames
        if name in rules
    }


def _ticket_look(incident: Incident | None, timeline: Timeline) -> SourceLook:
    if incident is None or timeline.detected_at is None:
        return SourceLook()
    return SourceLook(found=AlertTiming(incident.invariant, {}, firing_at=timeline.detected_at))


def _why(
    spec: DetectionSource,
    st: SourceStatus,
    rules: dict[str, RuleInfo],
    replays: dict[str, RuleReplay],
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
    if spec.type == "alertmanager-notification":
        return why_no_page(replays, kill, window_seconds)
    return why_missed(spec.alertnames, rules, facts, replays)


def why_no_page(replays: dict[str, RuleReplay], kill: float, window_seconds: float) -> str:
    """No notification arrived: if the rule fired in Prometheus meanwhile, Alertmanager held it."""
    text = f"no notification about the drill reached the controller's receiver within {window_seconds:.0f}s"
    fired = {name: r.fires_at() for name, r in replays.items() if not r.error}
    fired_in_window = {name: at for name, at in fired.items() if at is not None}
    if not fired_in_window:
        return text + (
            "; " + ", ".join(f"{n} never met its for: in Prometheus" for n in fired) if fired else ""
        )
    name, at = min(fired_in_window.items(), key=lambda item: item[1])
    return (
        f"{text}; {name} fired in Prometheus at +{at - kill:.0f}s, so Alertmanager held its notification: "
        "group_wait, or group_interval when an earlier alert keeps its group open, inhibition, a silence, "
        "or a route that does not reach the controller"
    )


def _env_for(kind: str) -> str:
    return {"prometheus": "CHAOSDEMO_PROMETHEUS_URL", "alertmanager": "CHAOSDEMO_ALERTMANAGER_URL"}.get(
        kind, ""
    )
