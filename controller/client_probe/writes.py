"""The prober's writes (``spec.impact.probe.writes``): only under the key prefix the user named,
only keys the prober itself owns, and every one of them removed at the end.

A key the prober writes holds a value that starts with ``MARK``. At the start, a key it would
write that already holds a value without the mark belongs to someone else: the prober leaves it
alone (that region's writes go unprobed, and the status says how many). At the end, every key
under the prefix whose value has the mark is deleted, found by a scan: so a controller that
restarted mid-drill, and lost its list, still puts everything back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from controller.client_probe.model import Op, ProbeTarget
from controller.client_probe.targets import key_in
from controller.pd import PDClient

MARK = b"chaosdemo-probe:"
SCAN_LIMIT = 1024  # keys a sweep reads at a time
SWEEP_PASSES = 3


def written_value(at: float) -> bytes:
    return MARK + f"{at:.6f}".encode()


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key that starts with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        raise ValueError("a key prefix of 0xff bytes only has no end")
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


async def write_targets(
    pd: PDClient, client: Any, prefix: bytes, limit: int
) -> tuple[list[ProbeTarget], int]:
    """One key under ``prefix`` in each region holding part of the prefix's range (at most
    ``limit`` regions), and how many such keys were someone else's (left alone)."""
    end = prefix_end(prefix)
    regions = await pd.scan_regions(prefix, limit)
    targets, foreign = [], 0
    for region in regions.regions:
        if bytes.fromhex(region.start_key) >= end:
            break
        key = key_in(region, prefix)
        if key is None or not key.startswith(prefix):
            continue
        current = await client.get(key)
        if current is not None and not bytes(current).startswith(MARK):
            foreign += 1
            continue
        targets.append(ProbeTarget(region_id=region.id, key=key, op=Op.WRITE))
    return targets, foreign


async def sweep(client: Any, prefix: bytes, known: Iterable[bytes] = ()) -> int:
    """Delete every key under ``prefix`` whose value has the prober's mark; how many.

    The keys the prober knows it wrote are checked one by one, then the prefix is scanned for any
    other, until a scan finds none (a scan over many regions is many requests, one of which may
    meet a region moving its leader)."""
    removed = 0
    for key in known:
        value = await client.get(key)
        if value is not None and bytes(value).startswith(MARK):
            await client.delete(key)
            removed += 1
    for _ in range(SWEEP_PASSES):
        found = await _sweep_scan(client, prefix)
        removed += found
        if found == 0:
            break
    return removed


async def _sweep_scan(client: Any, prefix: bytes) -> int:
    end = prefix_end(prefix)
    start, removed = prefix, 0
    while True:
        pairs = await client.scan(start, end, SCAN_LIMIT)
        for key, value in pairs:
            if bytes(value).startswith(MARK):
                await client.delete(bytes(key))
                removed += 1
        if len(pairs) < SCAN_LIMIT:
            return removed
        start = bytes(pairs[-1][0]) + b"\x00"
