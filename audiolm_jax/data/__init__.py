"""Datasets: where clips come from (`sources`, `files`, `synthetic`) and how they become batches (`pipeline`)."""

from audiolm_jax.data.files import FileData
from audiolm_jax.data.pipeline import (NormStats, PreparedData, clip_log_mels, compute_norm_stats,
                                       eval_batches, segment_frames, train_batch)
from audiolm_jax.data.sources import load_clips, prepare

__all__ = ["FileData", "NormStats", "PreparedData", "clip_log_mels", "compute_norm_stats", "eval_batches",
           "load_clips", "prepare", "segment_frames", "train_batch"]
