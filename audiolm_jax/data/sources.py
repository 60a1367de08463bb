"""Dataset sources, chosen by `DataConfig.source`.

- `synthetic`: the embedded piano-like set (`synthetic.py`), generated in memory, no download.
- `folder`, `librispeech`, `maestro`: audio files on disk in their official layouts,
  streamed as random crops (`files.py`); `DataConfig.dir` points at the local copy.
"""

from __future__ import annotations

import numpy as np

from audiolm_jax.config import ExperimentConfig
from audiolm_jax.data import files, synthetic
from audiolm_jax.data.files import FileData
from audiolm_jax.data.pipeline import NormStats, PreparedData, clip_log_mels, compute_norm_stats


def load_clips(config: ExperimentConfig, split: str) -> list[np.ndarray]:
    """Waveforms `[samples]` of a synthetic split ('train', 'validation' or 'test')."""
    data = config.data
    count = data.synthetic_train_clips if split == "train" else data.synthetic_eval_clips
    return synthetic.synthesize_split(split, count, data.synthetic_clip_seconds, config.audio.sample_rate)


def _file_splits(config: ExperimentConfig) -> tuple[list[files.AudioFile], list[files.AudioFile]]:
    """Indexed (train, eval) files of a source on disk; unusable files skipped with warnings."""
    data = config.data
    if data.source == "librispeech":
        return (files.index_files(files.librispeech_paths(data.dir, data.train_split)),
                files.index_files(files.librispeech_paths(data.dir, data.eval_split)))
    if data.source == "maestro":
        return (files.index_files(files.maestro_paths(data.dir, data.train_split)),
                files.index_files(files.maestro_paths(data.dir, data.eval_split)))
    # folder: decode every file once (the user's own audio may hold anything), then split
    usable = files.index_files(files.folder_paths(data.dir), verify=True)
    return (files.split_by_path_hash(usable, data.dir, data.train_split),
            files.split_by_path_hash(usable, data.dir, data.eval_split))


def prepare(config: ExperimentConfig, stats: NormStats | None = None) -> PreparedData | FileData:
    """The dataset of `config.data`, with normalisation statistics (computed unless given)."""
    data = config.data
    if data.source == "synthetic":
        train_clips = load_clips(config, data.train_split)
        eval_clips = load_clips(config, data.eval_split)
        train_mels = clip_log_mels(train_clips, config.audio)
        eval_mels = clip_log_mels(eval_clips, config.audio)
        if stats is None:
            stats = compute_norm_stats(train_mels, data.stats_clips)
        return PreparedData(train=[stats.normalise(m) for m in train_mels],
                            eval=[stats.normalise(m) for m in eval_mels],
                            eval_waveforms=eval_clips, stats=stats)
    train_files, eval_files = _file_splits(config)
    dataset = FileData(train_files, eval_files, config.audio, data.segment_seconds)
    if stats is None:
        stats = compute_norm_stats(dataset.sample_log_mels(data.stats_clips, config.train.seed), data.stats_clips)
    dataset.stats = stats
    return dataset
