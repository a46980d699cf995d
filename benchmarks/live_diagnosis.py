"""Opt-in: the scenario suite through the real Claude API. Needs ANTHROPIC_API_KEY (and the
internet); prints the pass rate, tokens and latency. Not part of the test run or run_all.

    ANTHROPIC_API_KEY=... python -m benchmarks.live_diagnosis [--model claude-...]"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from controller.diagnosis.claude import ClaudeDiagnoser, api_key_configured
from controller.diagnosis.scenarios import load_suite, score
from controller.diagnosis.service import diagnose

SUITE = Path(__file__).resolve().parents[1] / "tests" / "scenarios"


async def main(model: str) -> int:
    if not api_key_configured():
        print("live_diagnosis: set ANTHROPIC_API_KEY to run the suite through Claude", file=sys.stderr)
        return 2
    scenarios = load_suite(SUITE)
    passed, tokens_in, tokens_out, latencies = 0, 0, 0, []
    for scenario in scenarios:
        result = await diagnose(
            scenario.data,
            provider="claude",
            model=model,
            blind=scenario.blind,
            claude=ClaudeDiagnoser(model=model),
        )
        s = score(scenario, result)
        passed += s.passed
        tokens_in += result.input_tokens
        tokens_out += result.output_tokens
        latencies.append(result.latency_ms)
        status = "pass" if s.passed else f"FAIL {s.failures}"
        print(f"{scenario.name:32} {result.diagnoser:14} {result.fallback_reason or '':18} {status}")
    print(
        f"\npass rate {passed}/{len(scenarios)}; tokens in {tokens_in}, out {tokens_out}; "
        f"latency median {sorted(latencies)[len(latencies) // 2]:.0f} ms"
    )
    return 0 if passed == len(scenarios) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="")
    sys.exit(asyncio.run(main(parser.parse_args().model)))
