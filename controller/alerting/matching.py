"""Which alerts count for a drill, when they went pending and fired, and why a rule missed.

Pure functions over alert labels and the servers' own timestamps; ``watch.py`` fetches them.

An alert counts for a drill only when its labels tie it to the drill:
- to a victim: its ``instance`` is the victim's status or store address (or the victim pod's own
  DNS name, in the victim's namespace), its ``pod`` is the victim pod in the victim's namespace,
  or its store id is a victim's and the alert is tied to the drilled cluster as well;
- or, for an alert that names no store at all (PD's rules are summed by PD instance), to the
  drilled cluster: the labels the user declared for the source (``clusterLabels``, e.g.
  ``cluster: prod``), else its namespace, else its instance (PD's address) or its job (the
  configured PD or TiKV job).
Anything else (another store's alert, a node-exporter disk alert, another application's alert) is
seen and ignored, with the reason. An alert already active at the kill never counts.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from controller.prom.client import Series

# Labels that say "this alert is about one store".
STORE_LABELS = ("pod", "store", "store_id")


@dataclass(frozen=True)
class VictimIdentity:
    pod: str
    namespace: str
    store_id: int | None  # None: the victim is a PD member, not a store
    store_address: str  # PD's advertised address, host:20160 ("" for a PD member)
    status_address: str = ""  # the status port Prometheus scrapes, host:20180


@dataclass(frozen=True)
class ClusterIdentity:
    """What ties an alert that names no victim to the drilled cluster."""

    namespace: str
    # host:port addresses of the cluster's own endpoints (PD's address, the victims' ports).
    addresses: frozenset[str] = frozenset()
    tikv_job: str = "tikv"
    pd_job: str = "pd"
    # The source's ``clusterLabels``: when declared, they alone say "this cluster".
    declared: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def around(
        cls, namespace: str, pd_address: str, victims: Sequence[VictimIdentity], *, tikv_job: str, pd_job: str
    ) -> ClusterIdentity:
        """The cluster a drill broke, as alert labels can name it: PD's address (host:port, as
        Prometheus scrapes it) and the victims' addresses are its own."""
        addresses = {pd_address.split("://", 1)[-1].rstrip("/")}
        addresses |= {a for v in victims for a in (v.store_address, v.status_address) if a}
        return cls(namespace=namespace, addresses=frozenset(addresses), tikv_job=tikv_job, pd_job=pd_job)


@dataclass(frozen=True)
class Match:
    """Whether one alert counts for the drill, and the reason either way."""

    counts: bool
    reason: str
    victim: str | None = None  # the victim pod it names; None: a cluster-level alert
    # Left out by the source's own alertnames or matchers: not listed as ignored (the user
    # narrowed the source on purpose; only alerts it would otherwise see are explained).
    filtered: bool = False


@dataclass(frozen=True)
class AlertTiming:
    name: str
    labels: dict[str, str]
    pending_at: float | None = None
    firing_at: float | None = None
    # A notification: the alert's own startsAt (``firing_at`` is when the page arrived).
    started_at: float | None = None


@dataclass(frozen=True)
class IgnoredAlert:
    """An alert that fired during the drill but does not count for it, and why."""

    name: str
    reason: str
    firing_at: float | None = None


# How many ignored alerts a source keeps (the first to fire): status stays small.
IGNORED_KEPT = 10


def ignored(alerts: Iterable[tuple[AlertTiming, Match]]) -> tuple[IgnoredAlert, ...]:
    """The fired alerts that do not count, first fired first, one per name and reason."""
    seen: dict[tuple[str, str], IgnoredAlert] = {}
    for timing, match in sorted(alerts, key=lambda a: a[0].firing_at or 0.0):
        if match.counts or match.filtered or timing.firing_at is None:
            continue
        seen.setdefault(
            (timing.name, match.reason), IgnoredAlert(timing.name, match.reason, timing.firing_at)
        )
    return tuple(seen.values())[:IGNORED_KEPT]


@dataclass(frozen=True)
class RuleInfo:
    name: str
    query: str
    for_seconds: float
    interval_seconds: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # the rule's static labels


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0]


