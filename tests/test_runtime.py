"""runtime.keep_freed_memory sets glibc so that freed memory is kept and reused (runtime.py).

What it promises is glibc's state, which these tests read from glibc itself (mallinfo2) in
a fresh process, since the settings must come before any thread allocates: blocks of any
size come from the heap instead of mmap, a freed block stays in the heap to be reused (its
pages are not faulted in again), and every thread allocates from the one main arena. What
that saves XLA on the CPU (page faults per call of a jitted function over 47 MB buffers)
depends on the kernel's state too, so it is measured in `benchmarks/page_faults.py`, not here.
"""

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import ctypes, ctypes.util, json, resource, threading
from audiolm_jax import runtime
applied = runtime.keep_freed_memory()  # what every experiment and command does first


class MallInfo2(ctypes.Structure):  # glibc's struct mallinfo2: the main arena's figures
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                     "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
big = 48 << 20  # above glibc's largest mmap threshold (32 MB)


def allocate_touch_free():
    mmapped = libc.mallinfo2().hblkhd  # blocks mmap'd before (imports ran under glibc's defaults)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(big)
    ctypes.memset(block, 1, big)
    held = libc.mallinfo2()
    libc.free(block)
    kept = libc.mallinfo2()
    return {"faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
            "mmapped": held.hblkhd - mmapped, "heap_after_free": kept.arena, "free_in_heap": kept.fordblks}


calls = [allocate_touch_free() for _ in range(3)]
libc.sbrk.restype, libc.sbrk.argtypes = ctypes.c_void_p, [ctypes.c_ssize_t]
seen = {}
def allocate_in_a_thread():  # 1 MB in a new thread: which arena does it come from?
    block = libc.malloc(1 << 20)
    # The main arena is the brk heap, below the program break; other arenas are mmap'd heaps.
    seen["from_main_arena"] = block < libc.sbrk(0)
    libc.free(block)
worker = threading.Thread(target=allocate_in_a_thread)
worker.start(); worker.join()
print(json.dumps({"applied": applied, "calls": calls, **seen}))
"""


def allocator_state(system_malloc: bool) -> dict:
    env = dict(os.environ, AUDIOLM_JAX_SYSTEM_MALLOC="1" if system_malloc else "0")
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, env=env,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


BIG = 48 << 20
PAGES = BIG // 4096


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc settings")
def test_glibc_defaults_mmap_large_blocks_and_fault_them_in_on_every_call():
    state = allocator_state(system_malloc=True)
    assert state["applied"] is False
    for call in state["calls"]:
        assert call["mmapped"] >= BIG, call  # served by mmap ...
        assert call["free_in_heap"] < BIG, call  # ... and handed back to the kernel on free
        assert call["faults"] >= 0.9 * PAGES, call  # so every call touches fresh pages
    assert state["from_main_arena"] is False  # a new thread gets an arena of its own


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc settings")
def test_kept_memory_serves_large_blocks_from_the_heap_and_reuses_them():
    state = allocator_state(system_malloc=False)
    assert state["applied"] is True
    first, *again = state["calls"]
    for call in state["calls"]:
        assert call["mmapped"] == 0, call  # from the heap, never mmap
        assert call["heap_after_free"] >= BIG and call["free_in_heap"] >= BIG, call  # not trimmed
    assert first["faults"] >= 0.9 * PAGES  # the heap grows once ...
    for call in again:
        assert call["faults"] < 0.05 * PAGES, call  # ... and its pages are reused after that
    assert state["from_main_arena"] is True  # every thread allocates from the main arena


def test_compiled_programs_are_released_once_the_process_nears_its_memory_map_limit():
    """Programs compiled for many input lengths hold memory mappings (about ten each) until
    released; `release_compiled_when_crowded` drops them past its share of the kernel's
    limit (share 0: now) and leaves them below it (share 1)."""
    import jax
    import jax.numpy as jnp

    from audiolm_jax import runtime

    counts = runtime.memory_maps()
    if counts is None:
        pytest.skip("no /proc/self/maps here")
    program = jax.jit(lambda x: jnp.tanh(x @ x.T).sum())
    for length in range(40, 80):  # one program per length, as synthesis compiles per sentence
        program(jnp.ones((length, 16))).block_until_ready()
    crowded = runtime.memory_maps()[0]
    assert crowded > counts[0] + 100 and program._cache_size() == 40
    assert runtime.release_compiled_when_crowded(share=1.0) is False and program._cache_size() == 40
    assert runtime.release_compiled_when_crowded(share=0.0) is True
    assert program._cache_size() == 0 and runtime.memory_maps()[0] < crowded - 100
