"""Benchmarks: each module runs alone (`python -m benchmarks.<name>`) and prints one JSON line
per comparison; `python -m benchmarks` runs them all and prints a table."""

import sys as _sys

from audiolm_jax import runtime as _runtime


def is_the_program(orig_argv: list[str]) -> bool:
    """Whether the interpreter's command line (`sys.orig_argv`) runs a benchmark
    (`python -m benchmarks[.<name>]`). While `-m` imports this package, `__main__` is not
    the benchmark yet (its `__spec__` is None), so the command line is what tells."""
    args = orig_argv[1:]
    module = args[args.index("-m") + 1] if "-m" in args[:-1] else ""
    return module.split(".")[0] == "benchmarks"


# When a benchmark is the program, set up the process as every experiment and command does
# when it starts (runtime.py), so the benchmarks measure what a run gets. Importing a
# benchmark module elsewhere (the tests) changes nothing.
if is_the_program(list(getattr(_sys, "orig_argv", []))):
    _runtime.keep_freed_memory()
