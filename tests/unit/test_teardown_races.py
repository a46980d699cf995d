"""A deletion or an abort that arrives while a step runs: nothing is injected after it, and the
teardown decides from the live object, never from the body kopf handed it at deletion time.

The API server is a fake here on purpose (tests/support/fake_api.py): it makes the race certain
(the request lands exactly between the step's first read and its destructive call) and enforces
the resourceVersion precondition as the real one does."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from controller.operator.drill import advance, finalize
from controller.timefmt import format_rfc3339, parse_rfc3339
from tests.support.fake_api import KILL_VICTIM, OUTAGE_VICTIM, APIServer, deps_for, drill


@pytest.mark.parametrize("interrupt", ["deletion", "abort"])
@pytest.mark.parametrize("victim", [KILL_VICTIM, OUTAGE_VICTIM], ids=["pod-kill", "store-outage"])
async def test_nothing_is_injected_once_a_stop_was_requested_mid_step(
    interrupt: str, victim: dict[str, Any]
) -> None:
    """The victim is chosen and recorded (phase Injecting); the user deletes or aborts the drill
    while the step that would inject runs: neither the pod's delete nor the image swap is sent."""
    obj = drill({"phase": "Injecting", "victim": victim, "timeline": {"injectingAt": "2026-12-05T08:59:59Z"}})
    api = APIServer(obj, interrupt=interrupt)
    await advance(deps_for(api), copy.deepcopy(obj))
    assert api.destructive == [], f"injected after the {interrupt} was requested: {api.destructive}"


async def test_nothing_is_injected_when_the_object_changed_between_read_and_claim() -> None:
    """The precondition itself: the step's re-read sees no stop, but the object changes before
    its claim is written; the API server answers 409 and nothing is injected."""
    obj = drill(
        {"phase": "Injecting", "victim": KILL_VICTIM, "timeline": {"injectingAt": "2026-12-05T08:59:59Z"}}
    )

    class ChangedUnderfoot(APIServer):
        async def get_chaosdemo(self, namespace: str, name: str) -> dict[str, Any]:
            seen = await super().get_chaosdemo(namespace, name)
            if self.reads == 2:  # the step's re-read, right before the destructive call
                self.obj["metadata"]["deletionTimestamp"] = "2026-12-05T09:00:00Z"
                self._bump()
            return seen

    api = ChangedUnderfoot(obj)
    await advance(deps_for(api), copy.deepcopy(obj))
    assert api.destructive == [], api.destructive


async def test_the_finalizer_restores_what_a_step_stopped_after_kopf_read_the_body() -> None:
    """kopf's body says Preflight (the deletion came then); the live object says the store was
    stopped since. The finalizer puts the original image back rather than releasing the drill as
    'deleted before anything was killed'."""
    stale = drill({"phase": "Preflight"})
    stale["metadata"]["deletionTimestamp"] = format_rfc3339(time.time())  # the restore's clock starts
    live = drill(
        {
            "phase": "Detecting",
            "victim": OUTAGE_VICTIM,
            "timeline": {"injectingAt": "2026-12-05T09:00:00.100Z", "injectedAt": "2026-12-05T09:00:00.200Z"},
        }
    )
    live["metadata"]["deletionTimestamp"] = stale["metadata"]["deletionTimestamp"]
    api = APIServer(live)
    done, message = await finalize(deps_for(api), stale)
    assert ("patch", [OUTAGE_VICTIM["originalImage"]]) in api.destructive, (api.destructive, message)
    assert "nothing" not in message and "before anything was killed" not in message, message
    # PD cannot confirm the store yet (nothing listens at the run's address): not done, retried.
    assert not done


async def test_the_finalizer_of_a_drill_that_never_injected_touches_nothing() -> None:
    stale = drill({"phase": "Preflight"})
    stale["metadata"]["deletionTimestamp"] = "2026-12-05T09:00:00Z"
    api = APIServer(copy.deepcopy(stale))
    done, message = await finalize(deps_for(api), stale)
    assert done and api.destructive == [] and "before anything was killed" in message, message


async def test_a_pod_replaced_by_someone_else_is_not_killed_nor_timed() -> None:
    """Between preflight and the delete, someone else replaced the victim (same name, new uid):
    the uid-preconditioned delete answers 409; the drill refuses rather than time another's
    restart as its own kill."""
    obj = drill(
        {"phase": "Injecting", "victim": KILL_VICTIM, "timeline": {"injectingAt": "2026-12-05T08:59:59Z"}}
    )
    api = APIServer(obj)
    api.replaced.add("tikv-1")
    await advance(deps_for(api), copy.deepcopy(obj))
    status = api.obj["status"]
    assert (status["phase"], status["verdict"], status["reason"]) == ("Failed", "Error", "VictimChanged"), (
        status
    )
    assert "injectedAt" not in status["timeline"] and api.destructive == [], status


async def test_after_a_crash_a_pod_our_earlier_attempt_deleted_is_our_kill() -> None:
    """The record says the delete may have gone out before a crash: the replacement found now is
    the StatefulSet's answer to our own kill, timed from that record."""
    sent = "2026-12-05T09:00:00.500Z"
    obj = drill(
        {
            "phase": "Injecting",
            "victim": KILL_VICTIM,
            "timeline": {"injectingAt": "2026-12-05T09:00:00Z", "injectionSentAt": sent},
        }
    )
    api = APIServer(obj)
    api.replaced.add("tikv-1")
    await advance(deps_for(api), copy.deepcopy(obj))
    status = api.obj["status"]
    assert parse_rfc3339(status["timeline"]["injectedAt"]) == parse_rfc3339(sent), status
    injected = next(c for c in status["conditions"] if c["type"] == "Injected")
    assert (injected["status"], injected["reason"]) == ("True", "PodKilled"), injected
    assert "already gone" in injected["message"] and api.destructive == [], injected


async def test_a_drill_deleted_after_choosing_its_victim_but_before_its_claim_releases_at_once() -> None:
    """The victim is recorded (phase Injecting) but the claim before the delete was never written:
    nothing was sent, so the finalizer lets go at once instead of waiting for a recovery that
    cannot come (found by the schedule test: a replaced run deleted with its schedule)."""
    live = drill(
        {"phase": "Injecting", "victim": KILL_VICTIM, "timeline": {"injectingAt": "2026-12-05T09:00:00Z"}}
    )
    live["metadata"]["deletionTimestamp"] = format_rfc3339(time.time())
    api = APIServer(live)
    done, message = await finalize(deps_for(api), copy.deepcopy(live))
    assert done and api.destructive == [] and "before anything was killed" in message, message
