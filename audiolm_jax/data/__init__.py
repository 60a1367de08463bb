"""Datasets: tfds builders for each source (`builders`), preparing and opening them
(`sources`), the one reader of their splits as batches, with its in-memory caches
(`records.Dataset`), augmentation (`augment`), from clips to batches (`pipeline`), and the
official layouts (`files`).

The names below load on first use (PEP 562): importing `audiolm_jax.data.files` (the
layouts, which validation reads) or `audiolm_jax.data.pipeline` imports neither TensorFlow
nor tfds; `prepare`, `build` and `Dataset` do.
"""

import importlib

_HOMES = {"Dataset": "records", "NormStats": "pipeline", "batch_examples": "pipeline", "clip_log_mels": "pipeline",
          "compute_norm_stats": "pipeline", "segment_frames": "pipeline", "build": "sources",
          "make_builder": "sources", "prepare": "sources"}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'audiolm_jax.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"audiolm_jax.data.{_HOMES[name]}"), name)
