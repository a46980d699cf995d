"""Coverage across recorded drills: records kept in real SQLite (once per run), the per-source
summary (caught, TTD median/p95/worst, the reason most misses share), and the proposals' text."""

from __future__ import annotations

from pathlib import Path

from controller.coverage import records
from controller.coverage.records import DrillRecord, SourceOutcome, VictimRef
from controller.coverage.summary import Proposal, percentile, summarize
from controller.operator.state import DrillStatus, RunSnapshot
from controller.tickets import TicketDB
from controller.timefmt import format_rfc3339

T0 = 1_750_000_000.0


def drill(n: int, fault: str, outcomes: list[SourceOutcome], schedule: str = "nightly") -> DrillRecord:
    kill = T0 + 600 * n
    return DrillRecord(
        uid=f"uid-{n}",
        generation=1,
        namespace="drills",
        name=f"d{n}",
        schedule=schedule,
        fault=fault,
        verdict="Pass",
        injected_at=kill,
        window_end=kill + 120,
        store_up_at=kill + 3,
        target_namespace="tikv",
        pd_address="http://127.0.0.1:2379",
        victims=[VictimRef(pod="tikv-1", namespace="tikv", store_id=2, status_address="127.0.0.2:20180")],
        sources=outcomes,
    )


def caught(name: str, ttd: float) -> SourceOutcome:
    return SourceOutcome(name=name, type="prometheus", state="Detected", ttd_seconds=ttd, alertnames=[name])


def missed(name: str, why: str) -> SourceOutcome:
    return SourceOutcome(name=name, type="prometheus", state="Missed", why=why, alertnames=[name])


def test_the_summary_counts_times_and_names_the_commonest_miss() -> None:
    runs = [
        drill(
            i,
            "pod-kill",
            [caught("restart", 60.0 + i), missed("disconnect", f"store back after {2 + i / 10:.1f}s")],
        )
        for i in range(9)
    ]
    runs.append(
        drill(9, "pod-kill", [caught("restart", 90.0), missed("disconnect", "Prometheus was unreachable")])
    )
    runs.append(drill(10, "store-outage", [caught("disconnect", 81.0), missed("restart", "no restart")]))
    coverage = summarize(runs)
    assert [f.fault for f in coverage.faults] == ["pod-kill", "store-outage"] and coverage.drills == 11
    kill = coverage.faults[0]
    restart, disconnect = kill.sources
    assert (restart.caught, restart.drills, restart.missed) == (10, 10, 0)
    assert (restart.ttd_median, restart.ttd_p95, restart.ttd_worst) == (64.0, 90.0, 90.0)
    assert restart.verdict == "caught every drill" and disconnect.verdict == "missed every drill"
    # Nine misses share a reason whatever their numbers; one differs.
    assert disconnect.dominant_miss == "store back after 2.0s" and disconnect.dominant_miss_count == 9
    assert kill.missed_by_some and not coverage.faults[1].sources[0].missed


def test_percentile_is_nearest_rank() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([7.0], 95) == 7.0


def test_a_proposal_says_how_often_and_how_fast() -> None:
    p = Proposal(
        name="X", expr="up == 0", for_seconds=15, meaning="m", fired=9, drills=10, delays=[18, 17, 21] * 3
    )
    assert p.sentence == "would have fired 18s after the kill (median; worst 21s) in 9 of 10 drills"
    assert Proposal(name="X", expr="e", for_seconds=0, meaning="m", drills=4).sentence == (
        "would have fired in none of 4 drills"
    )


async def test_records_are_kept_once_per_run_and_read_back_by_range_and_schedule(tmp_path: Path) -> None:
    async with TicketDB(tmp_path / "t.db") as db:
        for n in range(4):
            await records.save(
                db, drill(n, "pod-kill", [caught("restart", 60.0)], schedule="nightly" if n else "")
            )
        await records.save(db, drill(1, "pod-kill", [caught("restart", 61.0)]))  # the same run again
        every = await records.load(db)
        assert [r.name for r in every] == ["d0", "d1", "d2", "d3"]
        assert every[1].sources[0].ttd_seconds == 61.0
        assert [r.name for r in await records.load(db, since=T0 + 600, until=T0 + 1800)] == ["d1", "d2"]
        assert [r.name for r in await records.load(db, schedule="nightly", limit=2)] == ["d2", "d3"]


def test_a_record_is_made_only_for_a_run_that_injected() -> None:
    obj = {
        "metadata": {"uid": "u", "namespace": "drills", "name": "n", "labels": {records.SCHEDULE_LABEL: "s"}}
    }
    run = RunSnapshot(
        generation=3,
        spec={"detection": {"timeoutSeconds": 90, "sources": [{"type": "prometheus", "alertnames": ["A"]}]}},
        targetNamespace="tikv",
        pdAddress="http://pd:2379",
    )
    refused = DrillStatus.model_validate({"timeline": {}})
    assert records.from_run(obj, refused, run, "Error") is None
    status = DrillStatus.model_validate(
        {
            "timeline": {"injectedAt": format_rfc3339(T0), "storeUpAt": format_rfc3339(T0 + 2.5)},
            "victim": {"namespace": "tikv", "pod": "tikv-0", "uid": "p", "storeId": 1},
            "detection": {
                "sources": [{"name": "prometheus", "type": "prometheus", "state": "Missed", "why": "w"}]
            },
        }
    )
    record = records.from_run(obj, status, run, "Undetected")
    assert record is not None
    assert (record.schedule, record.generation, record.window_end, record.outage_seconds) == (
        "s",
        3,
        T0 + 90,
        2.5,
    )
    assert record.sources[0].alertnames == ["A"] and record.victims[0].pod == "tikv-0"


def test_the_drill_report_names_the_victim_and_lists_ignored_alerts() -> None:
    from controller.ui.report import detection_table

    kill = format_rfc3339(T0)
    sources = [
        {
            "name": "any",
            "type": "prometheus",
            "required": True,
            "state": "Detected",
            "alert": "TiKV_node_restart",
            "victim": "tikv-3",
            "firingAt": format_rfc3339(T0 + 64.2),
            "ttdSeconds": 64.2,
            "ignored": [
                {
                    "alert": "NodeDiskAlmostFull",
                    "reason": "names neither a victim nor this cluster (job=node)",
                    "firingAt": format_rfc3339(T0 + 2.0),
                }
            ],
        }
    ]
    text = "\n".join(detection_table(sources, kill))
    assert "| TiKV_node_restart (tikv-3) | - | +64.2s | 64.2s |" in text
    assert (
        "- NodeDiskAlmostFull (any, fired +2.0s): names neither a victim nor this cluster (job=node)" in text
    )
