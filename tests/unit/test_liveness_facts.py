"""Liveness facts: each answer rests on a source that saw it, an unanswerable question stays
unknown with its reason, and the numbered facts the diagnosers cite name evidence that exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.diagnosis.evidence import build_evidence
from controller.diagnosis.facts import derive
from controller.diagnosis.inputs import DiagnosisInput, KubeEvent, MetricSummary, PodState
from controller.diagnosis.liveness import PressureKind, Source
from controller.diagnosis.scenarios import load_scenario, load_suite
from controller.diagnosis.service import diagnose
from controller.tickets.models import Observation

TESTS = Path(__file__).resolve().parents[1]
SUITE = load_suite(TESTS / "scenarios") + load_suite(TESTS / "scenarios_external")


def _killed() -> DiagnosisInput:
    """Store 2 (tikv-1): probe and scrape failed, PD has a new start time (scenario 01)."""
    return load_scenario(TESTS / "scenarios" / "01-killed-tikv-pod.yaml").data


def _paused() -> DiagnosisInput:
    """The same store with its process gone inside a pod that stays Running and Ready, PD not
    yet told, no restart anywhere: what a paused container looks like."""
    data = _killed()
    data.ticket.signals = ["store_unreachable"]
    data.ticket.observations = [o for o in data.ticket.observations if o.signal == "store_unreachable"]
    assert data.stores is not None
    old = data.stores[1].store.model_copy(update={"start_timestamp": int(data.ticket.opened_at - 3600)})
    data.stores[1] = data.stores[1].model_copy(update={"store": old})
    data.metrics = []
    data.metrics_available = False
    data.pods = [PodState(name="tikv-1", created_at=data.ticket.opened_at - 3600)]
    return data


def _ticket_store(data: DiagnosisInput):  # type: ignore[no-untyped-def]
    store = derive(data).ticket_store
    assert store is not None
    return store


def test_a_ready_pod_is_no_evidence_that_the_process_runs() -> None:
    store = _ticket_store(_paused())
    alive = store.liveness.alive
    assert alive.verdict is False
    assert [(f.source, f.value) for f in alive.findings] == [(Source.TICKET, False)]
    assert store.liveness.restarted.verdict is False and not store.liveness.restarted.findings
    # No scrape series: whether the monitor reached it over the window rests on the probe alone.
    assert store.liveness.reachable_from_monitor.first(Source.PROMETHEUS) is None
    assert store.scrape_failed is None


def test_a_replacement_still_pending_is_gone_and_a_running_one_restarted() -> None:
    data = _paused()
    data.pods = [
        PodState(name="tikv-1", phase="Pending", ready=False, created_at=data.ticket.opened_at + 2),
    ]
    store = _ticket_store(data)
    assert store.liveness.alive.verdict is False
    assert (Source.PODS, False) in [(f.source, f.value) for f in store.liveness.alive.findings]
    assert store.liveness.restarted.verdict is False  # no process started yet

    data.pods[0].phase, data.pods[0].ready = "Running", True
    store = _ticket_store(data)
    assert store.liveness.restarted.verdict is True
    assert store.liveness.restarted.first(Source.PODS) is not None
    assert store.liveness.alive.first(Source.PODS) is None


async def test_a_container_that_cannot_start_stopped_and_did_not_restart() -> None:
    """tidb-operator's TiKV starts through /bin/sh: under a pause image the kubelet's start
    fails (StartError) and it backs off (CrashLoopBackOff). That termination is no restart: no
    new process ran. Once it runs again, the same history is one."""
    data = _paused()
    opened = data.ticket.opened_at
    crash_looping = PodState(
        name="tikv-1",
        ready=False,
        created_at=opened - 3600,
        image="registry.k8s.io/pause:3.10",
        restarts=1,
        waiting_reason="CrashLoopBackOff",
        last_termination_reason="StartError",
        last_exit_code=128,
        last_finished_at=opened - 1,
    )
    data.pods = [crash_looping]
    store = _ticket_store(data)
    assert store.liveness.restarted.verdict is False, store.liveness.restarted
    alive = store.liveness.alive
    assert alive.verdict is False
    assert any(
        f.source == Source.PODS and "CrashLoopBackOff, last StartError" in f.words for f in alive.findings
    )
    result = await diagnose(data, provider="offline")
    assert result.output.root_cause_category.value == "tikv_store_down", result.output

    # The same back-off with TiKV's own image is TiKV failing at start.
    data.pods = [
        crash_looping.model_copy(update={"image": "pingcap/tikv:v8.5.0", "last_termination_reason": "Error"})
    ]
    result = await diagnose(data, provider="offline")
    assert result.output.root_cause_category.value == "crash_loop", result.output

    data.pods = [
        crash_looping.model_copy(
            update={"ready": True, "waiting_reason": "", "restarts": 2, "image": "pingcap/tikv:v8.5.0"}
        )
    ]
    assert _ticket_store(data).liveness.restarted.verdict is True


async def test_a_pause_container_that_runs_is_a_stopped_store_not_a_restart() -> None:
    """Without a command of its own the pause image's entrypoint runs: the kubelet restarted the
    container (a fresh termination, no back-off) but into a pause image, and the readiness
    probe never passes. No TiKV process ran: a stopped store, not TiKV restarting."""
    data = _paused()
    opened = data.ticket.opened_at
    data.pods = [
        PodState(
            name="tikv-1",
            ready=False,
            created_at=opened - 3600,
            image="registry.k8s.io/pause:3.10",
            restarts=1,
            last_termination_reason="Completed",
            last_exit_code=0,
            last_finished_at=opened - 1,
        )
    ]
    store = _ticket_store(data)
    assert store.liveness.restarted.verdict is False, store.liveness.restarted
    alive = store.liveness.alive
    assert alive.verdict is False and any(
        f.source == Source.PODS and "pause image" in f.words for f in alive.findings
    ), alive
    result = await diagnose(data, provider="offline")
    assert result.output.root_cause_category.value == "tikv_store_down", result.output


def test_nothing_to_read_leaves_every_answer_unknown_with_its_reason() -> None:
    data = _paused()
    data.ticket.observations = []
    data.ticket.signals = []
    data.stores = None
    data.pods = []
    store = _ticket_store(data)
    live = store.liveness
    for answer in (live.alive, live.restarted, live.reachable_from_pd, live.reachable_from_peers):
        assert answer.verdict is None and not answer.findings and answer.unknown_because


@pytest.mark.parametrize(
    ("reason", "message", "kind"),
    [
        ("Evicted", "The node was low on resource: ephemeral-storage.", PressureKind.DISK),
        ("Evicted", "The node was low on resource: memory.", PressureKind.MEMORY),
        ("OOMKilling", "Memory cgroup out of memory: Killed process 12 (tikv-server)", PressureKind.MEMORY),
        ("FreeDiskSpaceFailed", "failed to garbage collect required amount of images", PressureKind.DISK),
    ],
)
def test_pressure_names_the_resource(reason: str, message: str, kind: PressureKind) -> None:
    data = _paused()
    data.events = [KubeEvent(type="Warning", reason=reason, message=message, object="pod/tikv-1")]
    pressure = _ticket_store(data).liveness.pressure
    assert [(p.kind, p.source) for p in pressure] == [(kind, Source.EVENTS)]


def test_pressure_on_another_pod_is_not_this_stores() -> None:
    data = _paused()
    data.events = [KubeEvent(reason="Evicted", message="low on resource: memory", object="pod/tikv-0")]
    assert _ticket_store(data).liveness.pressure == []


@pytest.mark.parametrize(("delta", "verdict"), [(0.0, True), (12.0, False)])
def test_peers_answer_only_with_a_series(delta: float, verdict: bool) -> None:
    data = _killed()
    data.metrics.append(
        MetricSummary(
            name="unreachable_reports", labels={"store_id": "2"}, before=0, after=delta, delta=delta
        )
    )
    peers = _ticket_store(data).liveness.reachable_from_peers
    assert peers.verdict is verdict and peers.first(Source.PROMETHEUS) is not None
    assert _ticket_store(_killed()).liveness.reachable_from_peers.verdict is None


def test_pd_members_are_named_from_the_ticket_when_pd_cannot_be_read() -> None:
    data = _killed()
    data.stores, data.pd = None, None
    data.ticket.observations += [
        data.ticket.observations[0].model_copy(
            update={"signal": "pd_unhealthy", "source": "pd", "data": {"members": ["pd-1"]}}
        ),
        data.ticket.observations[0].model_copy(
            update={
                "signal": "pd_leader_changed",
                "source": "pd",
                "data": {"previous": "pd-0", "current": "pd-2"},
            }
        ),
    ]
    facts = derive(data)
    by_name = {m.name: m for m in facts.pd_member_liveness}
    assert (
        by_name["pd-1"].healthy.verdict is False
        and by_name["pd-1"].healthy.findings[0].source == Source.TICKET
    )
    assert by_name["pd-0"].lost_leadership and by_name["pd-2"].leader
    assert facts.pd_members_unhealthy == ["pd-1"] and facts.pd_leader == "pd-2"


@pytest.mark.parametrize("scenario", SUITE, ids=lambda s: s.name)
async def test_facts_cite_evidence_that_is_there_and_diagnoses_cite_what_exists(
    scenario: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    data: DiagnosisInput = scenario.data  # type: ignore[attr-defined]
    bundle = build_evidence(data)
    evidence_ids = {e.id for e in bundle.items}
    cluster = next(e for e in bundle.items if e.id == bundle.id_for("cluster"))
    for fact in bundle.facts:
        assert set(fact.rests_on) <= evidence_ids, fact
        assert f"[{fact.id}] " in cluster.body
    result = await diagnose(data, provider="offline")
    cited = {c.id for c in result.output.evidence}
    assert cited <= result.bundle.ids()
    store = derive(data).ticket_store
    if result.output.root_cause_category.value in (
        "tikv_pod_failure",
        "tikv_store_down",
        "network_partition",
    ):
        # A store diagnosis rests on that store's derived facts, not only on whole sources.
        assert store is not None and any(i.startswith("F") for i in cited), (scenario, cited)


def test_a_fact_the_budget_cut_cannot_be_cited() -> None:
    data = _killed()
    whole = build_evidence(data)
    assert whole.id_for("store:2:alive") == "F1" and "F1" in whole.ids()
    cut = build_evidence(data, budgets={"cluster": 300})
    assert cut.facts and not any(f.id in cut.ids() for f in cut.facts)
    assert cut.id_for("store:2:alive") is None


async def test_a_store_back_with_the_same_process_after_pd_lost_it_was_cut_off() -> None:
    """PD marked it Disconnected (the ticket) and has it Up again from the process that ran before
    (no restart, the pod not replaced): it never died, so a partition that has healed; were it
    restarted, it would be a restart."""
    data = _paused()
    opened = data.ticket.opened_at
    data.ticket.signals = ["store_disconnected"]
    data.ticket.observations = [
        Observation(signal="store_disconnected", source="pd", at=opened, detail="PD state_name Disconnected")
    ]
    assert data.stores is not None
    data.stores[1] = data.stores[1].model_copy(
        update={
            "store": data.stores[1].store.model_copy(
                update={"state_name": "Up", "last_heartbeat": int((opened + 30) * 1e9)}
            )
        }
    )
    data.pods = [PodState(name="tikv-1", ready=True, created_at=opened - 3600)]
    result = await diagnose(data, provider="offline")
    assert result.output.root_cause_category.value == "network_partition", result.output
    assert "without restarting" in result.output.summary

    restarted = data.stores[1].store.model_copy(update={"start_timestamp": int(opened + 5)})
    data.stores[1] = data.stores[1].model_copy(update={"store": restarted})
    result = await diagnose(data, provider="offline")
    assert result.output.root_cause_category.value != "network_partition", result.output
