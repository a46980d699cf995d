"""What the demo shows of a drill, as text: the drill's body from the example manifest, the
victim, what clients felt, the detection sources, and the server-side client figures."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from controller.prom import PrometheusClient, PrometheusError

# What clients feel, live, from TiKV's own gRPC metrics (the figures a drill's status.impact keeps).
CLIENT_QUERIES = {
    "rate": 'sum(irate(tikv_grpc_msg_duration_seconds_count{job="tikv"}[5s]))',
    "failed": 'sum(irate(tikv_grpc_msg_fail_total{job="tikv"}[5s])) or vector(0)',
    "p99": 'histogram_quantile(0.99, sum by (le) (irate(tikv_grpc_msg_duration_seconds_bucket{job="tikv"}[5s])))',
}


async def client_figures(prom: PrometheusClient) -> Text:
    """One line: requests per second, the share that fails, p99 latency; red while requests fail."""
    try:
        values = {}
        for name, query in CLIENT_QUERIES.items():
            samples = await prom.query(query)
            values[name] = samples[0].value if samples else 0.0
    except PrometheusError as exc:
        return Text.from_markup(f"[red]clients: Prometheus unavailable ({exc})[/]")
    rate, failed, p99 = values["rate"], values["failed"], values["p99"]
    ratio = failed / rate if rate > 0 else 0.0
    style = "bold red" if failed > 0 else "green"
    p99_text = "-" if p99 != p99 else f"{p99 * 1000:,.0f} ms"  # NaN without traffic
    return Text.from_markup(
        f"clients: [bold]{rate:,.0f}[/] requests/s · [{style}]errors {ratio:.1%}[/] · p99 {p99_text}"
    )


STATE_STYLE = {"Detected": "green", "Watching": "yellow", "Missed": "red", "Error": "magenta"}


def sources_table(status: dict[str, Any]) -> Table:
    """Each detection source live: who has noticed the fault, how fast, and why not."""
    table = Table(title="detection sources", expand=False)
    for column in ("source", "state", "alert", "TTD", "why"):
        table.add_column(column, overflow="fold")
    for s in (status.get("detection") or {}).get("sources") or []:
        ttd = s.get("ttdSeconds")
        required = "" if s.get("required") else " (optional)"
        table.add_row(
            f"{s['name']}{required}",
            f"[{STATE_STYLE.get(s['state'], 'white')}]{s['state']}[/]",
            s.get("alert") or "-",
            "-" if ttd is None else f"{ttd:.1f}s",
            (s.get("why") or "")[:120],
        )
    return table


def drill_body(manifest: dict[str, Any], fault: str, duration: int) -> dict[str, Any]:
    """The example drill with the fault the user asked for (none: the manifest's own)."""
    body = dict(manifest)
    spec = dict(body.get("spec") or {})
    if fault:
        spec["fault"] = {
            "store-outage": {"action": "store-outage", "durationSeconds": duration},
            "network-partition": {"action": "network-partition", "durationSeconds": duration},
            "pd-leader-kill": {"action": "pd-leader-kill"},
        }.get(fault, {"action": "pod-kill", "gracePeriodSeconds": 0})
        if fault == "pd-leader-kill":
            # PD's leader is named by PD, never by the TiKV selector or a pod name.
            spec["target"] = {k: v for k, v in (spec.get("target") or {}).items() if k not in ("pod",)}
        if fault in ("store-outage", "network-partition"):
            # The store stays away by design: recovery is judged from the fault's undoing.
            spec["recovery"] = {**(spec.get("recovery") or {}), "waitForLeadersSeconds": 0}
    spec.setdefault("fault", {"action": "pod-kill"})
    body["spec"] = spec
    return body


def felt_text(impact: dict[str, Any]) -> str:
    """What clients felt, for the result panel: the client's own view when a prober ran."""
    client = impact.get("client") or {}
    during = client.get("during") or {}
    if during.get("requests"):
        return (
            f"TiKV's client: {during['failed'] + during['stalled']} of {during['requests']} reads failed or "
            f"stalled; some region answered nothing for {client.get('unavailableSeconds') or 0:.1f}s "
            f"({client.get('regionsUnavailable', 0)} region(s))"
        )
    if impact.get("note"):
        return str(impact["note"])
    worst = impact.get("worst") or {}
    if worst.get("errorRatio") is None:
        return ""
    felt = f"worst error ratio {worst['errorRatio']:.1%}, requests failing for {impact.get('unavailableSeconds', 0):.0f}s"
    if impact.get("regionsWithoutLeader") is not None:
        felt += f", {impact['regionsWithoutLeader']} region(s) without a leader for {impact.get('leaderlessSeconds', '?')}s"
    return felt


def victim_text(status: dict[str, Any], duration: int) -> str:
    """What the fault did, for the victim panel."""
    victims = status.get("victims") or [status["victim"]]
    v = victims[0]
    where = f"[bold red]{v['namespace']}/{v['pod']}[/]"
    if v.get("originalImage"):
        return (
            f"stopped the store of {where} (store {v['storeId']}): {v['originalImage']} swapped for "
            f"{v['pauseImage']} for {duration}s"
        )
    if v.get("partitionPolicy"):
        pods = ", ".join(f"[bold red]{x['namespace']}/{x['pod']}[/] (store {x['storeId']})" for x in victims)
        return f"cut off {pods} by NetworkPolicy {v['partitionPolicy']} for {duration}s; its process runs on"
    if v.get("pdMember"):
        return f"killed PD's leader {where} (member {v['pdMember']}, node {v['node']}) with grace period 0"
    pods = ", ".join(
        f"[bold red]{x['namespace']}/{x['pod']}[/] (store {x['storeId']}, node {x['node']})" for x in victims
    )
    return f"killed {pods} with grace period 0"
