"""The offline rule diagnoser: deterministic, no network, the same output schema as Claude.

It reads only the evidence (never the drill record), so a blind drill and a normal one get the
same answer. Rules go from the most specific to the least; the first that matches wins.
"""

from __future__ import annotations

from controller.diagnosis.evidence import DiagnosisInput, EvidenceBundle
from controller.diagnosis.schema import (
    Confidence,
    DiagnosisOutput,
    EvidenceCitation,
    RootCauseCategory,
    Severity,
)
from controller.pd.models import StoreInfo

NAME = "offline-rules"
NODE_FAILURE_REASONS = (
    "NodeNotReady",
    "NodeNotSchedulable",
    "NodeShutdown",
    "NodeLost",
    "TaintManagerEviction",
)
RESOURCE_REASONS = ("Evicted", "OOMKilling", "OOMKilled", "FreeDiskSpaceFailed", "EvictionThresholdMet")


def _cite(bundle: EvidenceBundle, key: str, why: str) -> list[EvidenceCitation]:
    eid = bundle.id_for(key)
    return [EvidenceCitation(id=eid, why=why)] if eid else []


def _store(data: DiagnosisInput) -> StoreInfo | None:
    if data.stores is None or data.ticket.store_id is None:
        return None
    return next((s for s in data.stores if s.id == data.ticket.store_id), None)


def _events_about(data: DiagnosisInput, reasons: tuple[str, ...]) -> list[str]:
    return [f"{e.reason}: {e.message}" for e in data.events if e.reason in reasons]


