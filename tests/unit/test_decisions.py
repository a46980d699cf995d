"""The drill's decisions, without a control plane: victim choice, quorum, was-killed, the
recovery moments and their precision, verdicts, deadlines, retries, spec validation, error
classification, and the typed status's round trip."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from controller.operator import decisions, recovery_moments
from controller.operator.errors import PermanentError, classify, field_of, using
from controller.operator.model import DrillSpec, Phase, Verdict
from controller.operator.recovery_moments import RecoveryObservation, combined, record_recovery
from controller.operator.state import DrillMetrics, DrillStatus, Timeline, Victim
from controller.pd import quorum
from controller.pd.client import PDBadResponse, PDError, PDUnavailable

KILL = 1_700_000_000.0


def test_choose_victim_is_repeatable_and_respects_the_named_pod() -> None:
    pods = ["tikv-2", "tikv-0", "tikv-1"]
    first = decisions.choose_victim(pods, "", seed="uid/1")
    assert all(decisions.choose_victim(list(reversed(pods)), "", seed="uid/1") == first for _ in range(5))
    assert {decisions.choose_victim(pods, "", seed=f"uid/{g}") for g in range(40)} == set(pods)
    assert decisions.choose_victim(pods, "tikv-1", seed="x") == "tikv-1"
    with pytest.raises(ValueError):
        decisions.choose_victim(pods, "tikv-10", seed="x")
    with pytest.raises(ValueError):
        decisions.choose_victim([], "", seed="x")


@pytest.mark.parametrize(
    ("up", "killed", "replicas", "ok"),
    [(3, 1, 3, True), (2, 1, 3, False), (5, 2, 5, True), (5, 3, 5, False), (4, 2, 3, True), (1, 1, 1, False)],
)
def test_keeps_majority(up: int, killed: int, replicas: int, ok: bool) -> None:
    assert quorum.keeps_majority(up, killed, replicas) is ok


def _victim() -> Victim:
    return Victim(
        namespace="tikv", pod="tikv-1", uid="u1", storeId=2, storeAddress="a:20160", leadersBefore=8
    )


def test_was_killed_from_the_moment_the_delete_may_have_been_sent() -> None:
    assert not decisions.was_killed(DrillStatus())
    assert not decisions.was_killed(DrillStatus(victim=_victim()))
    # Chosen and recorded, but stopped before the claim that precedes the delete: nothing to
    # restore (a teardown waiting for a pod to come back would wait for nothing).
    assert not decisions.was_killed(DrillStatus(victim=_victim(), timeline=Timeline(injectingAt=KILL)))
    sent = Timeline(injectingAt=KILL, injectionSentAt=KILL + 0.01)
    assert decisions.was_killed(DrillStatus(victim=_victim(), timeline=sent))
    assert decisions.was_killed(DrillStatus(victim=_victim(), timeline=Timeline(injectedAt=KILL)))


def _obs(seen: float, **kw: object) -> RecoveryObservation:
    base: dict[str, object] = dict(
        seen_at=seen,
        pod_ready=False,
        pod_back=True,
        pod_ready_since=None,
        store_state="Disconnected",
        store_started=KILL - 100,
        store_last_heartbeat=KILL - 5,
        unhealthy_regions=3,
        leaders=0,
        fair_leaders=8,
    )
    base.update(kw)
    return RecoveryObservation(**base)  # type: ignore[arg-type]


def test_recovery_moments_come_from_the_sources_own_times_not_the_look() -> None:
    t = Timeline(injectedAt=KILL)
    # The pod became Ready at KILL+2.0 (its condition says so, in whole seconds); the store
    # re-registered at KILL+2.4 (first heartbeat); we only look at KILL+9 (say a slow diagnosis
    # held the controller), with our previous look at KILL+1.5.
    obs = _obs(
        KILL + 9,
        pod_ready=True,
        pod_ready_since=KILL + 2,
        store_state="Up",
        store_started=float(int(KILL + 2)),
        store_last_heartbeat=KILL + 2.4,
        unhealthy_regions=0,
        leaders=0,
    )
    bounds = {
        m: KILL + 1.5 for m in ("pod_ready_at", "store_up_at", "regions_healthy_at", "leaders_balanced_at")
    }
    after = record_recovery(t, obs, not_before=KILL, bounds=bounds, leaders_before=8)
    assert after.pod_ready_at is not None and KILL + 2 <= after.pod_ready_at <= KILL + 3
    assert after.store_up_at == pytest.approx(KILL + 2.4, abs=0.001)
    assert after.regions_healthy_at is not None and after.regions_healthy_at >= after.store_up_at
    assert after.recovered_at == max(after.pod_ready_at, after.store_up_at, after.regions_healthy_at)
    assert after.leaders_balanced_at is None  # 0 leaders of 8
    m = recovery_moments.recovery_metrics(DrillMetrics(), after)
    assert m.time_to_recover_seconds == pytest.approx(after.recovered_at - KILL, abs=0.001)
    assert m.time_to_recover_seconds is not None and m.time_to_recover_seconds < 9 - 1  # not the look's time
    assert m.time_to_recover == f"{m.time_to_recover_seconds:.1f}s"


def test_recovery_moments_are_set_once_and_never_before_the_kill() -> None:
    t = Timeline(injectedAt=KILL)
    stale = _obs(KILL + 1, pod_ready=True, pod_back=False, store_state="Up", unhealthy_regions=0)
    after = record_recovery(t, stale, not_before=KILL, bounds={}, leaders_before=8)
    assert after.pod_ready_at is None, "the old pod (same uid) being Ready is not recovery"
    assert after.store_up_at is None, "a store Up with its old start time has not re-registered"
    ready = _obs(KILL + 3, pod_ready=True, pod_ready_since=KILL - 50)
    after = record_recovery(t, ready, not_before=KILL, bounds={"pod_ready_at": KILL + 2}, leaders_before=8)
    assert after.pod_ready_at is not None and KILL + 2 <= after.pod_ready_at <= KILL + 3
    again = record_recovery(
        after, _obs(KILL + 9, pod_ready=True), not_before=KILL, bounds={}, leaders_before=8
    )
    assert again.pod_ready_at == after.pod_ready_at


def test_a_look_bounds_what_it_did_not_see_from_when_it_was_asked() -> None:
    """An answer shows some instant between asking and answering: a moment not seen yet came
    after the look was asked for, not after it answered (the pod's GET and PD's store list ask
    at their own times; a region listing can keep the look going for seconds after). A look at
    PD that failed bounds nothing of PD's."""
    look = _obs(KILL + 9, asked_at=KILL + 4, pod_asked_at=KILL + 3.5, pod_seen_at_=KILL + 3.6)
    assert look.not_yet_since("pod_ready_at") == KILL + 3.5
    assert look.not_yet_since("store_up_at") == look.not_yet_since("regions_healthy_at") == KILL + 4
    failed = _obs(KILL + 9, asked_at=KILL + 4, pod_asked_at=KILL + 3.5, pd_error="PD unavailable: x")
    assert failed.not_yet_since("store_up_at") is None and failed.not_yet_since("pod_ready_at") == KILL + 3.5
    # Several victims seen as one: bounded by the earliest asking.
    both = combined([look, _obs(KILL + 8, asked_at=KILL + 2, pod_asked_at=KILL + 5)], KILL)
    assert (both.not_yet_since("store_up_at"), both.not_yet_since("pod_ready_at")) == (KILL + 2, KILL + 3.5)


