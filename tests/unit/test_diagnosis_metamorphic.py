"""Metamorphic properties of the offline diagnoser over the whole scenario suite (both folders):
renaming the TiKV pods (tidb-operator's ``basic-tikv-N`` and others), their namespace, the store
ids and PD's members; shifting every timestamp; reordering the lists the sources return; adding
unrelated noise; and removing a source the diagnosis did not rest on must not change the category,
and the summary must follow the renames."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.diagnosis.grading import names
from controller.diagnosis.inputs import DiagnosisInput
from controller.diagnosis.scenarios import Scenario, load_suite
from controller.diagnosis.service import diagnose

SUITE = load_suite(Path(__file__).resolve().parents[1] / "scenarios") + load_suite(
    Path(__file__).resolve().parents[1] / "scenarios_external"
)
# A TiKV pod name, not a metric (tikv_...) nor a word: "tikv-" as a name starts.
POD = re.compile(r"(?<![\w-])tikv-")


def _renamed(data: DiagnosisInput, prefix: str, namespace: str) -> DiagnosisInput:
    """The pods renamed, and their namespace (in addresses and in the pods' own fields)."""
    text = POD.sub(f"{prefix}tikv-", data.model_dump_json())
    text = text.replace(".tikv.svc", f".{namespace}.svc").replace(
        '"namespace":"tikv"', f'"namespace":"{namespace}"'
    )
    return DiagnosisInput.model_validate_json(text)


def _reordered(data: DiagnosisInput, seed: int) -> DiagnosisInput:
    rng = random.Random(seed)
    raw = json.loads(data.model_dump_json())
    for key in ("stores", "pods", "metrics", "events", "recent_tickets"):
        if isinstance(raw.get(key), list):
            rng.shuffle(raw[key])
    return DiagnosisInput.model_validate(raw)


# Fields that hold a moment, in seconds; PD's heartbeat is in nanoseconds.
SECONDS = frozenset(
    {
        "now",
        "opened_at",
        "last_seen_at",
        "resolved_at",
        "at",
        "start_timestamp",
        "created_at",
        "last_finished_at",
        "last_seen",
        "injected_at",
        "diagnosed_at",
    }
)
STORE_ID = re.compile(r"\bstore/(\d+)\b")
PD_MEMBER = re.compile(r"(?<![\w-])pd-(?=\d)")


def _shift_field(key: str, value: object, by: float) -> object:
    if not isinstance(value, int | float) or not value:  # 0 / None: "never", not a moment
        return _shift_times(value, by)
    if key in SECONDS:
        return value + by
    if key == "last_heartbeat":
        return int(value + by * 1e9)
    return value


def _shift_times(node: object, by: float) -> object:
    if isinstance(node, dict):
        return {k: _shift_field(k, v, by) for k, v in node.items()}
    if isinstance(node, list):
        return [_shift_times(v, by) for v in node]
    return node


def _time_shifted(data: DiagnosisInput, by: float) -> DiagnosisInput:
    """Every moment moved by the same amount: only differences between moments may matter."""
    return DiagnosisInput.model_validate(_shift_times(json.loads(data.model_dump_json()), by))


def _store_ids_renamed(data: DiagnosisInput, offset: int) -> DiagnosisInput:
    """Store ids as another cluster numbers them (tidb-operator's stores start at 1, 4, 1001...)."""
    raw = json.loads(data.model_dump_json())

    def new(sid: int) -> int:
        return sid + offset

    for t in [raw["ticket"], *raw.get("recent_tickets", [])]:
        if t.get("store_id") is not None:
            t["store_id"] = new(t["store_id"])
        t["subject"] = STORE_ID.sub(lambda m: f"store/{new(int(m.group(1)))}", t["subject"])
    for s in raw.get("stores") or []:
        s["store"]["id"] = new(s["store"]["id"])
    for r in (raw.get("regions") or {}).get("regions", []):
        for peer in [*r["peers"], r.get("leader") or {}, *r.get("pending_peers", [])] + [
            d["peer"] for d in r.get("down_peers", [])
        ]:
            if "store_id" in peer:
                peer["store_id"] = new(peer["store_id"])
    for m in raw.get("metrics", []):
        if m["labels"].get("store_id", "").isdigit():
            m["labels"]["store_id"] = str(new(int(m["labels"]["store_id"])))
    if raw.get("drill") and raw["drill"].get("store_id") is not None:
        raw["drill"]["store_id"] = new(raw["drill"]["store_id"])
    return DiagnosisInput.model_validate(raw)


def _pd_members_renamed(data: DiagnosisInput, prefix: str) -> DiagnosisInput:
    return DiagnosisInput.model_validate_json(PD_MEMBER.sub(f"{prefix}pd-", data.model_dump_json()))


def _with_noise(data: DiagnosisInput) -> DiagnosisInput:
    """Things a real cluster shows that have nothing to do with the incident: another component's
    warnings, an old resolved ticket, and (where PD's regions say where every replica is) a
    healthy store holding none of them."""
    raw = json.loads(data.model_dump_json())
    now = raw["now"]
    raw["events"] = [
        *raw.get("events", []),
        {
            "type": "Warning",
            "reason": "BackOff",
            "object": "pod/tidb-dashboard-0",
            "message": "Back-off restarting failed container",
            "count": 3,
            "last_seen": now - 5,
        },
        {
            "type": "Warning",
            "reason": "Unhealthy",
            "object": "pod/grafana-7c9f",
            "message": "Readiness probe failed",
            "count": 1,
            "last_seen": now - 8,
        },
    ]
    old = {
        **raw["ticket"],
        "id": 90_001,
        "status": "resolved",
        "opened_at": now - 86_400,
        "last_seen_at": now - 86_300,
        "resolved_at": now - 86_200,
        "observations": [],
    }
    raw["recent_tickets"] = [*raw.get("recent_tickets", []), old]
    if raw.get("stores") and raw.get("regions") is not None:
        healthy = json.loads(json.dumps(raw["stores"][0]))
        healthy["store"].update(
            id=9_999,
            state_name="Up",
            state=0,
            address="tikv-extra.tikv-peer.tikv.svc:20160",
            status_address="tikv-extra.tikv-peer.tikv.svc:20180",
            start_timestamp=int(now - 7_200),
            last_heartbeat=int((now - 1) * 1e9),
        )
        raw["stores"] = [*raw["stores"], healthy]
    return DiagnosisInput.model_validate(raw)


async def _category_and_summary(scenario: Scenario, data: DiagnosisInput) -> tuple[str, str]:
    result = await diagnose(data, provider="offline", blind=scenario.blind)
    return result.output.root_cause_category.value, result.output.summary


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    scenario=st.sampled_from(SUITE),
    prefix=st.sampled_from(["basic-", "prod-eu-", "db1-"]),
    namespace=st.sampled_from(["tikv", "tidb-cluster", "prod"]),
    seed=st.integers(0, 2**16),
)
async def test_renames_and_reorders_change_nothing_but_the_names(
    scenario: Scenario, prefix: str, namespace: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    category, _ = await _category_and_summary(scenario, scenario.data)
    changed = _reordered(_renamed(scenario.data, prefix, namespace), seed)
    new_category, summary = await _category_and_summary(scenario, changed)
    assert new_category == category, (scenario.name, prefix, namespace, seed)
    for pod in scenario.expect.get("summary_names", []):
        assert names(summary, POD.sub(f"{prefix}tikv-", pod)), (scenario.name, summary)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    scenario=st.sampled_from(SUITE),
    shift=st.integers(-5_000_000, 5_000_000).filter(lambda x: x != 0),  # PD's start times are whole seconds
    offset=st.sampled_from([3, 100, 1000]),
    pd_prefix=st.sampled_from(["basic-", "prod-"]),
    noise=st.booleans(),
)
async def test_time_shift_ids_members_and_noise_change_nothing_but_the_names(
    scenario: Scenario,
    shift: int,
    offset: int,
    pd_prefix: str,
    noise: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    category, _ = await _category_and_summary(scenario, scenario.data)
    changed = _pd_members_renamed(_store_ids_renamed(_time_shifted(scenario.data, shift), offset), pd_prefix)
    if noise:
        changed = _with_noise(changed)
    new_category, summary = await _category_and_summary(scenario, changed)
    assert new_category == category, (scenario.name, shift, offset, pd_prefix, noise, summary)
    for pod in scenario.expect.get("summary_names", []):
        assert names(summary, PD_MEMBER.sub(f"{pd_prefix}pd-", pod)), (scenario.name, summary)
    # Old store ids never leak into the summary once the stores are renumbered.
    old_id = scenario.data.ticket.store_id
    if old_id is not None and f"store {old_id + offset}" not in summary:
        assert f"store {old_id} " not in summary and f"store {old_id})" not in summary, summary
    assert not PD_MEMBER.search(summary.replace(f"{pd_prefix}pd-", "")), summary


OPTIONAL_SOURCES = {
    "regions": {"regions": None},
    "metrics": {"metrics": [], "metrics_available": False},
    "pods": {"pods": []},
    "events": {"events": []},
    "pd": {"pd": None},
}


@pytest.mark.parametrize("scenario", SUITE, ids=lambda s: s.name)
async def test_removing_a_source_the_diagnosis_did_not_rest_on_changes_nothing(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source none of whose evidence (nor any fact drawn from it) was cited did not decide the
    diagnosis: without it, the same category. (Regions and PD's members are seen through the facts
    and the cluster overview, so they count as cited when those are.)"""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = await diagnose(scenario.data, provider="offline", blind=scenario.blind)
    cited = {c.id for c in result.output.evidence}
    rested_on = {key for key, eid in result.bundle.keys.items() if eid in cited}
    for fact in result.bundle.facts:
        if fact.id in cited:
            rested_on |= {key for key, eid in result.bundle.keys.items() if eid in fact.rests_on}
    if "cluster" in rested_on:
        rested_on |= {"regions", "pd"}
    for source, removal in OPTIONAL_SOURCES.items():
        if source in rested_on or getattr(scenario.data, source) in (None, []):
            continue
        without = scenario.data.model_copy(update=removal)
        category, summary = await _category_and_summary(scenario, without)
        assert category == result.output.root_cause_category.value, (scenario.name, source, summary)
