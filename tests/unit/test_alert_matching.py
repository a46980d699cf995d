"""Which alerts count for a drill, their times from ALERTS samples, the headline detection, the
verdict with several sources, and why a rule missed."""

from __future__ import annotations

from dataclasses import replace

from controller.alerting.matching import (
    AlertTiming,
    ClusterIdentity,
    RuleInfo,
    VictimIdentity,
    active_at_kill,
    first_firing,
    ignored,
    judge,
    parse_go_duration,
    timings_from_alerts_series,
)
from controller.alerting.misses import DrillFacts, why_missed
from controller.alerting.replay import RuleReplay, TrueSpan, explain, spans_of
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
SECOND = VictimIdentity(
    pod="tikv-3",
    namespace="tikv",
    store_id=4,
    store_address="tikv-3.tikv-peer.tikv.svc:20160",
    status_address="127.0.11.4:20180",
)
CLUSTER = ClusterIdentity(namespace="tikv", addresses=frozenset({"127.0.0.1:2379"}))
KILL = 1_000.0


def counts(
    labels: dict[str, str],
    victims: list[VictimIdentity] | None = None,
    cluster: ClusterIdentity = CLUSTER,
    **filters: object,
) -> bool:
    return judge(labels, victims or [VICTIM], cluster, **filters).counts  # type: ignore[arg-type]


def test_store_alerts_count_only_for_the_victim() -> None:
    restart = {"alertname": "TiKV_node_restart", "job": "tikv", "instance": "127.0.11.2:20180"}
    assert counts(restart)
    assert not counts({**restart, "instance": "127.0.11.3:20180"}), "another store's restart"
    assert counts({"alertname": "X", "job": "tikv", "instance": "tikv-1.tikv-peer.tikv.svc:20180"})
    assert not counts({"alertname": "X", "job": "tikv", "instance": "tikv-10.tikv-peer.tikv.svc:20180"})
    # The same pod name in another namespace (another cluster) is not the victim.
    other_ns = judge(
        {"alertname": "X", "job": "tikv", "instance": "tikv-1.tikv-peer.staging.svc:20180"}, [VICTIM], CLUSTER
    )
    assert not other_ns.counts and "not a victim" in other_ns.reason
    assert counts({"alertname": "Y", "pod": "tikv-1", "namespace": "tikv"})
    assert not counts({"alertname": "Y", "pod": "tikv-1", "namespace": "other"})


def test_a_store_id_counts_only_with_the_clusters_identity() -> None:
    failure = {"alertname": "TiKV_server_report_failure_msg_total", "store_id": "2"}
    bare = judge(failure, [VICTIM], CLUSTER)
    assert not bare.counts and "nothing ties it to this cluster" in bare.reason
    assert counts({**failure, "namespace": "tikv"})
    assert not counts({**failure, "namespace": "staging"})
    assert counts({**failure, "cluster": "prod"}, cluster=replace(CLUSTER, declared={"cluster": "prod"}))
    assert not counts({**failure, "store_id": "3", "namespace": "tikv"}), "another store"


def test_every_victim_of_a_two_victim_drill_is_matched() -> None:
    both = [VICTIM, SECOND]
    second = judge(
        {"alertname": "TiKV_node_restart", "job": "tikv", "instance": "127.0.11.4:20180"}, both, CLUSTER
    )
    assert second.counts and second.victim == "tikv-3"
    first = judge({"alertname": "Y", "pod": "tikv-1", "namespace": "tikv"}, both, CLUSTER)
    assert first.counts and first.victim == "tikv-1"
    assert counts({"alertname": "Z", "store": "4", "job": "tikv"}, both)
    assert not counts({"alertname": "Z", "store": "5", "job": "tikv"}, both)