def test_whole_needs_pod_store_and_regions() -> None:
    up = dict(pod_ready=True, store_state="Up", store_started=float(int(KILL)), unhealthy_regions=0)
    assert _obs(KILL + 5, **up).whole(KILL)
    assert not _obs(KILL + 5, **{**up, "pod_ready": False}).whole(KILL)
    assert not _obs(KILL + 5, **{**up, "unhealthy_regions": 1}).whole(KILL)
    assert not _obs(KILL + 5, **{**up, "store_started": KILL - 10}).whole(KILL)
    assert not _obs(KILL + 5, **{**up, "store_state": "Disconnected"}).whole(KILL)
    assert not _obs(KILL + 5, **{**up, "unhealthy_regions": None}).whole(KILL), "unknown is not healthy"


@pytest.mark.parametrize(
    ("leaders", "before", "fair", "back"),
    [
        (7, 8, 8, True),
        (6, 8, 8, False),
        (5, 8, 6, True),
        (0, 0, 8, True),
        (3, None, 4, True),
        (1, None, 4, False),
    ],
)
def test_leaders_back(leaders: int, before: int | None, fair: int, back: bool) -> None:
    assert _obs(KILL, leaders=leaders, fair_leaders=fair).leaders_back(before) is back


def test_estimate_moment_narrows_to_what_every_source_allows() -> None:
    assert recovery_moments.estimate_moment(None, 10.0, 12.0, 0.0) == 11.0
    assert recovery_moments.estimate_moment(10.0, 9.0, 20.0, 1.0) == 10.5
    assert recovery_moments.estimate_moment(10.0, 10.8, 20.0, 1.0) == pytest.approx(10.9)
    assert recovery_moments.estimate_moment(30.0, 9.0, 20.0, 1.0) == 20.0  # source disagrees: our look


