"""XLA on the CPU reuses freed memory once a command has started (runtime.py): a call over
buffers larger than glibc's mmap threshold must not page-fault its working set in again."""

import os
import subprocess
import sys

import pytest

PROBE = """
import resource, statistics
from audiolm_jax import runtime
runtime.keep_freed_memory()  # what every experiment and command does first (cli.main, cli.split_overrides)
import jax, jax.numpy as jnp
f = jax.jit(lambda x: jnp.fft.rfft(x * 1.5, axis=-1).real.sum())  # two ~48 MB temporaries
x = jnp.ones((12_000, 1024), jnp.float32)
faults = []
for _ in range(15):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(statistics.median(faults[5:]))  # once the heap has settled
"""


def median_faults_per_call(system_malloc: bool) -> float:
    env = dict(os.environ, AUDIOLM_JAX_SYSTEM_MALLOC="1" if system_malloc else "0")
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, env=env,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return float(proc.stdout.split()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc settings")
def test_freed_memory_is_reused_instead_of_faulted_in_on_every_call():
    pages = 12_000 * 1024 * 4 / 4096  # one 47 MB buffer, in 4 KiB pages
    system, kept = median_faults_per_call(True), median_faults_per_call(False)
    assert system > pages, system  # glibc's defaults: every call faults its buffers in again
    assert kept < 0.05 * pages, kept