def test_unrelated_alerts_are_ignored_with_the_reason() -> None:
    disk = {"alertname": "NodeFilesystemAlmostFull", "job": "node-exporter", "instance": "10.0.0.7:9100"}
    verdict = judge(disk, [VICTIM], CLUSTER)
    assert not verdict.counts and "names neither a victim nor this cluster" in verdict.reason
    assert "job=node-exporter" in verdict.reason
    app = {"alertname": "HighErrorRate", "namespace": "shop", "service": "checkout"}
    assert not counts(app)
    timings = [
        (AlertTiming("NodeFilesystemAlmostFull", disk, firing_at=1005.0), judge(disk, [VICTIM], CLUSTER)),
        (AlertTiming("HighErrorRate", app, firing_at=1003.0), judge(app, [VICTIM], CLUSTER)),
        (AlertTiming("HighErrorRate", app, firing_at=1009.0), judge(app, [VICTIM], CLUSTER)),
    ]
    named = judge(disk, [VICTIM], CLUSTER, alertnames=["TiKV_node_restart"])
    timings.append((AlertTiming("NodeFilesystemAlmostFull", disk, firing_at=1001.0), named))
    listed = ignored(timings)
    # Left out by the source's own alertnames: not listed (the user narrowed it on purpose).
    assert [i.name for i in listed] == ["HighErrorRate", "NodeFilesystemAlmostFull"]
    assert listed[0].firing_at == 1003.0 and "namespace" not in listed[1].reason


def test_cluster_alerts_count_when_tied_to_the_cluster_and_filters_apply() -> None:
    pd = {"alertname": "PD_cluster_lost_connect_store_nums", "instance": "127.0.0.1:2379"}
    assert counts(pd)
    assert counts(pd, alertnames=["PD_cluster_lost_connect_store_nums"])
    assert not counts(pd, alertnames=["TiKV_node_restart"])
    assert not counts(pd, matchers={"cluster": "prod"})
    assert counts({**pd, "cluster": "prod"}, matchers={"cluster": "prod"})
    another_pd = {**pd, "instance": "10.9.9.9:2379"}
    assert not counts(another_pd), "another cluster's PD"
    assert counts({"alertname": "PD_x", "job": "pd"}), "the configured PD job"
    assert not counts({"alertname": "PD_x", "job": "pd"}, cluster=replace(CLUSTER, pd_job="pd-prod"))
    declared = replace(CLUSTER, declared={"cluster": "prod"})
    lacks = judge(pd, [VICTIM], declared)
    assert not lacks.counts and "lacks the declared cluster labels cluster=prod" in lacks.reason
    assert counts({**pd, "cluster": "prod"}, cluster=declared)
    # The TiKV job comes from configuration: with another name, "job=tikv" is no store of ours.
    renamed = replace(CLUSTER, tikv_job="tikv-prod")
    assert counts({"alertname": "X", "job": "tikv-prod", "instance": "127.0.11.2:20180"}, cluster=renamed)
    assert not counts({"alertname": "X", "job": "tikv-prod", "instance": "127.0.11.9:20180"}, cluster=renamed)


def _alerts(state: str, times: list[float], **labels: str) -> Series:
    return Series({"__name__": "ALERTS", "alertstate": state, **labels}, [(t, 1.0) for t in times])


def test_timings_from_alerts_samples_and_pre_existing_alerts() -> None:
    fresh = {"alertname": "TiKV_node_restart", "instance": "127.0.11.2:20180", "job": "tikv"}
    old = {"alertname": "Old", "instance": "127.0.11.2:20180", "job": "tikv"}
    series = [
        _alerts("pending", [1002.0 + i for i in range(61)], **fresh),
        _alerts("firing", [1063.0, 1064.0], **fresh),
        _alerts("pending", [990.0 + i for i in range(11)], **old),  # active at the kill
        _alerts("firing", [1001.0, 1002.0], **old),
    ]
    timings = timings_from_alerts_series(series, KILL)
    assert [t.name for t in timings] == ["TiKV_node_restart"]
    assert [labels["alertname"] for labels in active_at_kill(series, KILL)] == ["Old"]
    t = timings[0]
    assert (t.pending_at, t.firing_at) == (1002.0, 1063.0)
    assert first_firing(timings) == t
    assert first_firing([]) is None


def test_an_alert_that_resolved_before_the_kill_counts_when_it_comes_back() -> None:
    pd = {"alertname": "PD_cluster_lost_connect_store_nums", "instance": "127.0.0.1:2379"}
    series = [
        _alerts("pending", [960.0 + i for i in range(10)], **pd),  # an earlier drill's, resolved at 969
        _alerts("pending", [1004.0 + i for i in range(12)], **pd),
        _alerts("firing", [1016.0, 1017.0], **pd),
    ]
    [timing] = timings_from_alerts_series(series, KILL)
    assert (timing.pending_at, timing.firing_at) == (1004.0, 1016.0)
    assert active_at_kill(series, KILL) == []


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


