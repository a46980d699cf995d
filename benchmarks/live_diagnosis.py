"""Opt-in: the scenario suite through the real Claude API, next to the offline rules on the same
cases. Needs ANTHROPIC_API_KEY (and the internet); reports the pass rate per category for both,
Claude's tokens and latency, and the prompt version. Not part of the test run or run_all.

    ANTHROPIC_API_KEY=... python -m benchmarks.live_diagnosis [--model claude-...]

Writes benchmarks/results/live_diagnosis.json (with --write) and prints a table."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import summary, write
from controller.diagnosis.claude import ClaudeDiagnoser, api_key_configured, configured_model
from controller.diagnosis.evidence import PROMPT_VERSION
from controller.diagnosis.scenarios import Scenario, load_suite, score
from controller.diagnosis.service import diagnose

SUITE = Path(__file__).resolve().parents[1] / "tests" / "scenarios"


@dataclass
class CaseResult:
    name: str
    category: str  # the expected one
    offline_passed: bool
    claude_passed: bool
    claude_failures: list[str]
    diagnoser: str  # "claude", or offline-rules after a fallback
    fallback_reason: str | None
    input_tokens: int
    output_tokens: int
    latency_ms: float


@dataclass
class Tally:
    cases: int = 0
    offline: int = 0
    claude: int = 0
    names: list[str] = field(default_factory=list)


def per_category(results: list[CaseResult]) -> dict[str, Tally]:
    out: dict[str, Tally] = {}
    for r in results:
        t = out.setdefault(r.category, Tally())
        t.cases += 1
        t.offline += r.offline_passed
        t.claude += r.claude_passed
        t.names.append(r.name)
    return dict(sorted(out.items()))


async def run_case(scenario: Scenario, model: str) -> CaseResult:
    offline = await diagnose(scenario.data, provider="offline", blind=scenario.blind)
    live = await diagnose(
        scenario.data,
        provider="claude",
        model=model,
        blind=scenario.blind,
        claude=ClaudeDiagnoser(model=model),
    )
    claude_score = score(scenario, live)
    return CaseResult(
        name=scenario.name,
        category=scenario.expect["category"],
        offline_passed=score(scenario, offline).passed,
        # A fallback answered with the offline rules: not a pass for Claude.
        claude_passed=claude_score.passed and live.diagnoser == "claude",
        claude_failures=claude_score.failures,
        diagnoser=live.diagnoser,
        fallback_reason=live.fallback_reason,
        input_tokens=live.input_tokens,
        output_tokens=live.output_tokens,
        latency_ms=live.latency_ms,
    )


def report(results: list[CaseResult], model: str) -> dict[str, Any]:
    claude_answers = [r for r in results if r.diagnoser == "claude"]
    return {
        "model": model,
        "prompt_version": PROMPT_VERSION,
        "cases": len(results),
        "pass_rate": {
            "offline": sum(r.offline_passed for r in results) / len(results),
            "claude": sum(r.claude_passed for r in results) / len(results),
        },
        "by_category": {
            c: {"cases": t.cases, "offline_passed": t.offline, "claude_passed": t.claude}
            for c, t in per_category(results).items()
        },
        "fallbacks": {r.name: r.fallback_reason for r in results if r.diagnoser != "claude"},
        "input_tokens": summary([float(r.input_tokens) for r in claude_answers]),
        "output_tokens": summary([float(r.output_tokens) for r in claude_answers]),
        "latency_ms": summary([r.latency_ms for r in claude_answers]),
        "failures": {r.name: r.claude_failures for r in results if not r.claude_passed},
    }


def print_table(data: dict[str, Any]) -> None:
    print(f"model {data['model']}, prompt {data['prompt_version']}, {data['cases']} cases")
    print(f"{'category':22} {'cases':>5} {'offline':>8} {'claude':>7}")
    for category, row in data["by_category"].items():
        print(f"{category:22} {row['cases']:5} {row['offline_passed']:8} {row['claude_passed']:7}")
    rate = data["pass_rate"]
    print(f"{'all':22} {data['cases']:5} {rate['offline']:8.0%} {rate['claude']:7.0%}")
    lat, tin = data["latency_ms"], data["input_tokens"]
    if lat.get("n"):
        print(
            f"latency median {lat['median']:.0f} ms, p95 {lat['p95']:.0f} ms; input tokens median {tin['median']:.0f}"
        )
    for name, failures in data["failures"].items():
        print(f"  FAIL {name}: {failures}")


async def main(model: str, write_results: bool) -> int:
    if not api_key_configured():
        print("live_diagnosis: set ANTHROPIC_API_KEY to run the suite through Claude", file=sys.stderr)
        return 2
    model = configured_model(model)
    results = [await run_case(s, model) for s in load_suite(SUITE)]
    data = report(results, model)
    print_table(data)
    if write_results:
        write("live_diagnosis", data)
    return 0 if data["pass_rate"]["claude"] == 1.0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="")
    parser.add_argument("--write", action="store_true", help="record the results under benchmarks/results")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.model, args.write)))
