"""Prefetching: computing the next batches in a background thread while the device trains."""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")


def prefetched(make_batch: Callable[[int], T], steps: Sequence[int], depth: int) -> Iterator[T]:
    """`make_batch(step)` for each of `steps` in order, computed up to `depth` steps ahead
    in a background thread (0: inline). Batches are pure functions of the step, so
    prefetching changes timing, never content; an error in `make_batch` is raised here."""
    if depth == 0:
        yield from (make_batch(step) for step in steps)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
    try:
        pending = collections.deque(pool.submit(make_batch, step) for step in steps[:depth])
        for i in range(len(steps)):
            batch = pending.popleft().result()
            if i + depth < len(steps):
                pending.append(pool.submit(make_batch, steps[i + depth]))
            yield batch
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
