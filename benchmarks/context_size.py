"""Diagnosis context size (tokens ~ characters / 4) at 3 and 1,000 stores, and the offline
diagnoser's time. Target: <= 8,000 tokens at both; the budgets hold.

The bundle carries everything the controller gathers: PD's stores and regions (3 voters each,
10 regions per store), PD's members, 4 metric summaries per store, every TiKV pod's state, 30
events, 10 recent tickets; and, to fill the cluster overview, 25 affected stores (Disconnected,
failing scrapes, reported unreachable) besides the ticket's."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.common import summary, write
from controller.diagnosis.evidence import build_evidence
from controller.diagnosis.inputs import KubeEvent, MetricSummary, PDView, PodState
from controller.diagnosis.offline import diagnose_offline
from controller.diagnosis.scenarios import _pd_json, _regions_json, _store_json, load_scenario
from controller.pd.models import RegionCheck

SCENARIO = Path(__file__).resolve().parents[1] / "tests" / "scenarios" / "01-killed-tikv-pod.yaml"


def context_for(stores: int) -> dict[str, object]:
    data = load_scenario(SCENARIO).data
    from controller.pd.models import StoreInfo

    affected = set(range(3, min(stores, 28)))  # store ids besides the ticket's (2)
    data.stores = [
        StoreInfo.model_validate(
            _store_json(
                {"id": i + 1, "pod": f"tikv-{i}", "state": "Disconnected" if i + 1 in affected else "Up"},
                data.now,
            )
        )
        for i in range(stores)
    ]
    data.regions = RegionCheck.model_validate(
        _regions_json(
            [
                {"id": r + 1, "stores": [r % stores + 1, (r + 1) % stores + 1, (r + 2) % stores + 1]}
                for r in range(10 * stores)
            ]
        )
    )
    data.pd = PDView.model_validate(
        _pd_json({"members": [{"name": f"pd-{i}"} for i in range(3)], "leader": "pd-0"})
    )
    # Per store: up, leaders, process start and unreachable reports, as the controller gathers them.
    data.metrics = [
        MetricSummary(
            name=name,
            labels={"pod": f"tikv-{i}"},
            before=1,
            after=0 if i + 1 in affected else 1,
            min=0,
            max=1,
            delta=0,
        )
        for i in range(stores)
        for name in ("up", "leaders", "process_start")
    ] + [
        MetricSummary(name="unreachable_reports", labels={"store_id": str(i + 1)}, before=0, after=9, delta=9)
        for i in range(stores)
        if i + 1 in affected
    ]
    data.pods = [PodState(name=f"tikv-{i}", ready=i + 1 not in affected, restarts=1) for i in range(stores)][
        :40
    ]
    data.events = [
        KubeEvent(
            type="Warning",
            reason="Unhealthy",
            object=f"pod/tikv-{i}",
            message="Readiness probe failed: connection refused",
        )
        for i in range(min(stores, 30))
    ]
    bundle = build_evidence(data)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        diagnose_offline(data, bundle)
        times.append((time.perf_counter() - t0) * 1000)
    b0 = time.perf_counter()
    for _ in range(20):
        build_evidence(data)
    return {
        "prompt_chars": bundle.chars,
        "prompt_tokens_estimate": bundle.chars // 4,
        "evidence_items": len(bundle.items),
        "dropped": bundle.dropped,
        "build_evidence_ms": round((time.perf_counter() - b0) * 50, 2),
        "offline_diagnoser_ms": summary(times),
    }


def main() -> None:
    rows = {str(n): context_for(n) for n in (3, 1000)}
    write(
        "context_size",
        {
            "description": "evidence bundle for a killed-pod ticket with PD's stores, regions (10 per store) "
            "and members, 4 metric summaries per store, pod states, 30 events and 25 other affected "
            "stores; tokens estimated as characters / 4",
            "by_stores": rows,
            "target": "<= 8,000 tokens at 3 and 1,000 stores",
            "met": all(r["prompt_tokens_estimate"] <= 8000 for r in rows.values()),  # type: ignore[operator]
        },
    )


if __name__ == "__main__":
    main()
