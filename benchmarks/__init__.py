"""Benchmarks: each module runs alone (`python -m benchmarks.<name>`) and prints one JSON line
per comparison; `python -m benchmarks` runs them all and prints a table."""

import sys as _sys

from audiolm_jax import runtime as _runtime

# When a benchmark is the program (`python -m benchmarks[.<name>]`), set up the process as
# every experiment and command does when it starts (runtime.py), so the benchmarks measure
# what a run gets. Importing a benchmark module elsewhere (the tests) changes nothing.
_program = getattr(_sys.modules.get("__main__"), "__spec__", None)
if _program is not None and _program.name.split(".")[0] == "benchmarks":
    _runtime.keep_freed_memory()
