"""Benchmarks (not part of the test run). `python -m benchmarks.run_all` runs them all and writes
benchmarks/results/*.json and benchmarks/RESULTS.md."""