def _dns_pod_and_namespace(instance: str) -> tuple[str, str | None]:
    """``tikv-1.tikv-peer.tikv.svc:20180`` -> (tikv-1, tikv); an IP or a bare name has no namespace."""
    host = _host(instance)
    if re.fullmatch(r"[0-9.]+|\[?[0-9a-fA-F:]+\]?", host):
        return "", None
    parts = host.split(".")
    return parts[0], parts[2] if len(parts) >= 3 else None


def names_a_store(labels: Mapping[str, str], cluster: ClusterIdentity) -> bool:
    return labels.get("job") == cluster.tikv_job or any(k in labels for k in STORE_LABELS)


def _store_ids(labels: Mapping[str, str]) -> set[str]:
    return {labels[k] for k in ("store", "store_id") if labels.get(k)}


def in_cluster(labels: Mapping[str, str], cluster: ClusterIdentity) -> str | None:
    """Why the labels are this cluster's, or None when nothing says so."""
    if cluster.declared:
        if all(labels.get(k) == v for k, v in cluster.declared.items()):
            return "carries the declared cluster labels " + _pairs(cluster.declared)
        return None
    if labels.get("namespace"):
        return f"namespace {cluster.namespace}" if labels["namespace"] == cluster.namespace else None
    instance = labels.get("instance", "")
    if instance:
        if instance in cluster.addresses:
            return f"instance {instance} is this cluster's"
        _, namespace = _dns_pod_and_namespace(instance)
        return f"instance {instance} is in namespace {namespace}" if namespace == cluster.namespace else None
    if labels.get("job") in (cluster.pd_job, cluster.tikv_job):
        return f"job {labels['job']}"
    return None


def _victim_by_address(labels: Mapping[str, str], victims: Sequence[VictimIdentity]) -> VictimIdentity | None:
    instance = labels.get("instance", "")
    if not instance:
        return None
    pod, namespace = _dns_pod_and_namespace(instance)
    for v in victims:
        if instance in {v.status_address, v.store_address} - {""}:
            return v
        if pod == v.pod and namespace in (None, v.namespace):
            return v
    return None


def judge(
    labels: Mapping[str, str],
    victims: Sequence[VictimIdentity],
    cluster: ClusterIdentity,
    alertnames: Iterable[str] = (),
    matchers: Mapping[str, str] | None = None,
) -> Match:
    """Does an alert with these labels count as noticing this drill's fault, and why (not)?"""
    names = set(alertnames)
    if names and labels.get("alertname") not in names:
        return Match(False, "not one of the source's alertnames", filtered=True)
    for key, value in (matchers or {}).items():
        if labels.get(key) != value:
            return Match(False, f"lacks the matcher {key}={value}", filtered=True)
    victim = _victim_by_address(labels, victims)
    if victim is not None:
        return Match(True, f"its instance is the victim {victim.pod}", victim.pod)
    pod = labels.get("pod")
    if pod:
        for v in victims:
            if pod == v.pod and labels.get("namespace") == v.namespace:
                return Match(True, f"its pod is the victim {v.namespace}/{v.pod}", v.pod)
            if pod == v.pod and "namespace" not in labels and in_cluster(labels, cluster):
                return Match(True, f"its pod is the victim {v.pod} of this cluster", v.pod)
    ids = _store_ids(labels)
    cluster_tie = in_cluster(labels, cluster)
    for v in victims:
        if v.store_id is not None and str(v.store_id) in ids:
            if cluster_tie:
                return Match(True, f"names the victim's store {v.store_id}; {cluster_tie}", v.pod)
            return Match(
                False,
                f"names store {v.store_id}, but nothing ties it to this cluster (no namespace, instance, "
                "job or declared clusterLabels: a rule summed by store id alone drops them)",
            )
    if names_a_store(labels, cluster):
        return Match(False, f"about {_what_store(labels)}, not a victim")
    if cluster_tie:
        return Match(True, f"a cluster-level alert: {cluster_tie}")
    if cluster.declared:
        return Match(False, "lacks the declared cluster labels " + _pairs(cluster.declared))
    return Match(
        False, f"names neither a victim nor this cluster ({_pairs(_identifying(labels)) or 'no labels'})"
    )


