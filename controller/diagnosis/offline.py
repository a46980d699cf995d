"""The offline rule diagnoser: deterministic, no network, the same output schema as Claude.

It reasons from the cluster's evidence (``facts.derive``), never from the drill record, so what
it concludes is what a responder reading the same evidence would. Rules go from the most
specific to the least; the first that matches wins; the last says "unknown" with low confidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controller.diagnosis.evidence import EvidenceBundle
from controller.diagnosis.facts import ClusterFacts, StoreFact, derive
from controller.diagnosis.inputs import DiagnosisInput
from controller.diagnosis.liveness import HEARTBEAT_STALE_AFTER
from controller.diagnosis.schema import (
    Confidence,
    DiagnosisOutput,
    EvidenceCitation,
    RootCauseCategory,
    Severity,
)

NAME = "offline-rules"
STOPPED_STATES = ("Disconnected", "Down")


@dataclass
class Case:
    """One ticket with its evidence and the facts derived from it; what every rule reads."""

    data: DiagnosisInput
    bundle: EvidenceBundle
    facts: ClusterFacts

    @property
    def signals(self) -> set[str]:
        return set(self.data.ticket.signals)

    @property
    def sources(self) -> set[str]:
        return {o.source for o in self.data.ticket.observations}

    @property
    def who(self) -> str:
        t = self.data.ticket
        return t.pod or t.subject

    @property
    def store(self) -> StoreFact | None:
        return self.facts.ticket_store

    def cite(self, key: str, why: str) -> list[EvidenceCitation]:
        eid = self.bundle.id_for(key)
        return [EvidenceCitation(id=eid, why=why)] if eid else []

    def fact_cite(self, why: str, *keys: str) -> list[EvidenceCitation]:
        """The derived facts ([F..]) a conclusion rests on, by their keys ("store:3:alive")."""
        ids = dict.fromkeys(fid for k in keys if (fid := self.bundle.id_for(k)) and fid.startswith("F"))
        return [EvidenceCitation(id=fid, why=why) for fid in ids]

    def store_fact_cite(self, why: str, *questions: str) -> list[EvidenceCitation]:
        s = self.store
        return self.fact_cite(why, *(f"store:{s.store_id}:{q}" for q in questions)) if s else []

    def ticket_cite(self) -> list[EvidenceCitation]:
        t = self.data.ticket
        return self.cite("ticket", f"the monitor saw {', '.join(sorted(self.signals))} on {t.subject}")

    def stores_cite(self) -> list[EvidenceCitation]:
        s = self.store
        if s is None or self.data.stores is None:
            return []
        return self.cite("stores", f"PD reports store {s.store_id} as {s.state}")

    def cluster_cite(self, why: str) -> list[EvidenceCitation]:
        return self.cite("cluster", why)

    def metrics_cite(self) -> list[EvidenceCitation]:
        return self.cite("metrics", "scrapes, process start times and peers' reports around the incident")

    def majority_words(self) -> str:
        f = self.facts
        if f.regions_known is None:
            if f.majority_estimate is not None:
                return f"PD's regions were not available; from its stores: {f.majority_estimate}"
            return "whether regions kept their Raft majority is unknown (PD's regions were not available)"
        if f.majority_lost:
            return f"{len(f.regions_without_majority)} of {f.regions_known} regions lost their Raft majority"
        return "every region kept its Raft majority"


Rule = Callable[[Case], DiagnosisOutput | None]


def _names(stores: list[StoreFact]) -> str:
    named = [f"{s.pod} (store {s.store_id})" if s.store_id is not None else s.pod for s in stores]
    return ", ".join(named[:-1]) + f" and {named[-1]}" if len(named) > 1 else named[0]


# -- PD ---------------------------------------------------------------------------------------
def pd_rule(c: Case) -> DiagnosisOutput | None:
    if not c.signals & {"pd_unhealthy", "pd_leader_changed"}:
        return None
    f = c.facts
    details = " ".join(o.detail for o in c.data.ticket.observations).lower()
    unhealthy = f.pd_members_unhealthy
    quorum_lost = f.pd_members > 0 and len(unhealthy) * 2 >= f.pd_members
    if not f.pd_answered or quorum_lost or (f.pd_members and f.pd_leader is None):
        return DiagnosisOutput(
            summary="PD, the placement driver, is down: "
            + (
                "it does not answer."
                if not f.pd_answered
                else f"members {', '.join(unhealthy) or '?'} are unhealthy and it has no working quorum."
            ),
            root_cause="PD cannot be reached or has lost its quorum; TiKV cannot get timestamps or routing while "
            "PD has no leader, so every transaction stalls.",
            root_cause_category=RootCauseCategory.PD_UNAVAILABLE,
            severity=Severity.CRITICAL,
            confidence=Confidence.HIGH if "unreachable" in details or quorum_lost else Confidence.MEDIUM,
            evidence=c.ticket_cite()
            + c.cluster_cite("PD's members and leader, or that PD did not answer")
            + c.fact_cite("PD's members' health", *(f"pd:member:{m}" for m in unhealthy), "pd:leader"),
            recommended_actions=[
                "Check the PD pods and their logs (kubectl get pods -l app.kubernetes.io/component=pd)",
                "Check PD's /pd/api/v1/health and /pd/api/v1/members",
                "Check the PD Service and network policy",
            ],
            open_questions=["Is PD down, or only unreachable from the monitor?"],
        )
    if "pd_leader_changed" in c.signals or "leader" in details:
        gone = f" ({', '.join(unhealthy)} unhealthy)" if unhealthy else ""
        # The monitor saw the hand-over: the old leader is named even once it is healthy again.
        change = next((o.data for o in c.data.ticket.observations if o.signal == "pd_leader_changed"), {})
        old = f" {change['previous']}" if change.get("previous") else ""
        elected = f.pd_leader or "a new leader"
        return DiagnosisOutput(
            summary=f"PD lost its leader{old}{gone}; the remaining members elected {elected}.",
            root_cause=f"The PD leader{old} stopped; after the election timeout the other PD members elected "
            f"{elected}. Scheduling and TSO paused during the election, then resumed.",
            root_cause_category=RootCauseCategory.PD_LEADER_LOSS,
            severity=Severity.HIGH,
            confidence=Confidence.HIGH
            if unhealthy or "pd_leader_changed" in c.signals
            else Confidence.MEDIUM,
            evidence=c.ticket_cite()
            + c.cluster_cite(f"PD answers with leader {f.pd_leader}")
            + c.fact_cite(
                "the old and the new leader",
                *(f"pd:member:{m.name}" for m in f.pd_member_liveness if m.leader or m.lost_leadership),
            ),
            recommended_actions=[
                "Check why the old leader stopped (kubectl describe pod; its logs)",
                "Confirm the old leader's member rejoins and is healthy",
                "Check TSO wait latency in TiKV/TiDB during the election",
            ],
            open_questions=["Was the leader killed, evicted or partitioned?"],
        )
    members = ", ".join(unhealthy) or "(not named by any source)"
    leader = f"with leader {f.pd_leader}" if f.pd_leader else "(its leader not named by any source)"
    return DiagnosisOutput(
        summary=f"PD member {members} is unhealthy; PD keeps its quorum {leader}.",
        root_cause=f"A minority of PD members ({members}) failed; the cluster still has a PD leader.",
        root_cause_category=RootCauseCategory.PD_UNAVAILABLE,
        severity=Severity.MEDIUM,
        confidence=Confidence.MEDIUM,
        evidence=c.ticket_cite()
        + c.cluster_cite("PD's member health")
        + c.fact_cite("the unhealthy members", *(f"pd:member:{m}" for m in unhealthy)),
        recommended_actions=["Check the unhealthy PD member's pod and logs"],
        open_questions=["Will the member rejoin, or must it be replaced?"],
    )


# -- contradictions -----------------------------------------------------------------------------
def conflict_rule(c: Case) -> DiagnosisOutput | None:
    """The monitor says the store is unreachable, yet PD hears it, Prometheus scraped it the whole
    time and nothing restarted: a problem of the monitoring path, or a blip. Say so."""
    s = c.store
    if s is None or "store_unreachable" not in c.signals or s.restarted or len(c.facts.affected) > 1:
        return None
    pd_fine = s.state == "Up" and s.heartbeat_age is not None and s.heartbeat_age < HEARTBEAT_STALE_AFTER
    if not (pd_fine and s.scrape_failed is False):
        return None
    return DiagnosisOutput(
        summary=f"The evidence about {c.who} conflicts: the monitor saw it unreachable, but PD and Prometheus "
        "saw it healthy and it did not restart.",
        root_cause="No cause can be named: the sources disagree. PD has fresh heartbeats, every scrape "
        "succeeded and the process start time never changed.",
        root_cause_category=RootCauseCategory.UNKNOWN,
        severity=Severity.LOW,
        confidence=Confidence.LOW,
        evidence=c.ticket_cite()
        + c.stores_cite()
        + c.metrics_cite()
        + c.store_fact_cite(
            "PD hears it, Prometheus scraped it", "reachable_from_pd", "reachable_from_monitor"
        ),
        recommended_actions=[
            "Check the monitor's own network path to the store",
            "Watch for a repeat before acting",
        ],
        open_questions=["Was the monitor's probe, rather than the store, the problem?"],
    )


# -- several stores -------------------------------------------------------------------------------
def several_stores_rule(c: Case) -> DiagnosisOutput | None:
    hit = [s for s in c.facts.affected if s.gone or s.restarted or s.scrape_failed]
    if len(hit) < 2:
        return None
    f = c.facts
    names = _names(hit)
    if f.node_failures:
        category, how = RootCauseCategory.NODE_FAILURE, f"their node failed ({f.node_failures[0]})"
    elif all(s.restarted for s in hit):
        category, how = RootCauseCategory.TIKV_POD_FAILURE, "their TiKV processes died and restarted"
    elif all(s.running and not s.restarted and s.state in STOPPED_STATES for s in hit):
        category, how = (
            RootCauseCategory.NETWORK_PARTITION,
            "they run but PD and their peers cannot reach them",
        )
    elif any(s.state == "Down" for s in hit):
        category, how = RootCauseCategory.TIKV_STORE_DOWN, "they stayed away until PD marked them Down"
    else:
        category, how = (
            RootCauseCategory.TIKV_POD_FAILURE,
            "their TiKV processes stopped and are not all back",
        )
    majority = c.majority_words()
    return DiagnosisOutput(
        summary=f"{len(hit)} TiKV stores failed at once: {names}; {majority}.",
        root_cause=f"Several stores failed together: {how}. {majority[0].upper()}{majority[1:]}.",
        root_cause_category=category,
        severity=Severity.CRITICAL if f.majority_lost else Severity.HIGH,
        confidence=Confidence.HIGH if f.majority_known else Confidence.MEDIUM,
        evidence=c.ticket_cite()
        + c.cluster_cite(f"{len(hit)} affected stores; {majority}")
        + c.fact_cite(majority, "regions:majority", *(f"store:{s.store_id}:alive" for s in hit))
        + (c.cite("events", "the node failure") if category is RootCauseCategory.NODE_FAILURE else [])
        + c.stores_cite()
        + c.metrics_cite(),
        recommended_actions=[
            f"Check each affected pod: {', '.join(s.pod for s in hit)}",
            "Look for what they share (node, zone, rollout, network policy)",
            "If regions lost their majority, expect unavailable reads and writes until the stores return",
        ],
        open_questions=["What do the affected stores have in common?"],
    )


# -- one store -------------------------------------------------------------------------------------
def node_rule(c: Case) -> DiagnosisOutput | None:
    if not (c.facts.node_failures and c.signals & {"store_unreachable", "store_disconnected", "store_down"}):
        return None
    return DiagnosisOutput(
        summary=f"The node under {c.who} failed, taking its TiKV store with it.",
        root_cause=f"Kubernetes reports the node hosting {c.who} as failed ({c.facts.node_failures[0]}); the "
        "store stopped with it.",
        root_cause_category=RootCauseCategory.NODE_FAILURE,
        severity=Severity.CRITICAL if "store_down" in c.signals or c.facts.majority_lost else Severity.HIGH,
        confidence=Confidence.MEDIUM,
        evidence=c.ticket_cite() + c.cite("events", "node failure events") + c.stores_cite(),
        recommended_actions=[
            "Check the node's status and kubelet",
            "Make sure the pod can be rescheduled (PVC topology, taints)",
        ],
        open_questions=["Will the node come back, or must its stores be replaced?"],
    )


def configuration_rule(c: Case) -> DiagnosisOutput | None:
    f = c.facts
    if not f.config_errors:
        return None
    return DiagnosisOutput(
        summary=f"{c.who} cannot start: its pod spec is wrong ({f.config_errors[0]}).",
        root_cause=f"Kubernetes cannot start the TiKV container of {c.who}: {f.config_errors[0]}. A configuration "
        "or image change, not a crash, keeps the store away.",
        root_cause_category=RootCauseCategory.CONFIGURATION,
        severity=Severity.CRITICAL if f.majority_lost else Severity.HIGH,
        confidence=Confidence.HIGH,
        evidence=c.ticket_cite()
        + c.cite("pods", "the container's waiting reason")
        + c.cite("events", "the failure"),
        recommended_actions=[
            f"kubectl describe pod {c.who}: which ConfigMap, Secret or image is wrong?",
            "Roll back the last change to the TiKV StatefulSet or its configuration",
        ],
        open_questions=["Which change introduced the bad configuration?"],
    )


def resource_rule(c: Case) -> DiagnosisOutput | None:
    f = c.facts
    if f.resource_pressure:
        s = f.ticket_store
        # "Stopped" only when the process is seen gone or restarted; pressure alone is not that.
        still_running = s is not None and s.running is True and not s.restarted
        what = (
            "is under resource pressure; its process still runs"
            if still_running
            else "was stopped by resource pressure"
        )
        return DiagnosisOutput(
            summary=f"{c.who} {what}.",
            root_cause=f"Kubernetes shows resource pressure on {c.who}: {f.resource_pressure[0]}",
            root_cause_category=RootCauseCategory.RESOURCE_EXHAUSTION,
            severity=Severity.HIGH,
            confidence=Confidence.MEDIUM,
            evidence=c.ticket_cite()
            + c.cite("events", "eviction or OOM events")
            + c.cite("pods", "the last termination")
            + c.store_fact_cite(
                "its pressure and whether its process runs", "pressure", "alive", "restarted"
            ),
            recommended_actions=[
                "Check the pod's memory and disk limits",
                "Check the node's allocatable resources",
            ],
            open_questions=["Which resource ran out first?"],
        )
    if f.crash_loops:
        return DiagnosisOutput(
            summary=f"{c.who} is crash-looping: TiKV keeps failing at start.",
            root_cause=f"The TiKV container in {c.who} restarts repeatedly and Kubernetes backs off: "
            f"{f.crash_loops[0]}",
            root_cause_category=RootCauseCategory.CRASH_LOOP,
            severity=Severity.HIGH,
            confidence=Confidence.MEDIUM,
            evidence=c.ticket_cite()
            + c.cite("pods", "restart count and back-off")
            + c.cite("events", "back-off events"),
            recommended_actions=[
                f"kubectl logs {c.who} --previous: why does TiKV exit?",
                "Check recent configuration changes and the data directory",
            ],
            open_questions=["Is the data or the configuration at fault?"],
        )
    return None


def partition_rule(c: Case) -> DiagnosisOutput | None:
    s = c.store
    if s is None or s.state not in STOPPED_STATES or s.restarted:
        return None
    if not (s.running or (s.running is None and s.reported_unreachable)):
        return None
    seen = (s.running_seen or "its process answers") if s.running else "no source saw its process stop"
    return DiagnosisOutput(
        summary=f"TiKV store {s.store_id} ({s.pod}) is cut off: PD lost its heartbeats while its process "
        "keeps running.",
        root_cause=f"PD marks store {s.store_id} {s.state} and its peers report it unreachable"
        f" ({s.reported_unreachable:.0f} reports), yet {seen} and its process never restarted: a network "
        "partition between the store and PD and its peers.",
        root_cause_category=RootCauseCategory.NETWORK_PARTITION,
        severity=Severity.CRITICAL if c.facts.majority_lost else Severity.HIGH,
        confidence=Confidence.MEDIUM,
        evidence=c.ticket_cite()
        + c.stores_cite()
        + c.cluster_cite("running, not restarted, reported unreachable")
        + c.store_fact_cite(
            "running, not restarted, unreachable from PD and its peers",
            "alive",
            "restarted",
            "reachable_from_pd",
            "reachable_from_peers",
        ),
        recommended_actions=[
            f"Check network policies and the node network of {s.pod}",
            "Check PD-to-store connectivity",
        ],
        open_questions=["Will it reconnect before max-store-down-time?"],
    )


def store_down_rule(c: Case) -> DiagnosisOutput | None:
    """A long outage: the store's process is gone and PD has marked it Down, or it stays away while
    its pod is still there (the process, not the pod, is what is missing)."""
    s = c.store
    if s is None or s.restarted:
        return None
    pod = s.pod_state
    since = c.data.ticket.opened_at
    pod_stayed = pod is not None and pod.phase == "Running" and (pod.created_at or since) < since
    # Away: PD lost its heartbeats, or its status port stopped answering, while the pod that
    # should run it is the same one as before the ticket (neither replaced nor restarted).
    away_in_place = pod_stayed and (s.state == "Disconnected" or s.running is False)
    if not (s.state == "Down" or "store_down" in c.signals or away_in_place):
        return None
    away = f"{s.heartbeat_age:.0f} s" if s.heartbeat_age is not None else "a long time"
    return DiagnosisOutput(
        summary=f"TiKV store {s.store_id} ({s.pod}) has been down for {away}: PD marks it {s.state}"
        + ("; its pod stays, but the store process is gone." if pod_stayed else "."),
        root_cause=f"Store {s.store_id} stopped heartbeating to PD and has not come back"
        + (
            " although its pod was never replaced: the TiKV process itself is not running."
            if pod_stayed
            else "; PD will rebuild its replicas on other stores after max-store-down-time."
        ),
        root_cause_category=RootCauseCategory.TIKV_STORE_DOWN,
        severity=Severity.CRITICAL if s.state == "Down" or c.facts.majority_lost else Severity.HIGH,
        confidence=Confidence.HIGH if s.state == "Down" or pod_stayed else Confidence.MEDIUM,
        evidence=c.ticket_cite()
        + c.stores_cite()
        + c.cite("pods", f"pod {s.pod} stayed Running")
        + c.metrics_cite()
        + c.store_fact_cite("away from PD, not restarted", "alive", "restarted", "reachable_from_pd"),
        recommended_actions=[
            f"Find out why {s.pod} does not serve (kubectl describe pod {s.pod}; its container image and logs)",
            "Watch PD's replica repair (regions/check/miss-peer)",
        ],
        open_questions=["Is the store's data (PVC) intact?"],
    )


def restart_rule(c: Case) -> DiagnosisOutput | None:
    s = c.store
    if s is None or not s.restarted or not (c.signals & {"store_unreachable", "store_restarted"}):
        return None
    back = s.state == "Up" and s.running is not False
    corroborated = len(c.sources) >= 2 or (c.data.stores is not None and s.state != "unknown")
    return DiagnosisOutput(
        summary=f"TiKV pod {s.pod} (store {s.store_id}) died and was restarted"
        f"{'; the store is Up again' if back else ''}.",
        root_cause=f"The TiKV process of store {s.store_id} in pod {s.pod} stopped abruptly (its status port "
        "went unreachable) and came back with a new start time: a pod kill or crash followed by the "
        "StatefulSet's restart.",
        root_cause_category=RootCauseCategory.TIKV_POD_FAILURE,
        severity=Severity.MEDIUM if back else Severity.HIGH,
        confidence=Confidence.HIGH if corroborated else Confidence.MEDIUM,
        evidence=c.ticket_cite()
        + c.stores_cite()
        + c.metrics_cite()
        + c.store_fact_cite("a new process", "restarted", "alive"),
        recommended_actions=[
            f"Check why {s.pod} stopped: kubectl describe pod {s.pod}; its previous logs",
            "Confirm leaders rebalanced back after the restart",
            "If this was not a drill, look for OOM kills or node problems",
        ],
        open_questions=["Was the stop deliberate (a drill, an eviction) or a crash?"],
    )


def not_back_rule(c: Case) -> DiagnosisOutput | None:
    """Gone and not back yet, with its pod being replaced: a kill or crash whose replacement is
    slow."""
    s = c.store
    if s is None or s.restarted or s.running is not False:
        return None
    if not (
        "store_unreachable" in c.signals and ("store_disconnected" in c.signals or s.state in STOPPED_STATES)
    ):
        return None
    return DiagnosisOutput(
        summary=f"TiKV pod {s.pod} (store {s.store_id}) died and has not come back yet; PD lost its heartbeats.",
        root_cause=f"The TiKV process of store {s.store_id} in pod {s.pod} stopped (its status port is "
        "unreachable) and stayed away past PD's 20 s heartbeat threshold: a pod kill or crash whose "
        "replacement is slow to start.",
        root_cause_category=RootCauseCategory.TIKV_POD_FAILURE,
        severity=Severity.CRITICAL if c.facts.majority_lost else Severity.HIGH,
        confidence=Confidence.HIGH if len(c.sources) >= 2 else Confidence.MEDIUM,
        evidence=c.ticket_cite()
        + c.stores_cite()
        + c.metrics_cite()
        + c.store_fact_cite("gone, not back", "alive", "restarted"),
        recommended_actions=[
            f"kubectl describe pod {s.pod}: is the replacement Pending or crash-looping?",
            "Watch PD: the store turns Down after max-store-down-time and replicas move",
        ],
        open_questions=["Why is the replacement pod slow to become Ready?"],
    )


def reconnected_rule(c: Case) -> DiagnosisOutput | None:
    """PD lost the store's heartbeats and has them again from the same process: it never
    restarted and was not replaced, so it did not die. It was cut off (a partition healed since)."""
    s = c.store
    if "store_disconnected" not in c.signals or s is None or s.state != "Up":
        return None
    if s.liveness.restarted.verdict is not False or "store_restarted" in c.signals:
        return None  # a restart seen, or no source able to rule one out
    return DiagnosisOutput(
        summary=f"TiKV store {s.store_id} ({s.pod}) was cut off from PD for a while and is back without "
        "restarting.",
        root_cause=f"The monitor saw PD mark store {s.store_id} Disconnected; PD now has it Up again with the "
        "same process (no restart, the pod not replaced): its heartbeats stopped reaching PD while it ran, "
        "a network partition that has healed.",
        root_cause_category=RootCauseCategory.NETWORK_PARTITION,
        severity=Severity.MEDIUM,
        confidence=Confidence.MEDIUM,
        evidence=c.ticket_cite()
        + c.stores_cite()
        + c.store_fact_cite("not restarted, Up again", "restarted", "reachable_from_pd"),
        recommended_actions=[
            f"Check network policies and the node network of {s.pod} for the window of the ticket",
            "Check PD-to-store connectivity",
        ],
        open_questions=["What cut it off, and can it happen again?"],
    )


def disconnected_only_rule(c: Case) -> DiagnosisOutput | None:
    if "store_disconnected" not in c.signals:
        return None
    t = c.data.ticket
    return DiagnosisOutput(
        summary=f"TiKV store {t.store_id} ({c.who}) stopped heartbeating to PD.",
        root_cause=f"PD has not heard from store {t.store_id} for over 20 s (Disconnected); no other source "
        "confirms whether its process runs.",
        root_cause_category=RootCauseCategory.TIKV_STORE_DOWN,
        severity=Severity.HIGH,
        confidence=Confidence.MEDIUM,
        evidence=c.ticket_cite() + c.stores_cite(),
        recommended_actions=[f"kubectl describe pod {c.who}", "Check network policies between TiKV and PD"],
        open_questions=["Will it reconnect before max-store-down-time?"],
    )


def regions_rule(c: Case) -> DiagnosisOutput | None:
    if c.signals != {"region_unhealthy"}:
        return None
    return DiagnosisOutput(
        summary="Some regions lack healthy peers while every store is reachable.",
        root_cause="PD's region checks report down or pending peers without a store failure; replication "
        "is lagging.",
        root_cause_category=RootCauseCategory.REGION_REPLICATION,
        severity=Severity.HIGH if c.facts.majority_lost else Severity.MEDIUM,
        confidence=Confidence.MEDIUM,
        evidence=c.ticket_cite() + c.stores_cite(),
        recommended_actions=[
            "Inspect pd-ctl region check down-peer / pending-peer",
            "Check store I/O latency",
        ],
        open_questions=["Is one store slow to apply Raft logs?"],
    )


def unanswering_rule(c: Case) -> DiagnosisOutput | None:
    t = c.data.ticket
    if not ("store_unreachable" in c.signals and len(t.observations) >= 2 and len(c.sources) >= 2):
        return None
    return DiagnosisOutput(
        summary=f"TiKV pod {c.who} (store {t.store_id}) is not answering on its status port.",
        root_cause=f"Store {t.store_id} stopped answering scrapes and probes; it has not (yet) restarted.",
        root_cause_category=RootCauseCategory.TIKV_POD_FAILURE,
        severity=Severity.HIGH,
        confidence=Confidence.MEDIUM,
        evidence=c.ticket_cite()
        + c.stores_cite()
        + c.metrics_cite()
        + c.store_fact_cite("not answering", "alive"),
        recommended_actions=[
            f"kubectl describe pod {c.who}",
            "Check whether the StatefulSet recreated the pod",
        ],
        open_questions=["Is the process hung or gone?"],
    )


def unknown(c: Case) -> DiagnosisOutput:
    t = c.data.ticket
    missing = f" Missing: {', '.join(c.facts.missing)}." if c.facts.missing else ""
    return DiagnosisOutput(
        summary=f"Too little evidence to name a cause for the {t.invariant} ticket on {t.subject}.",
        root_cause="The evidence shows a single, uncorroborated signal; no rule matches it with confidence."
        + missing,
        root_cause_category=RootCauseCategory.UNKNOWN,
        severity=Severity.LOW,
        confidence=Confidence.LOW,
        evidence=c.ticket_cite(),
        recommended_actions=[
            "Look at the store's own logs and metrics",
            "Wait for more signals before acting",
        ],
        open_questions=["Was this a blip in the monitoring path itself?"],
    )


RULES: tuple[Rule, ...] = (
    pd_rule,
    conflict_rule,
    several_stores_rule,
    node_rule,
    configuration_rule,
    resource_rule,
    partition_rule,
    store_down_rule,
    restart_rule,
    not_back_rule,
    reconnected_rule,
    disconnected_only_rule,
    regions_rule,
    unanswering_rule,
)


def diagnose_offline(
    data: DiagnosisInput, bundle: EvidenceBundle, facts: ClusterFacts | None = None
) -> DiagnosisOutput:
    case = Case(data, bundle, facts or derive(data))
    for rule in RULES:
        out = rule(case)
        if out is not None:
            return out
    return unknown(case)
