"""Datasets: where clips come from (`sources`) and how they become batches (`pipeline`)."""

from audiolm_jax.data.pipeline import (NormStats, clip_log_mels, compute_norm_stats, eval_batches,
                                       segment_frames, train_batch, train_batches)
from audiolm_jax.data.sources import PreparedData, load_clips, prepare

__all__ = ["NormStats", "PreparedData", "clip_log_mels", "compute_norm_stats", "eval_batches",
           "load_clips", "prepare", "segment_frames", "train_batch", "train_batches"]