USER_RULE = RuleInfo("StoreGone", 'up{job="tikv"} == 0', for_seconds=81, interval_seconds=1)


def test_a_user_rule_miss_is_explained_from_its_own_expression() -> None:
    short = RuleReplay(USER_RULE, KILL, KILL + 120, 1.0, spans_of([1001.0, 1002.0, 1003.3], 1.0))
    assert short.spans == (TrueSpan(1001.0, 1003.3),) and short.fires_at() is None
    why = why_missed(["StoreGone"], {"StoreGone": USER_RULE}, DrillFacts(120, 2.3), {"StoreGone": short})
    assert why.startswith("StoreGone: its expression was true from +1.0s for 2.3s at most")
    assert "needs an outage of at least 82s; this one lasted 2.3s" in why
    never = RuleReplay(USER_RULE, KILL, KILL + 120, 1.0)
    assert "was never true for the victim or this cluster from the kill to +120s" in explain(never, KILL, 2.3)
    held = RuleReplay(USER_RULE, KILL, KILL + 120, 1.0, spans_of(range(1010, 1100), 1.0))
    assert held.fires_at() == 1091.0 and "met its for: 81s at +91.0s" in explain(held, KILL, None)
    # Gaps longer than an evaluation split the spans; the longest decides what "held" means.
    split = spans_of([1.0, 2.0, 3.0, 10.0, 11.0], 1.0)
    assert split == (TrueSpan(1.0, 3.0), TrueSpan(10.0, 11.0))


def test_a_standard_rule_never_true_adds_what_it_needs() -> None:
    rule = RULES["PD_cluster_lost_connect_store_nums"]
    never = RuleReplay(rule, KILL, KILL + 120, 15.0)
    why = why_missed([rule.name], RULES, DrillFacts(120, 2.3), {rule.name: never})
    assert "never true" in why and "an outage of at least 80s; the store was back after 2.3s" in why
    broken = RuleReplay(rule, KILL, KILL + 120, 15.0, error="bad_data")
    assert "never true" not in why_missed([rule.name], RULES, DrillFacts(120, 2.3), {rule.name: broken})


def test_parse_go_duration() -> None:
    assert parse_go_duration(60) == 60.0
    assert parse_go_duration("1m30s") == 90.0
    assert parse_go_duration("") == 0.0


def test_a_missed_page_says_whether_alertmanager_held_it() -> None:
    from controller.operator.sources import why_no_page

    rule = RULES["TiKV_node_restart"]
    fired = RuleReplay(rule, KILL, KILL + 150, 15.0, spans_of([KILL + 15.0 * i for i in range(1, 10)], 15.0))
    why = why_no_page({rule.name: fired}, KILL, 150)
    assert why.startswith("no notification about the drill reached the controller's receiver within 150s")
    assert "TiKV_node_restart fired in Prometheus at +75s, so Alertmanager held its notification" in why
    quiet = RuleReplay(rule, KILL, KILL + 150, 15.0, spans_of([KILL + 15.0], 15.0))
    assert "TiKV_node_restart never met its for: in Prometheus" in why_no_page({rule.name: quiet}, KILL, 150)


def test_a_url_only_on_a_server_source() -> None:
    import pytest
    from pydantic import ValidationError

    from controller.operator.model import DetectionSource

    with pytest.raises(ValidationError, match="url is for a prometheus or alertmanager source"):
        DetectionSource.model_validate({"type": "alertmanager-notification", "url": "http://am:9093"})
    page = DetectionSource.model_validate(
        {"type": "alertmanager-notification", "clusterLabels": {"cluster": "a"}}
    )
    assert page.cluster_labels == {"cluster": "a"}
    spec = DrillSpec.model_validate({})
    kinds = [
        s.type
        for s in spec.detection.resolved(prometheus_url="", alertmanager_url="http://am", receiver=True)
    ]
    assert kinds == ["tickets", "alertmanager", "alertmanager-notification"]
