"""Benchmarks: each module runs alone (`python -m benchmarks.<name>`) and prints one JSON line
per comparison; `python -m benchmarks` runs them all and prints a table."""
