"""Rebuild benchmarks/RESULTS.md from benchmarks/results/*.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR

OUT = Path(__file__).resolve().parent / "RESULTS.md"
NOTES = Path(__file__).resolve().parent / "NOTES.md"


def fmt(value: Any, unit: str = "") -> str:
    if isinstance(value, float):
        return f"{value:.3g}{unit}" if abs(value) < 100 else f"{value:.0f}{unit}"
    return f"{value}{unit}"


def dist(d: dict[str, Any], unit: str) -> str:
    if not d or not d.get("n"):
        return "none"
    return (
        f"median {fmt(d['median'], unit)}, p95 {fmt(d['p95'], unit)}, max {fmt(d['max'], unit)} (n={d['n']})"
    )


def machine_text(m: dict[str, Any]) -> str:
    return f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, commit {m['commit']}, {m['date']}"


def idle_section(data: dict[str, Any]) -> list[str]:
    lines = [
        "## idle",
        "",
        data["what"],
        "",
        f"- command: `{data['command']}`",
        f"- target: {data['target']}",
        "",
        "| run | CPU (% of one core) | RSS median | RSS peak | controller start-up | machine |",
        "|---|---|---|---|---|---|",
    ]
    for label, run in data["runs"].items():
        lines.append(
            f"| {label} | {run['cpu_percent_of_one_core']} % | {run['rss_mib_median']} MiB | "
            f"{run['rss_peak_mib']} MiB | {run.get('startup_seconds', '-')} s | {machine_text(run['machine'])} |"
        )
    return [*lines, ""]


def alert_ttd_section(data: dict[str, Any]) -> list[str]:
    lines = [
        f"## {data['benchmark']}",
        "",
        data["what"],
        "",
        f"- command: `{data['command']}`",
        f"- machine: {machine_text(data['machine'])}",
        f"- settings: {data['settings']}",
        f"- verdicts: {data['verdicts']}",
        *([f"- blind diagnosis: {data['diagnosed_as']}"] if "diagnosed_as" in data else []),
        "",
        "| source | detected | TTD | missed because |",
        "|---|---|---|---|",
    ]
    for name, row in data["sources"].items():
        why = "; ".join(f"{k} ({v}x)" for k, v in row["missed_because"].items()) or "-"
        lines.append(
            f"| {name} | {row['detected']}/{row['of']} | {dist(row['ttd'], ' s')} | {why.replace('|', '/')} |"
        )
    if (data.get("page_delay_after_startsAt") or {}).get("n"):
        lines += [
            "",
            f"- the page's arrival after the alert's startsAt: {dist(data['page_delay_after_startsAt'], ' s')}",
        ]
    for proposal in data.get("proposals", []):
        lines.append(
            f"- proposal for {proposal['fault']}: `{proposal['expr']}` for: {proposal['for_s']:g}s — {proposal['result']}"
        )
    return [*lines, ""]


def soak_section(data: dict[str, Any]) -> list[str]:
    return [
        "## soak",
        "",
        data["description"],
        "",
        f"- command: `{data['command']}`",
        f"- machine: {machine_text(data['machine'])}",
        f"- jitter: {data['jitter']}; monitor: {data['monitor']}",
        f"- target: {data['target']} — **{'met' if data.get('met') else 'MISSED'}**",
        "",
        f"- tickets during the soak: {data['false_tickets']} {data['false_ticket_list'] or ''}",
        f"- kills: {dist(data['ttd'], ' s')}, missed {data['ttd']['missed']}",
        "",
    ]


def coverage_page_section(data: dict[str, Any]) -> list[str]:
    lines = [
        "## coverage_page",
        "",
        data["what"],
        "",
        f"- command: `{data['command']}`",
        f"- machine: {machine_text(data['machine'])}",
        f"- overlapping text pairs on the rendered page: {data['overlapping_text_pairs']}",
    ]
    for fault in data["faults"]:
        lines += [
            "",
            f"**{fault['fault']}** ({fault['drills']} drills)",
            "",
            "| source | caught | median TTD | worst | commonest miss |",
            "|---|---|---|---|---|",
        ]
        for s in fault["sources"]:
            median = "-" if s["median_ttd_s"] is None else f"{s['median_ttd_s']:.1f} s"
            worst = "-" if s["worst_ttd_s"] is None else f"{s['worst_ttd_s']:.1f} s"
            why = (s["dominant_miss"] or "-").replace("|", "/")
            lines.append(f"| {s['source']} | {s['caught']} | {median} | {worst} | {why} |")
        lines += [f"- proposal: `{p}`" for p in fault["proposals"]]
    return [*lines, ""]


def section(data: dict[str, Any]) -> list[str]:
    name = data["benchmark"]
    if name == "coverage_page":
        return coverage_page_section(data)
    if name == "soak":
        return soak_section(data)
    if name == "idle":
        return idle_section(data)
    if name in ("alert_ttd", "alert_ttd_partition"):
        return alert_ttd_section(data)
    m = data["machine"]
    lines = [
        f"## {name}",
        "",
        data.get("description", ""),
        "",
        f"- command: `{data['command']}`",
        f"- machine: {machine_text(m)}",
        f"- target: {data.get('target') or data.get('targets')} — **{'met' if data.get('met') else 'MISSED'}**",
        "",
    ]
    if name == "ttd":
        lines += [
            f"- monitor: {dist(data['monitor'], ' s')}, missed {data['monitor']['missed']}/{data['kills']}",
            f"- baseline, PD state alone: {dist(data['baseline_pd_state_only'], ' s')}, missed "
            f"{data['baseline_pd_state_only']['missed']}/{data['kills']}",
            f"- baseline, Prometheus `up` at 15 s: {dist(data['baseline_prometheus_up_15s'], ' s')}, "
            f"missed {data['baseline_prometheus_up_15s']['missed']}/{data['kills']}",
        ]
    elif name == "reaction":
        lines.append(f"- reaction: {dist(data['reaction_ms'], ' ms')}")
    elif name == "scale":
        lines += [
            f"- all terminal: {data['all_terminal']} after {data['seconds_to_all_terminal']} s; "
            f"outcomes {data['outcomes']}",
            f"- overlapping drills on one target: {data['overlapping_drills_on_one_target']}",
            f"- controller peak RSS: {data['controller_peak_rss_mib']} MiB",
            f"- event-loop lag p99 (histogram bucket upper bound): "
            f"{data['event_loop_lag_p99_seconds_upper_bound']} s",
        ]
    elif name == "region_scale":
        lines += [
            f"- verdicts: {data['verdicts']}",
            f"- event-loop lag p99 (histogram bucket upper bound): "
            f"{data['event_loop_lag_p99_seconds_upper_bound']} s",
            f"- fetched from PD per step: {data['bytes_per_step']} bytes over {data['steps_looking_at_pd']:.0f} "
            f"steps; PD's whole `/regions` (what each step used to fetch): {data['whole_regions_list_bytes']} bytes",
            f"- requests by endpoint: {data['pd_requests_by_endpoint']}",
            f"- bytes by endpoint: {data['pd_bytes_by_endpoint']}",
        ]
    elif name == "client_probe":
        lines += [
            f"- error of the client's unavailable seconds against the emulator's election: at most "
            f"{data['max_error_in_probe_intervals']} probe intervals; unavailable regions exactly the "
            f"victim's: {data['regions_right']}",
            f"- controller CPU per drill: {data['controller_cpu_seconds_per_drill_probed']} s probed, "
            f"{data['controller_cpu_seconds_per_drill_plain']} s plain",
            f"- controller peak RSS: {data['controller_peak_rss_mib_with_probed']} MiB with probed drills, "
            f"{data['controller_peak_rss_mib_plain']} MiB after the plain ones",
        ]
    elif name == "monitor_cost":
        lines += ["| stores | CPU per cycle | wall per cycle | invariants alone |", "|---|---|---|---|"]
        for n, row in data["by_stores"].items():
            lines.append(
                f"| {n} | {dist(row['cpu_ms'], ' ms')} | {dist(row['wall_ms'], ' ms')} | "
                f"{row['evaluate_cpu_ms']} ms |"
            )
    elif name == "tickets_store":
        lines += [
            f"- {data['tickets']} tickets; two writer processes: {data['inserts_per_second_two_writers']} "
            f"tickets/s (open + resolve each), {data['insert_wall_seconds']} s",
            f"- open-ticket lookup: {dist(data['open_ticket_lookup_ms'], ' ms')}; plan: {data['query_plan']}",
            f"- tickets of one store since a time: {dist(data['store_lookup_ms'], ' ms')}",
        ]
    elif name == "context_size":
        lines += [
            "| stores | prompt tokens (chars/4) | evidence items | dropped | offline diagnoser |",
            "|---|---|---|---|---|",
        ]
        for n, row in data["by_stores"].items():
            lines.append(
                f"| {n} | {row['prompt_tokens_estimate']} | {row['evidence_items']} | "
                f"{'; '.join(row['dropped']) or '-'} | {dist(row['offline_diagnoser_ms'], ' ms')} |"
            )
    return [*lines, ""]


def main() -> None:
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m benchmarks.run_all` (or `python -m benchmarks.report` after single runs)",
        "from `benchmarks/results/*.json`; each section names the command, machine and date.",
        "",
    ]
    if NOTES.exists():
        lines += [NOTES.read_text(), ""]
    order = [
        "ttd",
        "alert_ttd",
        "alert_ttd_partition",
        "coverage_page",
        "soak",
        "reaction",
        "scale",
        "region_scale",
        "client_probe",
        "idle",
        "monitor_cost",
        "tickets_store",
        "context_size",
    ]
    for name in order:
        path = RESULTS_DIR / f"{name}.json"
        if path.exists():
            lines += section(json.loads(path.read_text()))
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
