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
    parameter count. The first call compiles."""
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

    n_params = sum(x.size for x in jax.tree.leaves(holder["state"].params))
    return one, n_params


def repeated(fn: Callable[[], Any], times: int) -> Callable[[], Any]:
    """`fn` called `times` times in a row (one timed sample of several short steps)."""
    def run() -> Any:
        out = None
        for _ in range(times):
            out = fn()
        return out
    return run