def _what_store(labels: Mapping[str, str]) -> str:
    if labels.get("pod"):
        return f"pod {labels.get('namespace', '?')}/{labels['pod']}"
    if _store_ids(labels):
        return "store " + ", ".join(sorted(_store_ids(labels)))
    return f"instance {labels.get('instance', '?')}"


def _identifying(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: labels[k] for k in ("job", "instance", "namespace", "cluster") if labels.get(k)}


def _pairs(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _by_alert(series: Iterable[Series]) -> dict[tuple[tuple[str, str], ...], list[tuple[float, str]]]:
    """Each alert's samples (labels without ``alertstate``), as (time, state), in time order."""
    grouped: dict[tuple[tuple[str, str], ...], list[tuple[float, str]]] = {}
    for s in series:
        labels = {k: v for k, v in s.labels.items() if k not in ("alertstate", "__name__")}
        grouped.setdefault(tuple(sorted(labels.items())), []).extend(
            (t, s.labels.get("alertstate", "")) for t, _ in s.points
        )
    return {key: sorted(samples) for key, samples in grouped.items()}


def _evaluation_step(grouped: dict[tuple[tuple[str, str], ...], list[tuple[float, str]]]) -> float:
    """The rule evaluation interval as the samples show it: the smallest gap between two of an
    alert's consecutive samples (ALERTS is written at every evaluation while an alert is active)."""
    gaps = [
        b[0] - a[0] for samples in grouped.values() for a, b in itertools.pairwise(samples) if b[0] > a[0]
    ]
    return min(gaps, default=1.0)


def _activations(samples: list[tuple[float, str]], step: float) -> list[list[tuple[float, str]]]:
    """The runs of samples with no evaluation missing between them: each is one activation (an
    alert that resolved and came back is two)."""
    runs: list[list[tuple[float, str]]] = []
    for sample in samples:
        if runs and sample[0] - runs[-1][-1][0] <= step * 1.5:
            runs[-1].append(sample)
        else:
            runs.append([sample])
    return runs


def timings_from_alerts_series(series: Iterable[Series], kill: float) -> list[AlertTiming]:
    """Prometheus' ``ALERTS`` samples, grouped per alert (labels without ``alertstate``): the first
    pending and the first firing sample of its first activation after the kill. An alert active
    at the kill is left out (see ``active_at_kill``); one that had resolved before it is not."""
    grouped = _by_alert(series)
    step = _evaluation_step(grouped)
    out = []
    for key, samples in grouped.items():
        runs = _activations(samples, step)
        if any(_active_at(run, kill, step) for run in runs):
            continue
        after = next((run for run in runs if run[0][0] > kill), None)
        if after is None:
            continue
        labels = dict(key)
        out.append(
            AlertTiming(
                name=labels.get("alertname", ""),
                labels=labels,
                pending_at=next((t for t, state in after if state == "pending"), None),
                firing_at=next((t for t, state in after if state == "firing"), None),
            )
        )
    return out


def _active_at(run: list[tuple[float, str]], kill: float, step: float) -> bool:
    return run[0][0] <= kill and run[-1][0] >= kill - step * 1.5


def active_at_kill(series: Iterable[Series], kill: float) -> list[dict[str, str]]:
    """The alerts (labels without ``alertstate``) that were active at the kill, pending or firing
    (their activation began before it and lasted up to it): they cannot tell this fault apart,
    whatever they do after it. One that resolved before the kill does not count here."""
    grouped = _by_alert(series)
    step = _evaluation_step(grouped)
    return [
        dict(key)
        for key, samples in grouped.items()
        if any(_active_at(run, kill, step) for run in _activations(samples, step))
    ]


def first_firing(timings: Iterable[AlertTiming]) -> AlertTiming | None:
    fired = [t for t in timings if t.firing_at is not None]
    return min(fired, key=lambda t: t.firing_at or 0.0) if fired else None


def parse_go_duration(text: str | float | int | None) -> float:
    """Prometheus' rule ``duration`` is seconds in the API; ``for:`` in files is '1m'."""
    if text is None or text == "":
        return 0.0
    if isinstance(text, int | float):
        return float(text)
    total, units = 0.0, {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for number, unit in re.findall(r"([0-9.]+)(ms|s|m|h|d)", text):
        total += float(number) * units[unit]
    return total
