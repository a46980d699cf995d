"""The client prober's life in a drill (spec.impact.probe): started before the kill, so there is
a baseline, and stopped when the run ends; its records become status.impact.client.

The prober lives in the controller's memory, beside the drill (one per drill, by uid). A
controller that restarts mid-drill loses what it recorded: the status says so rather than
report a partial figure as the whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from controller.client_probe.figures import client_impact
from controller.client_probe.model import ProbeRecord
from controller.client_probe.prober import Prober, ProberError, connect
from controller.client_probe.targets import probe_targets
from controller.operator.model import ProbeSpec
from controller.operator.state import ClientImpact, Timeline
from controller.pd import PDClient, PDError

log = logging.getLogger(__name__)
LOST = "the controller restarted during the drill: the prober's records were lost"


@dataclass
class RunningProbe:
    prober: Prober
    task: asyncio.Task[list[ProbeRecord]]
    stop: asyncio.Event
    started_at: float
    spec: ProbeSpec


def client_address(pd_url: str) -> str:
    """PD as a TiKV client takes it: host:port (PD serves gRPC on its HTTP port)."""
    return pd_url.split("://", 1)[-1].rstrip("/")


async def start(pd: PDClient, pd_url: str, spec: ProbeSpec) -> RunningProbe:
    """Connect TiKV's client through PD and start reading; ProberError if it cannot."""
    try:
        targets = await probe_targets(pd, spec.max_regions)
    except PDError as exc:
        raise ProberError(f"PD's regions could not be read for the prober: {exc}") from exc
    client = await connect([client_address(pd_url)])
    prober = Prober(client, targets, rate=spec.requests_per_second, deadline=spec.deadline_seconds)
    stop = asyncio.Event()
    task = asyncio.create_task(prober.run(stop))
    return RunningProbe(prober, task, stop, time.time(), spec)


def baseline_left(probe: RunningProbe, now: float) -> float:
    """Seconds the prober must still read before the kill."""
    return max(0.0, probe.started_at + probe.spec.baseline_seconds - now)


async def finish(probe: RunningProbe) -> list[ProbeRecord]:
    """Stop sending; those in flight end by their deadline."""
    probe.stop.set()
    try:
        return await asyncio.wait_for(asyncio.shield(probe.task), probe.spec.deadline_seconds + 5.0)
    except TimeoutError:
        probe.task.cancel()
        return list(probe.prober.records)


def cancel(probe: RunningProbe) -> None:
    """A run that ends without figures (aborted before the kill, deleted): stop at once."""
    probe.stop.set()
    probe.task.cancel()


def figures(
    probe: RunningProbe, records: list[ProbeRecord], timeline: Timeline, until: float
) -> ClientImpact:
    if timeline.injected_at is None:
        return ClientImpact(error="nothing was injected")
    # Clients are served again when the cluster is whole and the victim's regions have leaders:
    # a pod back (and PD content) before its regions elect still answers no read.
    served = timeline.recovered_at
    if served is not None and timeline.leaders_elected_at is not None:
        served = max(served, timeline.leaders_elected_at)
    return client_impact(
        records,
        kill=timeline.injected_at,
        recovered=served,
        until=until,
        regions=len(probe.prober.targets),
        rate=probe.spec.requests_per_second,
        deadline=probe.spec.deadline_seconds,
    )
