"""From clips to batches: log-mel per clip, normalisation statistics, crops, batches.

A batch is a dict of numpy arrays: `mel` `[batch, frames, n_mels]` (normalised log-mel) and
`mask` `[batch, frames]` (1.0 for real frames, 0.0 for padding of clips shorter than the
segment). The training batch at step `s` is a pure function of (seed, s): row r of the
global batch is position `s * B + r` of a walk through the split in epochs, each epoch a
fresh permutation. Resuming at any step replays exactly the batches an uninterrupted run
would have seen; process p takes its own rows, so within an epoch the processes read
disjoint examples that together cover the split, whatever the process count.
"""

from __future__ import annotations

import functools
import types
from typing import Sequence

import jax
import numpy as np

from audiolm_jax import audio
from audiolm_jax.config import AudioConfig, segment_frames  # noqa: F401 (re-exported)
from audiolm_jax.stats import NormStats  # noqa: F401 (re-exported)


def clip_log_mels(clips: Sequence[np.ndarray], config: AudioConfig, chunk: int = 16) -> list[np.ndarray]:
    """Log-mel in dB `[frames, n_mels]` of each `[samples]` clip (JAX path, equal lengths batched)."""
    out: list[np.ndarray | None] = [None] * len(clips)
    by_length: dict[int, list[int]] = {}
    for i, clip in enumerate(clips):
        by_length.setdefault(len(clip), []).append(i)
    compute = jax.jit(audio.log_mel_jax, static_argnums=1)
    for indices in by_length.values():
        for start in range(0, len(indices), chunk):
            part = indices[start : start + chunk]
            mels = np.asarray(compute(np.stack([clips[i] for i in part]), config))
            for i, mel in zip(part, mels):
                out[i] = mel
    return out  # type: ignore[return-value]


def compute_norm_stats(mels: Sequence[np.ndarray], max_clips: int) -> NormStats:
    """Per-bin mean, std, min and max over the frames of the first `max_clips` clips'
    log-mels (dB)."""
    frames = np.concatenate([np.asarray(m, np.float64) for m in mels[:max_clips]], axis=0)
    std = np.maximum(frames.std(axis=0), 1e-3)
    return NormStats(frames.mean(axis=0).astype(np.float32), std.astype(np.float32),
                     frames.min(axis=0).astype(np.float32), frames.max(axis=0).astype(np.float32))


def crop_frames(mel: np.ndarray, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """`length` frames of `mel` from `start`, zero-padded and masked past its end."""
    piece = mel[start : start + length]
    mask = np.zeros(length, np.float32)
    mask[: len(piece)] = 1.0
    if len(piece) < length:
        piece = np.concatenate([piece, np.zeros((length - len(piece), mel.shape[1]), mel.dtype)])
    return piece, mask


# The metadata of an example without label, text, notes or speaker (read-only; copy to change).
NO_METADATA = types.MappingProxyType({"label": None, "text": None, "notes": None, "speaker": None})
FRAME_KEYS = ("mel", "mask", "notes")  # batch arrays with one entry per mel frame `[B, T, ...]`


def prepend_go_frames(batch: dict[str, np.ndarray], frames: int) -> dict[str, np.ndarray]:
    """The batch's `mel` `[B, T, M]` (normalised) after `frames` frames of the mean frame
    (normalised 0: Tacotron's 'go' frame), cut back to T frames, the mask likewise (1 on
    the go frames), a piano roll `notes` likewise (no notes on them); the start that
    generation from no audio (`continuation.unconditional_prompt`) feeds the model."""
    if frames <= 0:
        return batch
    out = dict(batch)
    for key in FRAME_KEYS:
        if key in batch:
            value = batch[key]
            fill = np.ones if key == "mask" else np.zeros
            go = fill((value.shape[0], frames) + value.shape[2:], value.dtype)
            out[key] = np.concatenate([go, value], axis=1)[:, : value.shape[1]]
    return out


def process_rows(batch_size: int, process_index: int, process_count: int) -> range:
    """Rows [p * B / P, (p + 1) * B / P) of a global batch of `batch_size` that process p reads."""
    per_process = batch_size // process_count
    return range(process_index * per_process, (process_index + 1) * per_process)


@functools.lru_cache(maxsize=4)
def _epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    """The order `[num_examples]` in which epoch `epoch` visits the examples (read-only)."""
    order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    order.flags.writeable = False
    return order


def batch_examples(step: int, seed: int, batch_size: int, num_examples: int) -> tuple[np.ndarray, np.ndarray]:
    """Example indices `[batch_size]` and crop-start fractions in [0, 1) `[batch_size]` of the
    global batch of `step`: positions step·B … step·B + B − 1 of an epoch-by-epoch walk,
    each epoch a permutation drawn from (seed, epoch)."""
    positions = step * batch_size + np.arange(batch_size)
    epochs, within = np.divmod(positions, num_examples)
    indices = np.array([_epoch_permutation(seed, int(e), num_examples)[i] for e, i in zip(epochs, within)])
    return indices, np.random.default_rng([seed, step, 1]).random(batch_size)


def crop_start(total: int, length: int, fraction: float, end_crop_fraction: float = 0.0) -> int:
    """Where a training crop of `length` starts in a clip of `total` (both frames, or both
    samples), from its random draw `fraction` in [0, 1).

    The first `1 - end_crop_fraction` of draws spread crops over the clip, never past its
    end; the rest place the clip's end inside the crop (25-100% of it real audio, the rest
    padding), so an end-of-audio gate sees where recordings end.
    """
    inside = 1.0 - end_crop_fraction
    if fraction < inside:
        return int(fraction / inside * max(total - length, 0) + 0.5)
    u = (fraction - inside) / end_crop_fraction
    return max(total - max(int(round(length * (0.25 + 0.75 * u))), 1), 0)
