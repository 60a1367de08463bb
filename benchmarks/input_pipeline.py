"""Input pipeline supply vs the demo-size train step's demand, in one run.

Batches/s of (a) the in-memory synthetic set and (b) the file-streaming reader (seeked
crops of 44.1 kHz stereo wavs in a temporary folder, resampled to 16 kHz, log-mel in JAX),
each at the demo's batch shape (16 × 3 s), against the batches/s the demo's train step
consumes. Target (issue 5): the pipeline supplies ≥ 5× what the step consumes.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time

import numpy as np
import soundfile as sf

from audiolm_jax import data as data_lib
from benchmarks.common import emit, train_step_seconds
from experiments import demo
from tests.signals import piano_like


def batches_per_second(make_batch, count: int) -> float:
    make_batch(0)  # warm-up (compilation, caches)
    start = time.perf_counter()
    for step in range(1, count + 1):
        make_batch(step)
    return count / (time.perf_counter() - start)


def step_batches_per_second(cfg, batch: dict, count: int = 10) -> float:
    return 1.0 / train_step_seconds(cfg, batch, count)[0]


def main() -> None:
    cfg = demo.config()
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthetic_train_clips=128))
    b, length = cfg.train.batch_size, data_lib.segment_frames(cfg.data.segment_seconds, cfg.audio, cfg.model.frames_per_step)
    memory = data_lib.prepare(cfg)
    demand = step_batches_per_second(cfg, memory.train_batch(0, 0, b, length))
    supply = batches_per_second(lambda s: memory.train_batch(s, 0, b, length), 50)
    emit("input_pipeline", "synthetic in memory vs demo train step", supply, demand, "batches/s",
         target=5.0, higher_is_better=True, frames_per_second=supply * b * length)
    with tempfile.TemporaryDirectory() as folder:
        for i in range(24):
            wave = piano_like(20.0, 44100, seed=i)
            sf.write(f"{folder}/{i:02d}.wav", np.stack([wave, 0.9 * wave], axis=1), 44100)
        files_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, source="folder", dir=folder))
        streamed = data_lib.prepare(files_cfg)
        supply = batches_per_second(lambda s: streamed.train_batch(s, 0, b, length), 10)
    emit("input_pipeline", "44.1 kHz stereo wav files, streamed, vs demo train step", supply, demand,
         "batches/s", target=5.0, higher_is_better=True, frames_per_second=supply * b * length)


if __name__ == "__main__":
    main()
