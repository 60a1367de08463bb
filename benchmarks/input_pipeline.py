"""Input pipeline supply vs the demo-size train step's demand, in one run; and the reader
choice (random access over tfds's ArrayRecord data source vs a tf.data pipeline).

Batches/s at the demo's batch shape (`experiments/demo.py`: `train.batch_size` clips of
`data.segment_seconds`; 4 × 3 s since the thirtieth session, 16 × 3 s before) of
(a) the synthetic set with whole log-mels in memory (`data.cache=log_mel`, the demo's path);
(b) a folder of 44.1 kHz stereo wavs prepared by the `audio_folder` builder (16 kHz int16,
    ArrayRecord), read as random crops by index (`data.Dataset`, no cache) with the training loop's
    background prefetch;
(c) the same builder prepared as TFRecord and read by tf.data (`as_dataset` → shuffle →
    random crop → batch → prefetch), log-mel by the same JAX function;
(d) the same ArrayRecord data source read by grain (`MapDataset` → shuffle → random crop →
    batch → threads and prefetch), log-mel by the same JAX function;
against the batches/s the demo's train step consumes. Target (issue 5): ≥ 5× the step.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time

import numpy as np
import soundfile as sf

from audiolm_jax import data as data_lib
from audiolm_jax.data import builders
from audiolm_jax.prefetch import prefetched
from benchmarks.common import emit, interleaved_seconds, jax_train_step, repeated
from experiments import demo
from tests.signals import piano_like


def batches_per_second(make_batch, count: int) -> float:
    make_batch(0)  # warm-up (compilation, caches)
    start = time.perf_counter()
    for step in range(1, count + 1):
        make_batch(step)
    return count / (time.perf_counter() - start)


def segment_samples(cfg) -> int:
    return int(round(cfg.data.segment_seconds * cfg.audio.sample_rate))


def tf_data_waves(builder, cfg, batch_size: int):
    """Endless `[batch, samples]` random crops read through tf.data (TFRecord)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    samples = segment_samples(cfg)

    def crop(example):
        wave = tf.cast(example["audio"], tf.float32) / 32767.0
        wave = tf.pad(wave, [[0, tf.maximum(samples - tf.shape(wave)[0], 0)]])
        return tf.image.random_crop(wave, [samples])

    ds = (builder.as_dataset(split="train", shuffle_files=True).repeat().shuffle(256)
          .map(crop, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(4))
    return tfds.as_numpy(ds)


def grain_waves(source, cfg, batch_size: int):
    """Endless `[batch, samples]` random crops read by grain from a data source (ImportError
    without grain, which is in the bench extra only)."""
    import grain

    samples = segment_samples(cfg)

    def crop(example, rng):
        wave = builders.to_float(example["audio"])
        start = int(rng.integers(0, max(len(wave) - samples, 0) + 1))
        out = np.zeros(samples, np.float32)
        piece = wave[start : start + samples]
        out[: len(piece)] = piece
        return out

    return (grain.MapDataset.source(source).seed(0).shuffle().repeat().random_map(crop).batch(batch_size)
            .to_iter_dataset(grain.ReadOptions(num_threads=4, prefetch_buffer_size=8)))


def mel_batches(waves, cfg):
    """`{"mel", "mask"}` batches from `[batch, samples]` crops, by the training path's JAX log-mel."""
    import jax

    from audiolm_jax import audio

    log_mel = jax.jit(audio.log_mel_jax, static_argnums=1)
    for batch in waves:
        mel = np.asarray(log_mel(batch, cfg.audio))
        yield {"mel": mel, "mask": np.ones(mel.shape[:2], np.float32)}


def main() -> None:
    cfg = demo.config()
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthetic_train_clips=128))
    b, length = cfg.train.batch_size, data_lib.segment_frames(cfg.data.segment_seconds, cfg.audio, cfg.model.frames_per_step)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(cfg, workdir=os.path.join(tmp, "run"))
        memory = data_lib.prepare(cfg)
        step = jax_train_step(cfg, memory.train_batch(0, 0, b, length))[0]
        demand = 10.0 / min(interleaved_seconds({"step": repeated(step, 10)}, repeats=3)["step"])
        supply = batches_per_second(lambda s: memory.train_batch(s, 0, b, length), 50)
        emit("input_pipeline", "synthetic in memory vs demo train step", supply, demand, "batches/s",
             target=5.0, higher_is_better=True, frames_per_second=supply * b * length)

        folder = os.path.join(tmp, "wavs")
        os.makedirs(folder)
        for i in range(24):
            wave = piano_like(20.0, 44100, seed=i)
            sf.write(f"{folder}/{i:02d}.wav", np.stack([wave, 0.9 * wave], axis=1), 44100)
        files_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, source="folder", dir=folder))
        start = time.perf_counter()
        records = data_lib.prepare(files_cfg)
        prepare_seconds = time.perf_counter() - start
        # as training reads it: two batches prepared ahead in a background thread
        stream = prefetched(lambda s: records.train_batch(s, 0, b, length), range(10**6), files_cfg.data.prefetch_batches)
        supply = batches_per_second(lambda s: next(stream), 20)
        emit("input_pipeline", "folder builder (8 min of 44.1 kHz stereo wav), random access, vs demo train step",
             supply, demand, "batches/s", target=5.0, higher_is_better=True,
             frames_per_second=supply * b * length, prepare_seconds=prepare_seconds)

        builder = builders.AudioFolder(source_dir=folder, data_dir=os.path.join(tmp, "tfrecord"),
                                       config=builders.audio_config(cfg.audio.sample_rate, cfg.data.chunk_seconds))
        builder.download_and_prepare(file_format="tfrecord")
        stream = mel_batches(tf_data_waves(builder, files_cfg, b), files_cfg)
        tf_supply = batches_per_second(lambda s: next(stream), 20)
        emit("input_pipeline", "random access (ArrayRecord) vs tf.data (TFRecord), same builder",
             supply, tf_supply, "batches/s", target=1.0, higher_is_better=True)
        try:
            grain_stream = mel_batches(grain_waves(records.train, files_cfg, b), files_cfg)
        except ImportError:  # grain is in the bench extra only
            return
        grain_supply = batches_per_second(lambda s: next(grain_stream), 20)
        emit("input_pipeline", "random access (ours) vs grain, same ArrayRecord data source",
             supply, grain_supply, "batches/s", target=1.0, higher_is_better=True)


if __name__ == "__main__":
    main()
