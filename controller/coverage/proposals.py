"""What would have caught a missed fault: candidate rules, each proven by evaluating its
expression over every recorded drill window of that fault with Prometheus' ``query_range``
(the same replay that explains a miss), judged against each drill's own victims. Suggestions
for the report, never applied."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.alerting.matching import ClusterIdentity, RuleInfo, VictimIdentity
from controller.alerting.replay import replay_rule
from controller.alerting.watch import Scope
from controller.coverage.records import DrillRecord
from controller.coverage.summary import Coverage, Proposal
from controller.prom.client import PrometheusClient


@dataclass(frozen=True)
class ReplaySettings:
    """How candidates are replayed: the evaluation step, the jobs naming TiKV and PD, and the
    scale of their `for:` (1 on a real cluster; the sandbox's scale in tests)."""

    step: float = 15.0
    tikv_job: str = "tikv"
    pd_job: str = "pd"
    time_scale: float = 1.0


@dataclass(frozen=True)
class Candidate:
    name: str
    expr: str  # {tikv_job} and {pd_job} are filled in from configuration
    for_seconds: float
    faults: tuple[str, ...]
    meaning: str


CANDIDATES = (
    Candidate(
        "TiKVRestartedRecently",
        'changes(process_start_time_seconds{{job="{tikv_job}"}}[1m]) > 0',
        0,
        ("pod-kill",),
        "a TiKV process that started again, paged at once instead of after `for: 1m`",
    ),
    Candidate(
        "TiKVStatusPortDown",
        'up{{job="{tikv_job}"}} == 0',
        15,
        ("pod-kill", "store-outage"),
        "a store Prometheus cannot scrape for 15 s",
    ),
    Candidate(
        "PDStoreDisconnectedNow",
        '(sum(pd_cluster_status{{type="store_disconnected_count"}}) by (instance) > 0)'
        " and (sum(etcd_server_is_leader) by (instance) > 0)",
        0,
        ("store-outage", "pod-kill", "network-partition"),
        "PD counting a store Disconnected (20 s without a heartbeat), without a further `for:`",
    ),
    Candidate(
        "PDRestartedRecently",
        'changes(process_start_time_seconds{{job="{pd_job}"}}[1m]) > 0',
        0,
        ("pd-leader-kill",),
        "a PD member that started again",
    ),
)


def _scope(record: DrillRecord, settings: ReplaySettings) -> Scope:
    victims = [
        VictimIdentity(v.pod, v.namespace, v.store_id, v.store_address, v.status_address)
        for v in record.victims
    ]
    cluster = ClusterIdentity.around(
        record.target_namespace,
        record.pd_address,
        victims,
        tikv_job=settings.tikv_job,
        pd_job=settings.pd_job,
    )
    return Scope(victims=victims, cluster=cluster)


async def prove(
    prom: PrometheusClient, candidate: Candidate, drills: Sequence[DrillRecord], settings: ReplaySettings
) -> Proposal:
    """Replay the candidate over each drill window: did it fire, and how long after the kill?"""
    rule = RuleInfo(
        name=candidate.name,
        query=candidate.expr.format(tikv_job=settings.tikv_job, pd_job=settings.pd_job),
        for_seconds=candidate.for_seconds * settings.time_scale,
        interval_seconds=settings.step,
    )
    proposal = Proposal(
        name=rule.name, expr=rule.query, for_seconds=rule.for_seconds, meaning=candidate.meaning
    )
    for record in drills:
        replay = await replay_rule(
            prom, rule, _scope(record, settings).judge, record.injected_at, record.window_end
        )
        proposal.drills += 1
        if replay.error:
            proposal.unavailable += 1
            continue
        fires = replay.fires_at()
        if fires is not None:
            proposal.fired += 1
            proposal.delays.append(fires - record.injected_at)
    return proposal


async def propose(
    prom: PrometheusClient, coverage: Coverage, records: Sequence[DrillRecord], settings: ReplaySettings
) -> Coverage:
    """Coverage with proposals for every fault some source missed, best first."""
    faults = []
    for fault in coverage.faults:
        if not fault.missed_by_some:
            faults.append(fault)
            continue
        drills = [r for r in records if r.fault == fault.fault]
        proven = [await prove(prom, c, drills, settings) for c in CANDIDATES if fault.fault in c.faults]
        proven.sort(key=lambda p: (-p.fired, min(p.delays, default=float("inf"))))
        faults.append(fault.model_copy(update={"proposals": proven}))
    return coverage.model_copy(update={"faults": faults})
