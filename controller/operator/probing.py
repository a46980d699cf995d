"""The client prober's life in a drill (spec.impact.probe): started before the kill, so there is
a baseline, and stopped when the run ends; its records become status.impact.client.

The prober lives in the controller's memory, beside the drill (one per drill, by uid). A
controller that restarts mid-drill loses what it recorded: the status says so rather than
report a partial figure as the whole.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from controller.client_probe.figures import client_impact, windows
from controller.client_probe.model import Op, Outcome, ProbeRecord
from controller.client_probe.prober import Prober, ProberError, connect
from controller.client_probe.targets import probe_targets
from controller.client_probe.writes import sweep, write_targets
from controller.operator.model import ProbeSpec
from controller.operator.state import ClientImpact, ClientWrites, Timeline
from controller.pd import PDClient, PDError

log = logging.getLogger(__name__)
LOST = "the controller restarted during the drill: the prober's records were lost"
PUT_BACK_LEFT = "keys the prober wrote may be left (their values start with 'chaosdemo-probe:')"
PUT_BACK_TIMEOUT = 30.0


@dataclass
class RunningProbe:
    prober: Prober
    task: asyncio.Task[list[ProbeRecord]]
    stop: asyncio.Event
    spec: ProbeSpec
    read_regions: int
    writes: ClientWrites | None = None  # under spec.writes: what was written, and put back


def client_address(pd_url: str) -> str:
    """PD as a TiKV client takes it: host:port (PD serves gRPC on its HTTP port)."""
    return pd_url.split("://", 1)[-1].rstrip("/")


async def start(pd: PDClient, pd_url: str, spec: ProbeSpec) -> RunningProbe:
    """Connect TiKV's client through PD and start reading (and writing, under spec.writes);
    ProberError if it cannot."""
    if pd_url.startswith("https://"):
        # Said before anything is asked: the drill runs on, its client figures say why they are missing.
        raise ProberError(
            "TiKV's client cannot reach a TLS cluster from here: the tikv-client Python binding "
            "(RawClient.connect) takes no CA or client certificate, so impact.probe is not measured"
        )
    try:
        targets = await probe_targets(pd, spec.max_regions)
    except PDError as exc:
        raise ProberError(f"PD's regions could not be read for the prober: {exc}") from exc
    client = await connect([client_address(pd_url)])
    writes = None
    read_regions = len(targets)
    if spec.writes is not None:
        try:
            owned, foreign = await write_targets(pd, client, spec.writes.encode(), spec.max_regions)
        except Exception as exc:  # PD, or the Rust client (its errors are plain Exceptions)
            raise ProberError(f"the prober's write keys could not be chosen: {exc}") from exc
        targets += owned
        writes = ClientWrites(keyPrefix=spec.writes, regions=len(owned), foreignKeys=foreign)
    prober = Prober(client, targets, rate=spec.requests_per_second, deadline=spec.deadline_seconds)
    stop = asyncio.Event()
    task = asyncio.create_task(prober.run(stop))
    return RunningProbe(prober, task, stop, spec, read_regions, writes)


def baseline_left(probe: RunningProbe, now: float) -> float:
    """Seconds the prober must still read before the kill."""
    since = probe.prober.recording_since
    if since is None:  # still warming up: the baseline has not begun
        return probe.spec.baseline_seconds if not probe.task.done() else 0.0
    return max(0.0, since + probe.spec.baseline_seconds - now)


async def finish(probe: RunningProbe) -> list[ProbeRecord]:
    """Stop sending (those in flight end by their deadline), then remove what it wrote."""
    probe.stop.set()
    try:
        records = await asyncio.wait_for(asyncio.shield(probe.task), probe.spec.deadline_seconds + 5.0)
    except TimeoutError:
        probe.task.cancel()
        records = list(probe.prober.records)
    if probe.writes is not None:
        probe.writes = await put_back(probe.prober.client, probe.writes, written_keys(probe))
    return records


def written_keys(probe: RunningProbe) -> list[bytes]:
    return [t.key for t in probe.prober.targets if t.op == Op.WRITE]


async def put_back(client: Any, writes: ClientWrites, known: list[bytes] | None = None) -> ClientWrites:
    """Delete every key the prober wrote under the prefix (found by its mark)."""
    try:
        removed = await asyncio.wait_for(
            sweep(client, writes.key_prefix.encode(), known or []), PUT_BACK_TIMEOUT
        )
    except TimeoutError:
        return writes.model_copy(update={"error": f"{PUT_BACK_LEFT}: no answer in {PUT_BACK_TIMEOUT:.0f} s"})
    except Exception as exc:  # the Rust client's errors are plain Exceptions
        return writes.model_copy(update={"error": f"{PUT_BACK_LEFT}: {str(exc)[:300]}"})
    return writes.model_copy(update={"removed": removed})


async def put_back_after_restart(pd_url: str, prefix: str) -> ClientWrites:
    """A controller that restarted mid-drill lost its prober, not the keys it wrote: a new
    client finds them by their mark and removes them."""
    writes = ClientWrites(keyPrefix=prefix)
    try:
        client = await connect([client_address(pd_url)])
    except ProberError as exc:
        return writes.model_copy(update={"error": f"{PUT_BACK_LEFT}: {exc}"})
    return await put_back(client, writes)


def cancel(probe: RunningProbe) -> None:
    """A run that ends without figures (aborted before the kill, deleted): stop at once; what it
    wrote is still removed, in the background (this is called where nothing may wait)."""
    probe.stop.set()
    probe.task.cancel()
    if probe.writes is not None:
        task = asyncio.get_running_loop().create_task(
            _put_back_logged(probe.prober.client, probe.writes, written_keys(probe))
        )
        _background.add(task)
        task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()


async def _put_back_logged(client: Any, writes: ClientWrites, known: list[bytes]) -> None:
    done = await put_back(client, writes, known)
    if done.error is not None:
        log.warning("prober: %s", done.error)
    else:
        log.info("prober: removed %d key(s) it wrote under %r", done.removed, writes.key_prefix)


def figures(
    probe: RunningProbe, records: list[ProbeRecord], timeline: Timeline, until: float
) -> ClientImpact:
    if timeline.injected_at is None:
        return ClientImpact(error="nothing was injected", writes=probe.writes)
    # Clients are served again when the cluster is whole and the victim's regions have leaders:
    # a pod back (and PD content) before its regions elect still answers no read.
    served = timeline.recovered_at
    if served is not None and timeline.leaders_elected_at is not None:
        served = max(served, timeline.leaders_elected_at)
    client = client_impact(
        records,
        kill=timeline.injected_at,
        recovered=served,
        until=until,
        regions=probe.read_regions,
        rate=probe.spec.requests_per_second,
        deadline=probe.spec.deadline_seconds,
    )
    if probe.writes is None:
        return client
    writes = [r for r in records if r.op == Op.WRITE]
    before, during, after = windows(writes, kill=timeline.injected_at, recovered=served, until=until)
    written = len({r.region_id for r in writes if r.outcome == Outcome.OK})
    figures = {"before": before, "during": during, "after": after, "written": written}
    return client.model_copy(update={"writes": probe.writes.model_copy(update=figures)})
