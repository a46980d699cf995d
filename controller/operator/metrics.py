"""The controller's own Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TIME_BUCKETS = (0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 300)

DRILLS = Counter("chaosdemo_drills_total", "Drills finished, by verdict", ["verdict"])
TIME_TO_DETECT = Histogram(
    "chaosdemo_time_to_detect_seconds", "Kill to the monitor's ticket", buckets=TIME_BUCKETS
)
TIME_TO_RECOVER = Histogram(
    "chaosdemo_time_to_recover_seconds", "Kill to the store Up again", buckets=TIME_BUCKETS
)
DETECTION_MISSES = Counter(
    "chaosdemo_detection_misses_total", "Drills whose fault the monitor never ticketed"
)
REACTION = Histogram(
    "chaosdemo_reaction_seconds",
    "ChaosDemo created to victim deleted",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10),
)
STEP_ERRORS = Counter("chaosdemo_step_errors_total", "Drill steps that raised and will be retried", ["phase"])
