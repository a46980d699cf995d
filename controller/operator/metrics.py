"""The controller's own Prometheus metrics. Drill figures carry ``cluster``: PD's cluster id
(``pd-<id>``), the same name tickets and guards use, so two spellings of one PD address are one
series."""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

TIME_BUCKETS = (0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 300)

DRILLS = Counter("chaosdemo_drills_total", "Drills finished, by verdict", ["verdict", "cluster"])
TIME_TO_DETECT = Histogram(
    "chaosdemo_time_to_detect_seconds", "Kill to the monitor's ticket", ["cluster"], buckets=TIME_BUCKETS
)
TIME_TO_RECOVER = Histogram(
    "chaosdemo_time_to_recover_seconds", "Kill to the store whole again", ["cluster"], buckets=TIME_BUCKETS
)
DETECTION_MISSES = Counter(
    "chaosdemo_detection_misses_total", "Drills whose fault the monitor never ticketed", ["cluster"]
)
UNKNOWN_CLUSTER = "unknown"  # a run that ended before PD ever answered


def cluster_label(ticket_cluster: str | None) -> str:
    return ticket_cluster or UNKNOWN_CLUSTER


REACTION = Histogram(
    "chaosdemo_reaction_seconds",
    "ChaosDemo created to victim deleted",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10),
)
STEP_ERRORS = Counter("chaosdemo_step_errors_total", "Drill steps that raised and will be retried", ["phase"])

# Per detection source (the monitor's tickets, the user's Prometheus rules and Alertmanager):
# what the dashboard's per-source TTD histograms and miss counts read.
SOURCE_TIME_TO_DETECT = Histogram(
    "chaosdemo_source_time_to_detect_seconds",
    "Kill to a detection source's first sign (ticket opened, alert firing), per source",
    ["source", "type", "cluster"],
    buckets=TIME_BUCKETS,
)
SOURCE_DETECTION_MISSES = Counter(
    "chaosdemo_source_detection_misses_total",
    "Drills a detection source never noticed",
    ["source", "type", "cluster"],
)
RESTORES_GAVE_UP = Counter(
    "chaosdemo_restores_gave_up_total",
    "Aborts and deletions whose restore gave up: the victim was not whole again in time",
    ["cluster"],
)
ACTIVE_DRILL_DEADLINE = Gauge(
    "chaosdemo_active_drill_deadline_timestamp_seconds",
    "When each drill in progress must have ended: its start plus the longest a run may last "
    "(its target lock's duration). A drill still here after it is stuck.",
    ["namespace", "name"],
)


def observe_sources(sources: list[Any], cluster: str) -> None:
    """At the end of a run: each source's time to detect, or its miss."""
    for s in sources:
        if s.state == "Detected" and s.ttd_seconds is not None:
            SOURCE_TIME_TO_DETECT.labels(s.name, s.type, cluster).observe(s.ttd_seconds)
        elif s.state == "Missed":
            SOURCE_DETECTION_MISSES.labels(s.name, s.type, cluster).inc()


def drill_active(namespace: str, name: str, deadline: float | None, *, cluster: str = "") -> None:
    if deadline is not None:
        ACTIVE_DRILL_DEADLINE.labels(namespace, name).set(deadline)
    if cluster:
        cluster_known(cluster)


def cluster_known(cluster: str) -> None:
    """A drill's cluster is known (before anything is injected): its give-up counter exists at
    0 from now on. Prometheus' increase() sees nothing in a series whose first sample is already
    1, so the critical alert on it would miss exactly the first give-up on a cluster."""
    RESTORES_GAVE_UP.labels(cluster_label(cluster))


def drill_inactive(namespace: str, name: str) -> None:
    with contextlib.suppress(KeyError):
        ACTIVE_DRILL_DEADLINE.remove(namespace, name)
