"""The controller's own Prometheus metrics. Drill figures carry ``cluster``: PD's cluster id
(``pd-<id>``), the same name tickets and guards use, so two spellings of one PD address are one
series."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