def _spec(**kw: object) -> DrillSpec:
    return DrillSpec.model_validate(kw)


def test_verdicts() -> None:
    spec = _spec(detection={"timeoutSeconds": 60, "expectWithinSeconds": 5})
    v = decisions.verdict(spec, DrillMetrics(), recovered=True)
    assert (v.phase, v.verdict, v.reason) == (Phase.FAILED, Verdict.UNDETECTED, "Undetected")
    v = decisions.verdict(
        spec, DrillMetrics(timeToDetectSeconds=1.0), recovered=False, detail="pod not Ready"
    )
    assert (v.verdict, v.reason) == (Verdict.FAIL, "RecoveryTimeout") and "pod not Ready" in v.message
    v = decisions.verdict(
        spec, DrillMetrics(timeToDetectSeconds=6.0, timeToRecoverSeconds=3.0), recovered=True
    )
    assert (v.verdict, v.reason) == (Verdict.FAIL, "DetectionSLOMissed")
    v = decisions.verdict(
        spec, DrillMetrics(timeToDetectSeconds=1.0, timeToRecoverSeconds=3.0), recovered=True
    )
    assert (v.phase, v.verdict, v.reason) == (Phase.COMPLETED, Verdict.PASS, "Passed") and "3.0s" in v.message


def test_deadlines_and_retries_are_bounded() -> None:
    spec = _spec(
        detection={"timeoutSeconds": 100}, recovery={"timeoutSeconds": 300, "waitForLeadersSeconds": 60}
    )
    assert decisions.after_kill_deadline(spec, KILL) == KILL + 300 + 60 + decisions.DIAGNOSIS_BUDGET
    assert decisions.lease_seconds(spec) >= 300 + 60 + 300
    delays = [decisions.retry_delay(n) for n in range(1, 10)]
    assert delays[0] == 0.5 and max(delays) == decisions.RETRY_MAX_DELAY and delays == sorted(delays)


def test_next_run_needed() -> None:
    assert decisions.next_run_needed(DrillStatus(), 1)
    assert not decisions.next_run_needed(DrillStatus(phase=Phase.DETECTING, observedGeneration=1), 2)
    assert not decisions.next_run_needed(DrillStatus(phase=Phase.COMPLETED, observedGeneration=2), 2)
    assert decisions.next_run_needed(DrillStatus(phase=Phase.FAILED, observedGeneration=1), 2)


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (
            {"target": {"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": []}]}}},
            "spec.target.selector.matchExpressions[0]",
            "needs at least one value",
        ),
        (
            {
                "target": {
                    "selector": {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}
                }
            },
            "spec.target.selector.matchExpressions[0]",
            "takes no values",
        ),
        (
            {"target": {"selector": {"matchLabels": {"app": "has space"}}}},
            "spec.target.selector",
            "label value",
        ),
        ({"target": {"selector": {"matchLabels": {"-bad": "x"}}}}, "spec.target.selector", "label key"),
        ({"target": {"selector": {}}}, "spec.target.selector", "empty selector"),
        ({"target": {"pdAddress": "pd.tikv:2379"}}, "spec.target.pdAddress", "http(s) URL"),
        ({"target": {"pdAddress": "ftp://pd"}}, "spec.target.pdAddress", "http(s) URL"),
        ({"target": {"pdAddress": "http://u:p@pd:2379"}}, "spec.target.pdAddress", "credentials"),
    ],
)
def test_invalid_specs_name_their_field(spec: dict, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        DrillSpec.model_validate(spec)
    where, message = field_of(info.value)
    assert where == field and words in message, (where, message)


def test_valid_selector_and_address() -> None:
    spec = _spec(
        target={
            "pdAddress": "https://pd.tikv.svc:2379",
            "selector": {
                "matchLabels": {"app.kubernetes.io/component": "tikv"},
                "matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a", "b"]}],
            },
        }
    )
    assert spec.target.selector.to_label_selector() == "app.kubernetes.io/component=tikv,zone notin (a,b)"


def test_classify_permanent_and_temporary() -> None:
    bad = classify(ApiException(status=400, reason="Bad Request"), field="spec.target.selector")
    assert isinstance(bad, PermanentError) and bad.field == "spec.target.selector"
    assert classify(ApiException(status=403, reason="Forbidden"), field="x") is not None
    for temporary in (ApiException(status=500), ApiException(status=409), ApiException(status=429)):
        assert classify(temporary, field="x") is None
    assert classify(PDUnavailable("http://pd", "refused"), field="x") is None
    assert classify(PDError(503, "busy"), field="x") is None
    assert classify(PDError(404, "404 page not found"), field="spec.target.pdAddress") is not None
    assert classify(PDBadResponse(200, "not JSON"), field="x") is not None
    assert classify(OSError("db locked"), field="x") is None
    with pytest.raises(PermanentError) as info, using("spec.target.selector"):
        raise ApiException(status=400, reason="Bad Request")
    assert str(info.value).startswith("spec.target.selector: the API server answered 400")


