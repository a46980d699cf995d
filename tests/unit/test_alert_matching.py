"""Which alerts count for a drill, their times from ALERTS samples, the headline detection, the
verdict with several sources, and why a rule missed."""

from __future__ import annotations

from controller.alerting.matching import (
    DrillFacts,
    RuleInfo,
    VictimIdentity,
    counts,
    first_firing,
    parse_go_duration,
    timings_from_alerts_series,
    why_missed,
)
from controller.operator import decisions
from controller.operator.model import DrillSpec, Verdict
from controller.operator.state import DrillMetrics, SourceStatus
from controller.prom.client import Series

VICTIM = VictimIdentity(
    pod="tikv-1",
    namespace="tikv",
    store_id=2,
    store_address="tikv-1.tikv-peer.tikv.svc:20160",
    status_address="127.0.11.2:20180",
)
KILL = 1_000.0


def test_store_alerts_count_only_for_the_victim() -> None:
    restart = {"alertname": "TiKV_node_restart", "job": "tikv", "instance": "127.0.11.2:20180"}
    assert counts(restart, VICTIM)
    assert not counts({**restart, "instance": "127.0.11.3:20180"}, VICTIM), "another store's restart"
    assert counts({"alertname": "X", "job": "tikv", "instance": "tikv-1.tikv-peer.tikv.svc:20180"}, VICTIM)
    assert not counts(
        {"alertname": "X", "job": "tikv", "instance": "tikv-10.tikv-peer.tikv.svc:20180"}, VICTIM
    )
    assert counts({"alertname": "TiKV_server_report_failure_msg_total", "store_id": "2"}, VICTIM)
    assert not counts({"alertname": "TiKV_server_report_failure_msg_total", "store_id": "3"}, VICTIM)
    assert counts({"alertname": "Y", "pod": "tikv-1", "namespace": "tikv"}, VICTIM)
    assert not counts({"alertname": "Y", "pod": "tikv-1", "namespace": "other"}, VICTIM)


def test_cluster_alerts_count_by_name_and_filters_apply() -> None:
    pd = {"alertname": "PD_cluster_lost_connect_store_nums", "instance": "127.0.0.1:2379"}
    assert counts(pd, VICTIM)
    assert counts(pd, VICTIM, alertnames=["PD_cluster_lost_connect_store_nums"])
    assert not counts(pd, VICTIM, alertnames=["TiKV_node_restart"])
    assert not counts(pd, VICTIM, matchers={"cluster": "prod"})
    assert counts({**pd, "cluster": "prod"}, VICTIM, matchers={"cluster": "prod"})


def _alerts(state: str, times: list[float], **labels: str) -> Series:
    return Series({"__name__": "ALERTS", "alertstate": state, **labels}, [(t, 1.0) for t in times])


def test_timings_from_alerts_samples_and_pre_existing_alerts() -> None:
    fresh = {"alertname": "TiKV_node_restart", "instance": "127.0.11.2:20180", "job": "tikv"}
    old = {"alertname": "Old", "instance": "127.0.11.2:20180", "job": "tikv"}
    series = [
        _alerts("pending", [1002.0, 1003.0, 1062.0], **fresh),
        _alerts("firing", [1063.0, 1064.0], **fresh),
        _alerts("pending", [990.0, 995.0], **old),  # active before the kill
        _alerts("firing", [1001.0, 1002.0], **old),
    ]
    timings = timings_from_alerts_series(series, KILL)
    assert [t.name for t in timings] == ["TiKV_node_restart"]
    t = timings[0]
    assert (t.pending_at, t.firing_at) == (1002.0, 1063.0)
    assert first_firing(timings) == t
    assert first_firing([]) is None


def _src(
    name: str, state: str, ttd: float | None, required: bool = True, type_: str = "prometheus"
) -> SourceStatus:
    return SourceStatus(
        name=name, type=type_, required=required, state=state, ttdSeconds=ttd, why=f"{name} why"
    )


