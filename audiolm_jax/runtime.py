"""Process set-up that keeps XLA on the CPU from page-faulting its memory in on every call.

XLA's CPU runtime allocates each call's buffers afresh and frees them when the call ends.
glibc serves blocks over its mmap threshold (at most 32 MB), and any block too large for a
worker thread's arena (64 MB heaps), by mmap, and hands them back to the kernel on free:
the next call then touches fresh pages and takes one minor page fault per 4 KiB page. On
this project's 2-core machine the demo-size train step took 76,000 faults a step (0.20 s →
0.13-0.17 s without them) and a 16-clip log-mel 27,600 (48 → 21 ms).

`keep_freed_memory` makes glibc serve every thread from the main heap (one arena), never
by mmap, and never trim the heap, so freed blocks are reused by the next call, the way
PyTorch's and XLA:GPU's caching allocators reuse theirs. The process's resident memory
then stays at its peak, and threads that allocate at once contend for the one arena: XLA's
multi-threaded compilation and the threaded dataset reader slow down (a compile-bound test
file 98 → 113 s; the reader 86 → 65 batches/s). So it runs where steady-state work
dominates — when an experiment or a command starts (`cli.main`, `cli.split_overrides`) and
in the benchmarks — not at import: the test suite, compile-bound, keeps glibc's defaults.
It must run before JAX starts its thread pool (its threads' arenas are fixed then). Set
`AUDIOLM_JAX_SYSTEM_MALLOC=1` to leave glibc's defaults alone. Other C libraries: no-op.

`release_compiled_when_crowded` keeps a process that compiles a program per input length
(evaluation and sampling loops) under the kernel's limit on memory mappings.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt(3) parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
OPT_OUT = "AUDIOLM_JAX_SYSTEM_MALLOC"


def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (it has `gnu_get_libc_version`), else None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def keep_freed_memory() -> bool:
    """One malloc arena, no mmap'd blocks, no heap trimming (see the module docstring);
    whether it was applied (False under `AUDIOLM_JAX_SYSTEM_MALLOC=1` or without glibc)."""
    if os.environ.get(OPT_OUT, "0") not in ("", "0"):
        return False
    libc = _glibc()
    if libc is None:
        return False
    settings = ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, 1 << 30), (M_TRIM_THRESHOLD, (1 << 31) - 1))
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in settings)


def memory_maps() -> tuple[int, int] | None:
    """This process's memory mappings and the kernel's per-process limit on them
    (`vm.max_map_count`), or None where /proc does not tell (not Linux)."""
    try:
        with open("/proc/self/maps", "rb") as maps, open("/proc/sys/vm/max_map_count") as limit:
            return sum(1 for _ in maps), int(limit.read())
    except (OSError, ValueError):
        return None


def release_compiled_when_crowded(share: float = 0.5) -> bool:
    """Drops JAX's compiled programs (`jax.clear_caches`) once this process holds more than
    `share` of its memory-map limit; whether it did. Each XLA:CPU program keeps about ten
    mappings, and work that compiles one per input length (synthesis, alignment and
    Griffin-Lim of sentences of every length) runs out: an evaluation of 96 sentences held
    33,600 after synthesising them and died in LLVM ("Cannot allocate memory", then a
    segfault) past the common default of 65,530. Programs for lengths seen once are rarely
    reused, so dropping them costs little."""
    counts = memory_maps()
    if counts is None or counts[0] <= share * counts[1]:
        return False
    import jax

    jax.clear_caches()
    return True
