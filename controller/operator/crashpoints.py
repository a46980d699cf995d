"""Named crash and hold points for safety tests: the process SIGKILLs itself, or a drill waits,
at a step boundary.

Set ``CHAOSDEMO_CRASH_AT=<point>`` and ``CHAOSDEMO_CRASH_MARKER=<file>``: the first time the
point is reached the marker is written and the process dies on the spot, as if the node had
gone; the restarted controller (marker present) runs on. Unset, this costs one dict lookup.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

POINTS = (
    "lock-acquired",
    "victim-persisted",
    "pod-deleted",
    "injected-recorded",
    "ticket-found",
    "diagnosed",
    "pod-ready",
    "finished",
)
# A store-outage drill's own boundaries: its image swapped out, the swap back about to be sent
# (restoringAt written), the swap back sent but not yet recorded.
OUTAGE_POINTS = (
    "lock-acquired",
    "victim-persisted",
    "image-swapped",
    "injected-recorded",
    "image-restoring",
    "image-restored",
    "finished",
)
# A network-partition drill's own: its policies created, their deletion about to be sent
# (restoringAt written), and sent but not yet recorded.
PARTITION_POINTS = (
    "victim-persisted",
    "policy-created",
    "injected-recorded",
    "policy-deleting",
    "policy-deleted",
    "finished",
)
# Under tidb-operator v2, the outage's own bounds: its Cluster paused (the image not swapped yet),
# and resumed after the swap back (restoredAt not yet recorded).
PAUSE_POINTS = ("operator-paused", "operator-resumed")


def crashpoint(name: str) -> None:
    if os.environ.get("CHAOSDEMO_CRASH_AT") != name:
        return
    marker = Path(os.environ.get("CHAOSDEMO_CRASH_MARKER", "/tmp/chaosdemo-crash-marker"))
    if marker.exists():
        return
    marker.write_text(name)
    os.kill(os.getpid(), signal.SIGKILL)


HOLD_CONTROL = "CHAOSDEMO_HOLD_CONTROL"


async def holdpoint(name: str) -> None:
    """Wait here while the file named by ``CHAOSDEMO_HOLD_CONTROL`` says ``name``, so a test can
    land a deletion or an abort at exactly this point against the real API server. ``<file>.held``
    is written on arrival; the test removes the control file to let the step go on. One
    controller serves a whole matrix of points: the file is read on every pass. Unset, this
    costs one dict lookup."""
    control = os.environ.get(HOLD_CONTROL)
    if not control:
        return
    path = Path(control)

    def holding() -> bool:
        try:
            return path.read_text().strip() == name
        except FileNotFoundError:
            return False

    if not await asyncio.to_thread(holding):
        return
    await asyncio.to_thread(Path(f"{control}.held").write_text, name)
    # The signal is a file another process removes: nothing to wait on but the file itself.
    while await asyncio.to_thread(holding):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