def test_headline_detection_is_the_last_required_source() -> None:
    sources = [_src("tickets", "Detected", 1.2, type_="tickets"), _src("am", "Detected", 75.0)]
    assert decisions.headline_detection(sources) == (75.0, "am")
    sources = [_src("tickets", "Detected", 1.2, type_="tickets"), _src("am", "Missed", None, required=False)]
    assert decisions.headline_detection(sources) == (1.2, "tickets")
    assert decisions.headline_detection([_src("am", "Detected", 5.0, required=False)]) == (5.0, "am")
    assert decisions.headline_detection([_src("a", "Detected", 5.0), _src("b", "Missed", None)]) == (None, "")


def test_verdict_with_sources() -> None:
    spec = DrillSpec.model_validate({"detection": {"timeoutSeconds": 120, "expectWithinSeconds": 30}})
    m = DrillMetrics(timeToRecoverSeconds=3.0)
    ok = [_src("tickets", "Detected", 1.0, type_="tickets"), _src("am", "Missed", None, required=False)]
    assert decisions.verdict(spec, m, recovered=True, sources=ok).verdict is Verdict.PASS
    late = [_src("tickets", "Detected", 1.0, type_="tickets"), _src("rules", "Detected", 75.0)]
    v = decisions.verdict(spec, m, recovered=True, sources=late)
    assert (v.verdict, v.reason) == (Verdict.FAIL, "DetectionSLOMissed") and "by rules in 75.0s" in v.message
    missed = [_src("tickets", "Detected", 1.0, type_="tickets"), _src("rules", "Missed", None)]
    v = decisions.verdict(spec, m, recovered=True, sources=missed)
    assert v.verdict is Verdict.UNDETECTED and "rules: rules why" in v.message
    broken = [_src("tickets", "Detected", 1.0, type_="tickets"), _src("am", "Error", None)]
    v = decisions.verdict(spec, m, recovered=True, sources=broken)
    assert (v.verdict, v.reason) == (Verdict.ERROR, "DetectionSourceError")
    only_ticket_missed = [_src("tickets", "Missed", None, type_="tickets")]
    v = decisions.verdict(spec, m, recovered=True, sources=only_ticket_missed)
    assert v.verdict is Verdict.UNDETECTED and "monitor never ticketed" in v.message


RULES = {
    "TiKV_node_restart": RuleInfo(
        "TiKV_node_restart", 'changes(process_start_time_seconds{job="tikv"}[5m]) > 0', 60
    ),
    "PD_cluster_lost_connect_store_nums": RuleInfo(
        "PD_cluster_lost_connect_store_nums",
        '(sum(pd_cluster_status{type="store_disconnected_count"}) by (instance) > 0)',
        60,
    ),
    "PD_cluster_down_store_nums": RuleInfo(
        "PD_cluster_down_store_nums",
        '(sum(pd_cluster_status{type="store_down_count"}) by (instance) > 0)',
        60,
    ),
}


def test_why_missed_reads_the_rule_and_the_drill() -> None:
    quick = DrillFacts(detection_window=120, outage_seconds=3.2)
    why = why_missed(["PD_cluster_lost_connect_store_nums"], RULES, quick)
    assert (
        "Disconnected in PD (20 s without a heartbeat)" in why
        and "for: 60s" in why
        and "back after 3.2s" in why
    )
    why = why_missed(["PD_cluster_down_store_nums"], RULES, quick)
    assert "max-store-down-time" in why
    short = DrillFacts(detection_window=30, outage_seconds=3.0, pending={"TiKV_node_restart": 2.0})
    why = why_missed(["TiKV_node_restart"], RULES, short)
    assert "pending 2s after the kill" in why and "for: 60s outlasted the 30s detection window" in why
    assert "no alerting rule of that name" in why_missed(["Nope"], RULES, quick)
    assert "loaded rules" in why_missed([], RULES, quick)


def test_parse_go_duration() -> None:
    assert parse_go_duration(60) == 60.0
    assert parse_go_duration("1m30s") == 90.0
    assert parse_go_duration("") == 0.0
