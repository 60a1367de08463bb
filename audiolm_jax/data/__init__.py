"""Datasets: tfds builders for each source (`builders`), preparing and opening them
(`sources`), the one reader of their splits as batches, with its in-memory caches
(`records.Dataset`), augmentation (`augment`), and from clips to batches (`pipeline`)."""

from audiolm_jax.data.pipeline import NormStats, batch_examples, clip_log_mels, compute_norm_stats, segment_frames
from audiolm_jax.data.records import Dataset
from audiolm_jax.data.sources import build, make_builder, prepare

__all__ = ["Dataset", "NormStats", "batch_examples", "build", "clip_log_mels", "compute_norm_stats", "make_builder",
           "prepare", "segment_frames"]
