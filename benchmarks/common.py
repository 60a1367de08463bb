"""Timing and reporting shared by the benchmarks."""

from __future__ import annotations

import json
import time
from typing import Any, Callable


def best_seconds(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Best wall time of `repeats` calls of `fn` after `warmup` untimed calls (compilation)."""
    for _ in range(warmup):
        _block(fn())
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        _block(fn())
        best = min(best, time.perf_counter() - start)
    return best


def interleaved_seconds(fns: dict[str, Callable[[], Any]], repeats: int = 5, warmup: int = 1
                        ) -> dict[str, list[float]]:
    """Wall times of each function, called in turn (a, b, a, b, ...) `repeats` times after
    `warmup` untimed rounds, so drifts of the machine hit every side alike."""
    for _ in range(warmup):
        for fn in fns.values():
            _block(fn())
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            _block(fn())
            times[name].append(time.perf_counter() - start)
    return times


def emit_timed(benchmark: str, case: str, ours: list[float], reference: list[float], target: float,
               **extra: Any) -> dict:
    """One comparison of two lists of seconds (lower is better): medians, spreads, and the
    ratio at the worst end of the spread (our slowest over the reference's fastest), which
    must clear `target` for the row to count as met."""
    import numpy as np

    ours_med, ref_med = float(np.median(ours)), float(np.median(reference))
    return emit(benchmark, case, ours_med, ref_med, "s", target, higher_is_better=False,
                ours_spread=[min(ours), max(ours)], reference_spread=[min(reference), max(reference)],
                ratio_low=min(reference) / max(ours), repeats=len(ours), **extra)


def _block(result: Any) -> None:
    import jax

    jax.block_until_ready(result)


def emit(benchmark: str, case: str, ours: float, reference: float, unit: str, target: float,
         higher_is_better: bool, **extra: Any) -> dict:
    """Prints one comparison as a JSON line; `ratio` > 1 always means we are better."""
    ratio = ours / reference if higher_is_better else reference / ours
    record = {"benchmark": benchmark, "case": case, "ours": ours, "reference": reference,
              "unit": unit, "ratio": ratio, "target": target, **extra}
    print(json.dumps(record), flush=True)
    return record


def jax_train_step(cfg, batch: dict) -> tuple[Callable[[], Any], int]:
    """A function running one jit-compiled train step of `cfg` on one device over `batch`
    (`{"mel": [B, T, M], "mask": [B, T]}`, repeated), returning its metrics; also the
    parameter count. The first call compiles; `.compiled_text()` gives the optimised HLO."""
    import jax

    from audiolm_jax import train
    from audiolm_jax.model import MelTransformer

    mesh = train.make_mesh(jax.devices()[:1])
    tx = train.optimizer(cfg.train)
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    holder = {"state": jax.device_put(train.init_state(cfg, tx), replicated)}
    step = train.make_train_step(MelTransformer(cfg.model, cfg.audio.n_mels), tx, cfg, mesh)
    sharded = train.shard_batch(batch, mesh)

    def one() -> Any:
        holder["state"], metrics = step(holder["state"], sharded)
        return metrics

    one.compiled_text = lambda: step.lower(holder["state"], sharded).compile().as_text()  # optimised HLO
    n_params = sum(x.size for x in jax.tree.leaves(holder["state"].params))
    return one, n_params


def _side_worker(conn, make: Callable[[], tuple[Callable[[], Any], Any]]) -> None:
    from audiolm_jax import runtime

    runtime.keep_freed_memory()  # before `make` starts any thread pool
    fn, info = make()
    conn.send(info)
    while conn.recv() is not None:
        fn()
        conn.send(True)


class ProcessSide:
    """One side of a comparison run in a spawned process of its own, idle while the other
    side runs: `make()` (picklable: a module-level function or a partial of one) builds the
    side there and returns (the function to time, anything to report back, `info`). Calling
    the side runs the function once there (the pipe's round trip is ~0.1 ms).

    Why: in one process both sides share the C heap set up by `runtime.keep_freed_memory`
    (one malloc arena), and a reference's allocations, interleaved with XLA's, kept growing
    it into fresh pages (211,909 page faults in one small train step: 1.83 s, not 0.95 s).
    Each process gets the same allocator set-up."""

    def __init__(self, make: Callable[[], tuple[Callable[[], Any], Any]]):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_side_worker, args=(child, make), daemon=True)
        self._process.start()
        self.info = self._conn.recv()

    def __call__(self) -> None:
        self._conn.send(True)
        self._conn.recv()

    def close(self) -> None:
        self._conn.send(None)
        self._process.join(timeout=60)


def repeated(fn: Callable[[], Any], times: int) -> Callable[[], Any]:
    """`fn` called `times` times in a row (one timed sample of several short steps)."""
    def run() -> Any:
        out = None
        for _ in range(times):
            out = fn()
        return out
    return run
