"""Dataset sources, chosen by `DataConfig.source`: each gives a split's clips `[samples]`.

- `synthetic`: the embedded piano-like set (`synthetic.py`), generated, no download.
- `folder`: every wav/flac/ogg/mp3 below `DataConfig.dir`, recursively; the validation split
  is a deterministic 5% by a hash of the relative path. Unreadable, empty or non-finite
  files are skipped with a warning naming each, and a count at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from typing import Sequence

import numpy as np

from audiolm_jax import audio
from audiolm_jax.config import ExperimentConfig
from audiolm_jax.data import synthetic
from audiolm_jax.data.pipeline import NormStats, clip_log_mels, compute_norm_stats

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """Normalised log-mel clips `[frames, n_mels]` of the train and eval splits, and the stats."""

    train: list[np.ndarray]
    eval: list[np.ndarray]
    eval_waveforms: list[np.ndarray]
    stats: NormStats


def _folder_files(root: str, split: str) -> list[str]:
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data.dir '{root}': not a directory (expected a folder of "
                                f"{'/'.join(AUDIO_EXTENSIONS)} files for source 'folder')")
    files = sorted(
        os.path.join(dirpath, name)
        for dirpath, _, names in os.walk(root)
        for name in names
        if name.lower().endswith(AUDIO_EXTENSIONS))
    if not files:
        raise FileNotFoundError(f"data.dir '{root}': no {'/'.join(AUDIO_EXTENSIONS)} files found")
    def is_validation(path: str) -> bool:
        digest = hashlib.sha1(os.path.relpath(path, root).encode()).digest()
        return digest[0] < 13  # ~5% of paths, the same on every machine
    return [f for f in files if is_validation(f) == (split == "validation")]


def _load_files(paths: Sequence[str], sample_rate: int) -> list[np.ndarray]:
    clips, skipped = [], []
    for path in paths:
        try:
            clips.append(audio.load(path, sample_rate))
        except (OSError, ValueError) as e:
            log.warning("skipping %s", e)
            skipped.append(path)
    if skipped:
        log.warning("skipped %d unreadable audio file(s): %s", len(skipped), ", ".join(skipped))
    return clips


def load_clips(config: ExperimentConfig, split: str) -> list[np.ndarray]:
    """Waveforms `[samples]` at `audio.sample_rate` of one split ('train' or 'validation')."""
    data, sample_rate = config.data, config.audio.sample_rate
    if data.source == "synthetic":
        count = data.synthetic_train_clips if split == "train" else data.synthetic_eval_clips
        return synthetic.synthesize_split(split, count, data.synthetic_clip_seconds, sample_rate)
    if data.source == "folder":
        clips = _load_files(_folder_files(data.dir, split), sample_rate)
        if not clips:
            raise ValueError(f"data.dir '{data.dir}': no readable audio in the {split} split")
        return clips
    raise ValueError(f"data.source {data.source!r}: not available in this build "
                     "(expected 'synthetic' or 'folder')")


def prepare(config: ExperimentConfig, stats: NormStats | None = None) -> PreparedData:
    """Loads both splits, computes log-mels and (unless given) normalisation statistics."""
    train_clips = load_clips(config, config.data.train_split)
    eval_clips = load_clips(config, config.data.eval_split)
    train_mels = clip_log_mels(train_clips, config.audio)
    eval_mels = clip_log_mels(eval_clips, config.audio)
    if stats is None:
        stats = compute_norm_stats(train_mels, config.data.stats_clips)
    return PreparedData(
        train=[stats.normalise(m) for m in train_mels],
        eval=[stats.normalise(m) for m in eval_mels],
        eval_waveforms=eval_clips,
        stats=stats)
