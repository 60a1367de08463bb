"""Sampling speed: frames/s and real-time factor for the demo and base sizes at batch 1 and
16, KV-cached `generate` vs full recompute per step, and the fraction of the memory-bandwidth
bound reached at batch 1 (bytes of params + KV cache read per step ÷ a bandwidth measured
here by a large array copy).

Targets: cached ≥ 20× the full-recompute reference for 10 s of audio, both decoding the same
chunks inside the trained context (`decode.trained_window`), timed interleaved, 5 repeats
after a warm-up, met only when the whole spread clears it; base size at batch 1 ≥ 1.5× real
time and ≥ 60% of the bandwidth bound (medians of 5 after a warm-up, with the slowest). The reference is measured for the demo size; for the base size (85 M params) a
full recompute of 10 s takes minutes on 2 cores, so only the cached side is timed.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from audiolm_jax import decode
from audiolm_jax.model import init_params
from benchmarks.common import emit, emit_timed, interleaved_seconds
from experiments import demo, maestro_base

SECONDS = 10.0


def _time(fn) -> float:
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return time.perf_counter() - start


def measured_bandwidth(num_bytes: int = 512 * 2**20) -> float:
    """Bytes/s this machine moves: the better of a large array copy (read + write counted)
    and a matrix-vector product over a large matrix (reads, as decoding does)."""
    x = jnp.ones(num_bytes // 4, jnp.float32)
    w = x.reshape(-1, 4096)
    v = jnp.ones(4096, jnp.float32)
    copy, matvec = jax.jit(lambda a: a + 0.0), jax.jit(lambda m, u: m @ u)
    rates = []
    for fn, args, moved in ((copy, (x,), 2 * num_bytes), (matvec, (w, v), num_bytes)):
        jax.block_until_ready(fn(*args))
        best = min(_time(lambda: fn(*args)) for _ in range(5))
        rates.append(moved / best)
    return max(rates)


def bytes_per_step(cfg, params, batch: int) -> int:
    """Params plus the whole KV cache (masked attention reads every cached position)."""
    param_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(params))
    steps = decode.trained_window(cfg)
    cache = 2 * cfg.model.num_layers * batch * steps * cfg.model.d_model * jnp.dtype(cfg.model.dtype).itemsize
    return param_bytes + cache


def run_size(name: str, cfg, batch: int, with_uncached: bool, bandwidth: float) -> None:
    model_cfg = cfg.model
    params = init_params(model_cfg, cfg.audio.n_mels, jax.random.key(0))
    r = model_cfg.frames_per_step
    prompt_frames = 8 * r
    frames = int(round(SECONDS * cfg.audio.frames_per_second))
    frames -= frames % r
    prompt = np.random.default_rng(0).standard_normal((batch, prompt_frames, cfg.audio.n_mels)).astype(np.float32)
    window = decode.trained_window(cfg)
    gen = lambda: decode.generate(model_cfg, params, prompt, frames, jax.random.key(0), window=window,
                                  prenet_dropout=False)
    seconds = interleaved_seconds({"cached": gen}, repeats=5)["cached"]  # after a compiling warm-up call
    cached, slowest = float(np.median(seconds)), max(seconds)
    fps = batch * frames / cached
    rtf = SECONDS * batch / cached  # seconds of audio per second of compute
    emit("sampling", f"{name} batch {batch}: cached frames/s (x real time {rtf:.1f}), median of 5", fps,
         cfg.audio.frames_per_second, "frames/s", target=1.0, higher_is_better=True,
         real_time_factor=rtf, real_time_factor_worst=SECONDS * batch / slowest,
         seconds_spread=[min(seconds), slowest])
    if batch == 1:
        steps = frames // r
        bound = bytes_per_step(cfg, params, batch) / bandwidth
        emit("sampling", f"{name} batch 1: bandwidth bound / step time, median of 5", bound, cached / steps, "s/step",
             target=0.6, higher_is_better=True, bandwidth_gb_s=bandwidth / 1e9,
             ratio_low=bound / (slowest / steps))
    if with_uncached:
        slow = lambda: decode.generate_by_recompute(model_cfg, params, prompt, frames, jax.random.key(0),
                                                    window=window, prenet_dropout=False)
        times = interleaved_seconds({"cached": gen, "recompute": slow}, repeats=5)
        emit_timed("sampling", f"{name} batch {batch}: cached vs full recompute (same windowing), 10 s",
                   times["cached"], times["recompute"], target=20.0, window_positions=window)


def main(sizes: list[str]) -> None:
    """Benchmarks the named sizes (`demo`, `base`; default both)."""
    bandwidth = measured_bandwidth()
    if "demo" in sizes:
        for batch in (1, 16):
            run_size("demo", demo.config(), batch, with_uncached=batch == 1, bandwidth=bandwidth)
    if "base" in sizes:
        base_cfg = maestro_base.config()
        # bfloat16 is the accelerator setting; CPUs here have no fast bfloat16 matmul
        base_cfg = dataclasses.replace(base_cfg, model=dataclasses.replace(base_cfg.model, dtype="float32"))
        for batch in (1, 16):
            run_size("base", base_cfg, batch, with_uncached=False, bandwidth=bandwidth)


if __name__ == "__main__":
    main(sys.argv[1:] or ["demo", "base"])
