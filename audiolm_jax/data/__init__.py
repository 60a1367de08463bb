"""Datasets: tfds builders for each source (`builders`), preparing and opening them
(`sources`), random-access crops of prepared records (`records`), augmentation
(`augment`), and from clips to batches (`pipeline`)."""

from audiolm_jax.data.pipeline import (NormStats, PreparedData, batch_examples, clip_log_mels, compute_norm_stats,
                                       eval_batches, segment_frames, train_batch)
from audiolm_jax.data.records import RecordData
from audiolm_jax.data.sources import build, make_builder, prepare

__all__ = ["NormStats", "PreparedData", "RecordData", "batch_examples", "build", "clip_log_mels",
           "compute_norm_stats", "eval_batches", "make_builder", "prepare", "segment_frames", "train_batch"]
