"""Which keys the prober reads: one inside each region, from PD's regions in key order (a real
cluster's first ``limit`` regions; the sandbox's all)."""

from __future__ import annotations

from controller.client_probe.model import ProbeTarget
from controller.pd import PDClient
from controller.pd.models import RegionInfo

# Appended to a region's start key: inside the region unless its end follows right after.
KEY_SUFFIX = b"\x00chaosdemo-probe"


def key_in(region: RegionInfo, prefix: bytes = b"") -> bytes | None:
    """A key inside [start, end): the start key (PD shows keys in hex) and a suffix, or the
    prefix if it is inside. None if no such key fits."""
    start, end = bytes.fromhex(region.start_key), bytes.fromhex(region.end_key)
    key = max(start + KEY_SUFFIX, prefix + KEY_SUFFIX) if prefix else start + KEY_SUFFIX
    return key if key >= start and (not end or key < end) else None


async def probe_targets(pd: PDClient, limit: int) -> list[ProbeTarget]:
    regions = await pd.scan_regions(b"", limit)
    targets = []
    for region in regions.regions:
        key = key_in(region)
        if key is not None:
            targets.append(ProbeTarget(region_id=region.id, key=key))
    return targets
