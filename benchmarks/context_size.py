"""Diagnosis context size (tokens ~ characters / 4) at 3 and 1,000 stores, and the offline
diagnoser's time. Target: <= 8,000 tokens at both; the budgets hold."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.common import summary, write
from controller.diagnosis.evidence import KubeEvent, MetricSummary, build_evidence
from controller.diagnosis.offline import diagnose_offline
from controller.diagnosis.scenarios import _store_json, load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "tests" / "scenarios" / "01-killed-tikv-pod.yaml"


def context_for(stores: int) -> dict[str, object]:
    data = load_scenario(SCENARIO).data
    from controller.pd.models import StoreInfo

    data.stores = [
        StoreInfo.model_validate(_store_json({"id": i + 1, "pod": f"tikv-{i}"}, data.now))
        for i in range(stores)
    ]
    # Per store: up, leaders, process start and unreachable reports, as the controller gathers them.
    data.metrics = [
        MetricSummary(name=name, labels={"pod": f"tikv-{i}"}, before=1, after=1, min=0, max=1, delta=0)
        for i in range(stores)
        for name in ("up", "leaders", "process_start", "unreachable_reports")
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
            "description": "evidence bundle for a killed-pod ticket with a stores table, 4 metric summaries per "
            "store and up to 30 events; tokens estimated as characters / 4",
            "by_stores": rows,
            "target": "<= 8,000 tokens at 3 and 1,000 stores",
            "met": all(r["prompt_tokens_estimate"] <= 8000 for r in rows.values()),  # type: ignore[operator]
        },
    )


if __name__ == "__main__":
    main()
