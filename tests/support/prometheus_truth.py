"""The truth about an alert, from Prometheus' own store: when each ALERTS sample says it was
pending and firing. The alerting tests run the standard rules at the sandbox's time scale."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

from controller.timefmt import parse_rfc3339

TIME_SCALE = 0.2
FOR_SECONDS = 60 * TIME_SCALE  # the rules' `for: 1m` on the emulator's clock
SCRAPE = EVALUATION = 0.5
# A moment read from Prometheus is exact to one evaluation; one derived from a gauge it scraped
# is late by up to one scrape more.
RESOLUTION = SCRAPE + EVALUATION


def samples(prometheus_url: str, selector: str, since: float, *, zero: bool = False) -> list[float]:
    """Timestamps of every sample of ``selector`` after ``since`` above zero (``zero``: equal to
    zero), from Prometheus' own store."""
    window = int(time.time() - since) + 2
    query = urllib.parse.urlencode({"query": f"{selector}[{window}s]"})
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{query}", timeout=5) as r:
        result = json.load(r)["data"]["result"]
    return sorted(
        float(t)
        for series in result
        for t, v in series["values"]
        if float(t) > since and (float(v) == 0 if zero else float(v) > 0)
    )


def first_sample(
    prometheus_url: str, alertname: str, state: str, instance: str | None, since: float
) -> float:
    """The truth: Prometheus' own first ALERTS sample of the alert in ``state`` after ``since``."""
    instance_matcher = f',instance="{instance}"' if instance else ""
    selector = f'ALERTS{{alertname="{alertname}",alertstate="{state}"{instance_matcher}}}'
    times = samples(prometheus_url, selector, since)
    assert times, f"no sample of {selector} since {since}"
    return times[0]


def assert_timed_as_prometheus(prometheus_url: str, source: dict, instance: str | None, since: float) -> None:
    """The source's pending and firing moments are Prometheus' own, and it fired no sooner than
    `for:` after it went pending."""
    pending = parse_rfc3339(source["pendingAt"])
    firing = parse_rfc3339(source["firingAt"])
    truth_pending = first_sample(prometheus_url, source["alert"], "pending", instance, since)
    truth_firing = first_sample(prometheus_url, source["alert"], "firing", instance, since)
    assert abs(pending - truth_pending) <= EVALUATION, (source, truth_pending)
    assert abs(firing - truth_firing) <= EVALUATION, (source, truth_firing)
    assert firing - pending >= FOR_SECONDS - 0.01, ("fired before its for:", source)