def diagnose_offline(data: DiagnosisInput, bundle: EvidenceBundle) -> DiagnosisOutput:
    t = data.ticket
    signals = set(t.signals)
    sources = {o.source for o in t.observations}
    who = t.pod or t.subject
    store = _store(data)
    state_now = store.store.state_name if store else None
    ticket_cite = _cite(bundle, "ticket", f"the monitor saw {', '.join(sorted(signals))} on {t.subject}")
    stores_cite = _cite(bundle, "stores", f"PD reports store {t.store_id} as {state_now}") if store else []
    metrics_cite = (
        _cite(bundle, "metrics", "scrape and leader counts around the incident") if data.metrics else []
    )

    if "pd_unhealthy" in signals:
        return DiagnosisOutput(
            summary="PD, the placement driver, is unreachable or reports an unhealthy member.",
            root_cause="PD cannot be reached by the monitor (or a PD member is unhealthy); TiKV cannot get "
            "timestamps or routing while PD has no leader.",
            root_cause_category=RootCauseCategory.PD_UNAVAILABLE,
            severity=Severity.CRITICAL,
            confidence=Confidence.HIGH
            if "unreachable" in " ".join(o.detail for o in t.observations)
            else Confidence.MEDIUM,
            evidence=ticket_cite,
            recommended_actions=[
                "Check the PD pods and their logs (kubectl get pods -l app.kubernetes.io/component=pd)",
                "Check PD's /pd/api/v1/health and its leader",
                "Check the PD Service and network policy",
            ],
            open_questions=["Is PD down, or only unreachable from the monitor?"],
        )

    node_events = _events_about(data, NODE_FAILURE_REASONS)
    if node_events and signals & {"store_unreachable", "store_disconnected", "store_down"}:
        return DiagnosisOutput(
            summary=f"The node under {who} failed, taking its TiKV store with it.",
            root_cause=f"Kubernetes reports the node hosting {who} as failed ({node_events[0]}); the store "
            "stopped with it.",
            root_cause_category=RootCauseCategory.NODE_FAILURE,
            severity=Severity.CRITICAL if "store_down" in signals else Severity.HIGH,
            confidence=Confidence.MEDIUM,
            evidence=ticket_cite + _cite(bundle, "events", "node failure events") + stores_cite,
            recommended_actions=[
                "Check the node's status and kubelet",
                "Make sure the pod can be rescheduled (PVC topology, taints)",
            ],
            open_questions=["Will the node come back, or must its stores be replaced?"],
        )

    resource_events = _events_about(data, RESOURCE_REASONS)
    if resource_events:
        return DiagnosisOutput(
            summary=f"{who} was stopped by resource pressure.",
            root_cause=f"Kubernetes events show resource pressure on {who}: {resource_events[0]}",
            root_cause_category=RootCauseCategory.RESOURCE_EXHAUSTION,
            severity=Severity.HIGH,
            confidence=Confidence.MEDIUM,
            evidence=ticket_cite + _cite(bundle, "events", "eviction or OOM events"),
            recommended_actions=[
                "Check the pod's memory and disk limits",
                "Check the node's allocatable resources",
            ],
            open_questions=["Which resource ran out first?"],
        )

    if "store_down" in signals:
        return DiagnosisOutput(
            summary=f"TiKV store {t.store_id} ({who}) is Down: it has been gone longer than max-store-down-time.",
            root_cause=f"Store {t.store_id} stopped heartbeating to PD long enough for PD to mark it Down; PD "
            "will start re-replicating its regions elsewhere.",
            root_cause_category=RootCauseCategory.TIKV_STORE_DOWN,
            severity=Severity.CRITICAL,
            confidence=Confidence.HIGH,
            evidence=ticket_cite + stores_cite + metrics_cite,
            recommended_actions=[
                f"Find out why {who} does not come back (kubectl describe pod {who})",
                "Watch PD's replica repair (regions/check/miss-peer)",
            ],
            open_questions=["Is the store's data (PVC) intact?"],
        )

    restarted = "store_restarted" in signals
    unreachable = "store_unreachable" in signals
    if unreachable and restarted:
        back = state_now == "Up"
        independent = len(sources)
        return DiagnosisOutput(
            summary=f"TiKV pod {who} (store {t.store_id}) died and was restarted"
            f"{'; the store is Up again' if back else ''}.",
            root_cause=f"The TiKV process of store {t.store_id} in pod {who} stopped abruptly (its status port "
            "went unreachable) and came back with a new start time: a pod kill or crash followed by "
            "the StatefulSet's restart.",
            root_cause_category=RootCauseCategory.TIKV_POD_FAILURE,
            severity=Severity.MEDIUM if back else Severity.HIGH,
            confidence=Confidence.HIGH if independent >= 2 else Confidence.MEDIUM,
            evidence=ticket_cite + stores_cite + metrics_cite,
            recommended_actions=[
                f"Check why {who} stopped: kubectl describe pod {who}; its previous logs",
                "Confirm leaders rebalanced back after the restart",
                "If this was not a drill, look for OOM kills or node problems",
            ],
            open_questions=["Was the stop deliberate (a drill, an eviction) or a crash?"],
        )

    if "store_disconnected" in signals and unreachable:
        return DiagnosisOutput(
            summary=f"TiKV pod {who} (store {t.store_id}) died and has not come back yet; PD lost its heartbeats.",
            root_cause=f"The TiKV process of store {t.store_id} in pod {who} stopped (its status port is "
            "unreachable) and stayed away past PD's 20 s heartbeat threshold: a pod kill or crash "
            "whose replacement is slow to start.",
            root_cause_category=RootCauseCategory.TIKV_POD_FAILURE,
            severity=Severity.HIGH,
            confidence=Confidence.HIGH if len(sources) >= 2 else Confidence.MEDIUM,
            evidence=ticket_cite + stores_cite + metrics_cite,
            recommended_actions=[
                f"kubectl describe pod {who}: is the replacement Pending or crash-looping?",
                "Watch PD: the store turns Down after max-store-down-time and replicas move",
            ],
            open_questions=["Why is the replacement pod slow to become Ready?"],
        )

    if "store_disconnected" in signals:
        probe_ok = "probe" in sources
        category = RootCauseCategory.NETWORK_PARTITION if probe_ok else RootCauseCategory.TIKV_STORE_DOWN
        return DiagnosisOutput(
            summary=f"TiKV store {t.store_id} ({who}) stopped heartbeating to PD.",
            root_cause=f"PD has not heard from store {t.store_id} for over 20 s (Disconnected)"
            + (
                "; its status port still answers, so PD-to-store networking is suspect."
                if probe_ok
                else "; no other source confirms whether its process runs."
            ),
            root_cause_category=category,
            severity=Severity.HIGH,
            confidence=Confidence.MEDIUM,
            evidence=ticket_cite + stores_cite,
            recommended_actions=[f"kubectl describe pod {who}", "Check network policies between TiKV and PD"],
            open_questions=["Will it reconnect before max-store-down-time?"],
        )

    if signals == {"region_unhealthy"}:
        return DiagnosisOutput(
            summary="Some regions lack healthy peers while every store is reachable.",
            root_cause="PD's region checks report down or pending peers without a store failure; replication "
            "is lagging.",
            root_cause_category=RootCauseCategory.REGION_REPLICATION,
            severity=Severity.MEDIUM,
            confidence=Confidence.MEDIUM,
            evidence=ticket_cite + stores_cite,
            recommended_actions=[
                "Inspect pd-ctl region check down-peer / pending-peer",
                "Check store I/O latency",
            ],
            open_questions=["Is one store slow to apply Raft logs?"],
        )

    if unreachable and len(t.observations) >= 2 and len(sources) >= 2:
        return DiagnosisOutput(
            summary=f"TiKV pod {who} (store {t.store_id}) is not answering on its status port.",
            root_cause=f"Store {t.store_id} stopped answering scrapes and probes; it has not (yet) restarted.",
            root_cause_category=RootCauseCategory.TIKV_POD_FAILURE,
            severity=Severity.HIGH,
            confidence=Confidence.MEDIUM,
            evidence=ticket_cite + stores_cite + metrics_cite,
            recommended_actions=[
                f"kubectl describe pod {who}",
                "Check whether the StatefulSet recreated the pod",
            ],
            open_questions=["Is the process hung or gone?"],
        )

    return DiagnosisOutput(
        summary=f"Too little evidence to name a cause for the {t.invariant} ticket on {t.subject}.",
        root_cause="The evidence shows a single, uncorroborated signal; no rule matches it with confidence.",
        root_cause_category=RootCauseCategory.UNKNOWN,
        severity=Severity.LOW,
        confidence=Confidence.LOW,
        evidence=ticket_cite,
        recommended_actions=[
            "Look at the store's own logs and metrics",
            "Wait for more signals before acting",
        ],
        open_questions=["Was this a blip in the monitoring path itself?"],
    )
