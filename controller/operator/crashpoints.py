"""Named crash points for crash-safety tests: the process SIGKILLs itself at a step boundary.

Set ``CHAOSDEMO_CRASH_AT=<point>`` and ``CHAOSDEMO_CRASH_MARKER=<file>``: the first time the
point is reached the marker is written and the process dies on the spot, as if the node had
gone; the restarted controller (marker present) runs on. Unset, this costs one dict lookup.
"""

from __future__ import annotations

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


def crashpoint(name: str) -> None:
    if os.environ.get("CHAOSDEMO_CRASH_AT") != name:
        return
    marker = Path(os.environ.get("CHAOSDEMO_CRASH_MARKER", "/tmp/chaosdemo-crash-marker"))
    if marker.exists():
        return
    marker.write_text(name)
    os.kill(os.getpid(), signal.SIGKILL)