def test_status_round_trip_on_the_wire() -> None:
    wire = {
        "phase": "Recovering",
        "observedGeneration": 3,
        "timeline": {"injectedAt": "2026-11-25T12:00:00.250Z", "podReadyAt": "2026-11-25T12:00:02Z"},
        "victim": {"namespace": "tikv", "pod": "tikv-1", "uid": "u", "storeId": 2, "storeAddress": "a"},
        "kopf": {"progress": {}},
        "conditions": [{"type": "Injected", "status": "True", "lastTransitionTime": "2026-11-25T12:00:00Z"}],
    }
    st = DrillStatus.model_validate(wire)
    assert st.phase is Phase.RECOVERING and st.timeline.injected_at is not None
    assert st.timeline.pod_ready_at is not None
    assert st.timeline.pod_ready_at - st.timeline.injected_at == pytest.approx(1.75)
    out = st.wire()
    assert out["timeline"] == {"injectedAt": "2026-11-25T12:00:00.25Z", "podReadyAt": "2026-11-25T12:00:02Z"}
    assert "kopf" not in out and out["victim"]["storeId"] == 2
    assert DrillStatus.model_validate(out) == st


def test_namespace_trust() -> None:
    from controller.operator.preflight import namespace_trust

    opted = {"chaos.operator.dev/enabled": "true"}
    assert namespace_trust("tikv", "tikv", opted, frozenset()) is None
    refused = namespace_trust("tikv", "tikv", {}, frozenset())
    assert refused is not None and refused.reason == "NamespaceNotOptedIn"
    refused = namespace_trust("tikv", "team-a", opted, frozenset())
    assert refused is not None and refused.reason == "NamespaceNotTrusted" and "team-a" in refused.message
    trusting = {**opted, "chaos.operator.dev/allowed-from": "team-b, team-a"}
    assert namespace_trust("tikv", "team-a", trusting, frozenset()) is None
    assert namespace_trust("tikv", "team-c", trusting, frozenset()) is not None
    assert namespace_trust("tikv", "team-c", {}, frozenset({"tikv"})) is None, "the admin's allow-list"


def test_regions_losing_majority_counts_peers_already_lost() -> None:
    from controller.pd.quorum import RegionPeers, regions_losing_majority

    regions = [
        RegionPeers(10, frozenset({1, 2, 3})),
        RegionPeers(20, frozenset({2, 3, 4})),
        RegionPeers(30, frozenset({3, 4, 5}), unhealthy=frozenset({5})),
        RegionPeers(40, frozenset({1, 2, 3, 4, 5})),
    ]
    assert regions_losing_majority(regions, frozenset({1}), frozenset()) == []
    # Store 1 already Down: killing 2 costs region 10 (1 and 2 of 1,2,3) its majority.
    assert regions_losing_majority(regions, frozenset({2}), frozenset({1})) == [10]
    # A pending peer on 5 counts as lost: killing 4 costs region 30.
    assert regions_losing_majority(regions, frozenset({4}), frozenset()) == [30]
    # Five voters survive two losses, not three.
    assert 40 not in regions_losing_majority(regions, frozenset({1, 2}), frozenset())
    assert 40 in regions_losing_majority(regions, frozenset({1, 2}), frozenset({3}))


def test_learners_and_tiflash_do_not_vote() -> None:
    from controller.pd.models import RegionCheck, StoreInfo
    from controller.pd.quorum import region_peers

    stores = [
        StoreInfo.model_validate({"store": {"id": i, "address": f"tikv-{i - 1}.p.tikv.svc:20160"}})
        for i in (1, 2, 3)
    ] + [
        StoreInfo.model_validate(
            {
                "store": {
                    "id": 9,
                    "address": "tiflash-0.p.tikv.svc:3930",
                    "labels": [{"key": "engine", "value": "tiflash"}],
                }
            }
        )
    ]
    check = RegionCheck.model_validate(
        {
            "count": 1,
            "regions": [
                {
                    "id": 7,
                    "peers": [
                        {"id": 71, "store_id": 1},
                        {"id": 72, "store_id": 2},
                        {"id": 73, "store_id": 3, "role_name": "Learner"},
                        {"id": 79, "store_id": 9, "role_name": "Learner"},
                    ],
                    "pending_peers": [{"id": 72, "store_id": 2}],
                }
            ],
        }
    )
    (region,) = region_peers(check, stores)
    assert region.voters == frozenset({1, 2}) and region.unhealthy == frozenset({2})


