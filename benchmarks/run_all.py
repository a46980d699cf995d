"""Run every benchmark (in separate processes, one after another) and rebuild RESULTS.md.

python -m benchmarks.run_all            # all
python -m benchmarks.run_all ttd scale  # some
"""

from __future__ import annotations

import subprocess
import sys

ALL = [
    "tickets_store",
    "monitor_cost",
    "context_size",
    "reaction",
    "ttd",
    "scale",
    "region_scale",
    "client_probe",
    "coverage_page",
]


def main(names: list[str]) -> int:
    failed = []
    for name in names or ALL:
        print(f"== benchmarks.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"benchmarks.{name}"]).returncode != 0:
            failed.append(name)
    subprocess.run([sys.executable, "-m", "benchmarks.report"], check=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
