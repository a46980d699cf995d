"""The drill engine's public face: what kopf's handlers, the schedules and the tests use.

Read the engine in this order:

1. ``engine.advance`` is the entry point (kopf's timer and event reaction call it). It takes the
   drill's guard, so one drill is never stepped twice at once nor stepped while it is torn down,
   and runs the phase table from the API server's current object until a step waits, the run
   ends, or a deletion or an abort is requested.
2. ``runs``: a run starts when a drill is new or its spec changed after the last run ended; the
   spec is admitted (``admission``: allow-lists and the target's consent, before any Lease or
   request) and pinned in ``status.run``. Every step of that run reads the pin, never the live
   spec (except ``abort``, the one live control), so an edit mid-run becomes the next run.
3. The phases, one module each (``before_kill``, ``injection``, ``after_kill``, ``diagnosing``),
   read the status that they (or a crashed predecessor) wrote, do one thing, and record it before
   the next. The one destructive phase re-reads the live object and writes its claim with the
   object's resourceVersion as precondition right before the call.
4. From the kill on, every step first samples recovery and records each moment the first time it
   holds; the diagnosis runs in a task of its own, so nothing waits on it.
5. Errors: a permanent one (``errors.PermanentError``) ends the run with verdict Error; any other
   is retried within seconds, and no run outlives its own deadline.
6. ``ending.end_run`` is the one place a run ends: verdict, Event, metrics, lock release.
7. ``teardown``: deletion and abort share one restore, decided from the live object, with
   recovery's "whole again" test.
"""

from __future__ import annotations

from controller.operator.deps import Deps
from controller.operator.ending import end_run
from controller.operator.engine import advance, needs_stepping, settled
from controller.operator.teardown import finalize

__all__ = ["Deps", "advance", "end_run", "finalize", "needs_stepping", "settled"]