def test_store_up_after_a_long_gap_comes_from_the_start_time() -> None:
    """The controller was down for a minute: PD's last heartbeat is many intervals after the
    restart, so the start time (whole seconds) places the re-registration, not our late look."""
    t = Timeline(injectedAt=KILL)
    obs = _obs(
        KILL + 75,
        store_state="Up",
        store_started=float(int(KILL + 3)),
        store_last_heartbeat=KILL + 73.4,
        unhealthy_regions=0,
    )
    after = record_recovery(t, obs, not_before=KILL, bounds={}, leaders_before=8)
    assert after.store_up_at is not None and int(KILL + 3) <= after.store_up_at <= int(KILL + 3) + 1


def test_store_up_is_the_start_when_the_look_came_after_the_second_heartbeat() -> None:
    """Heartbeats every second (a time-scaled cluster): the first look after the restart saw
    the second beat. The start (PD's start_ts, in milliseconds) places the moment, not that beat."""
    started = KILL + 2.345
    obs = _obs(
        KILL + 3.6,
        store_state="Up",
        store_started=started,
        store_started_resolution=0.001,
        store_last_heartbeat=started + 1.0,
        unhealthy_regions=0,
    )
    after = record_recovery(Timeline(injectedAt=KILL), obs, not_before=KILL, bounds={}, leaders_before=8)
    assert after.store_up_at == pytest.approx(started, abs=0.001)


def test_store_up_is_the_first_heartbeat_when_it_falls_within_the_whole_second_start() -> None:
    """PD's start time in whole seconds; a beat within that second can only be the first one."""
    obs = _obs(
        KILL + 4,
        store_state="Up",
        store_started=float(int(KILL + 2)),
        store_last_heartbeat=int(KILL + 2) + 0.3,
        unhealthy_regions=0,
    )
    after = record_recovery(Timeline(injectedAt=KILL), obs, not_before=KILL, bounds={}, leaders_before=8)
    assert after.store_up_at == pytest.approx(int(KILL + 2) + 0.3, abs=0.001)


# -- several victims (fault.count) ---------------------------------------------------------------------
def test_victim_sets_are_repeatable_and_keep_every_regions_majority() -> None:
    # Regions over five stores with three replicas each: 10-11-12 and 12-13-14 share store 12.
    regions = {1: {"a", "b", "c"}, 2: {"c", "d", "e"}}

    def losing(gone: frozenset[str]) -> list[int]:
        return [r for r, voters in regions.items() if len(voters - gone) < 2]

    chosen, refusal = decisions.choose_victims(list("abcde"), 2, "seed-1", losing)
    assert len(chosen) == 2 and not losing(frozenset(chosen)) and refusal is None
    assert decisions.choose_victims(list("edcba"), 2, "seed-1", losing)[0] == chosen, "same seed, same set"
    # Three at once always takes two voters of some region: refused, with the first set tried.
    none, refusal = decisions.choose_victims(list("abcde"), 3, "seed-1", losing)
    assert none == [] and refusal is not None and refusal[1] == losing(frozenset(refusal[0]))


def test_several_victims_recover_when_the_last_one_does() -> None:
    a = _obs(
        KILL + 5,
        pod_ready=True,
        pod_ready_since=KILL + 2,
        store_state="Up",
        store_started=KILL + 2.5,
        unhealthy_regions=0,
        leaders=1,
    )
    b = _obs(
        KILL + 5.1,
        pod_ready=True,
        pod_ready_since=KILL + 4,
        store_state="Up",
        store_started=KILL + 4.2,
        unhealthy_regions=1,
        leaders=2,
    )
    both = recovery_moments.combined([a, b], KILL)
    assert both.pod_ready_since == KILL + 4 and both.store_started == KILL + 4.2
    assert both.unhealthy_regions == 1 and both.leaders == 3 and not both.whole(KILL)
    # One store not back yet decides: the pair is not re-registered, whatever the other did.
    c = _obs(KILL + 5.2, store_state="Disconnected", store_started=KILL - 100)
    assert not recovery_moments.combined([a, c], KILL).store_reregistered(KILL)
    assert recovery_moments.combined([a, b.__class__(**{**b.__dict__, "unhealthy_regions": 0})], KILL).whole(
        KILL
    )
