"""Minor page faults per call of a jitted XLA:CPU function over two ~48 MB temporaries, with
glibc's defaults against `runtime.keep_freed_memory` (one arena, no mmap'd blocks, no
trimming), each in a process of its own, run in turn for 5 rounds.

Target: the kept heap faults in at most 5% of the pages the defaults fault in on every call
(ratio ≥ 20), at the worst end of the spread. How many calls the heap takes to settle varies
from run to run (see `median_faults_per_call`), so it is a benchmark, not a test; the allocator settings themselves are tested in
tests/test_runtime.py. One call's pages: 12,000 × 1024 float32 = 47 MB = 12,000 pages of 4 KiB.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from benchmarks.common import emit

PROBE = """
import resource, statistics
from audiolm_jax import runtime
runtime.keep_freed_memory()  # what every experiment and command does first (a no-op when opted out)
import jax, jax.numpy as jnp
f = jax.jit(lambda x: jnp.fft.rfft(x * 1.5, axis=-1).real.sum())  # two ~48 MB temporaries
x = jnp.ones((12_000, 1024), jnp.float32)
faults = []
for _ in range(40):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(statistics.median(faults[20:]))  # once the heap has settled
"""
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_faults_per_call(system_malloc: bool) -> float:
    """Median minor faults of calls 21-40 in a fresh process. The kept heap takes a few
    calls to settle: while small allocations land in the freed blocks, the next call's
    two buffers no longer fit and the heap grows (brk) by both, faulting them in; runs of
    up to 6 such calls were seen before it holds room enough and stops growing."""
    env = dict(os.environ, AUDIOLM_JAX_SYSTEM_MALLOC="1" if system_malloc else "0")
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT, check=True)
    return float(proc.stdout.split()[-1])


def main(rounds: int = 5) -> None:
    kept, system = [], []
    for _ in range(rounds):
        system.append(median_faults_per_call(True))
        kept.append(median_faults_per_call(False))
    # One fault at least, so that the ratio is defined when the kept heap faults none.
    emit("page_faults", "minor faults per XLA:CPU call over 47 MB buffers, kept heap vs glibc defaults",
         max(statistics.median(kept), 1.0), statistics.median(system), "faults", target=20.0, higher_is_better=False,
         ours_spread=[min(kept), max(kept)], reference_spread=[min(system), max(system)],
         ratio_low=min(system) / max(max(kept), 1.0), repeats=rounds)


if __name__ == "__main__":
    main()
