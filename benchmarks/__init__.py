"""Benchmarks: each module runs alone (`python -m benchmarks.<name>`) and prints one JSON line
per comparison; `python -m benchmarks` runs them all and prints a table."""

from audiolm_jax import runtime as _runtime

# As every experiment and command does when it starts (runtime.py): the benchmarks measure
# what a run gets.
_runtime.keep_freed_memory()
