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

import dataclasses
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


def _crop(mel: np.ndarray, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """`length` frames of `mel` from `start`, zero-padded and masked past its end."""
    piece = mel[start : start + length]
    mask = np.zeros(length, np.float32)
    mask[: len(piece)] = 1.0
    if len(piece) < length:
        piece = np.concatenate([piece, np.zeros((length - len(piece), mel.shape[1]), mel.dtype)])
    return piece, mask


def _stack(pieces: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    return {"mel": np.stack([p[0] for p in pieces]).astype(np.float32),
            "mask": np.stack([p[1] for p in pieces]).astype(np.float32)}


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


def train_batch(mels: Sequence[np.ndarray], step: int, seed: int, batch_size: int, length: int,
                process_index: int = 0, process_count: int = 1, end_crop_fraction: float = 0.0
                ) -> dict[str, np.ndarray]:
    """This process's rows of the global training batch of `step` (see `batch_examples`).

    `mels` are normalised `[frames, n_mels]` clips; each row is a random crop of `length`
    frames placed by `crop_start`.
    """
    indices, fractions = batch_examples(step, seed, batch_size, len(mels))
    pieces = []
    for row in process_rows(batch_size, process_index, process_count):
        mel = mels[indices[row]]
        pieces.append(_crop(mel, crop_start(len(mel), length, fractions[row], end_crop_fraction), length))
    return _stack(pieces)


def eval_batches(mels: Sequence[np.ndarray], batch_size: int, length: int, num_batches: int
                 ) -> list[dict[str, np.ndarray]]:
    """Deterministic evaluation batches: consecutive crops of each clip in turn.

    Crops walk clip 0 at offsets 0, length, 2·length, ..., then clip 1, ...; the last batch
    is completed with masked (all-zero) rows so every batch has `batch_size` rows.
    """
    pieces = []
    for mel in mels:
        for start in range(0, max(len(mel) - length, 0) + 1, length):
            pieces.append(_crop(mel, start, length))
    pieces = pieces[: batch_size * num_batches]
    if not pieces:
        raise ValueError("eval_batches: no evaluation clips")
    width = mels[0].shape[1]
    while len(pieces) % batch_size:
        pieces.append((np.zeros((length, width), np.float32), np.zeros(length, np.float32)))
    return [_stack(pieces[i : i + batch_size]) for i in range(0, len(pieces), batch_size)]


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """An in-memory dataset: normalised log-mel clips `[frames, n_mels]` and the stats.

    `eval_waveforms` are the evaluation clips' audio `[samples]` (prompts for sampling).
    """

    train: list[np.ndarray]
    eval: list[np.ndarray]
    eval_waveforms: list[np.ndarray]
    stats: NormStats
    end_crop_fraction: float = 0.0  # see `crop_start`
    go_frames: int = 0  # see `prepend_go_frames`

    def train_batch(self, step: int, seed: int, batch_size: int, length: int,
                    process_index: int = 0, process_count: int = 1) -> dict[str, np.ndarray]:
        return prepend_go_frames(train_batch(self.train, step, seed, batch_size, length, process_index,
                                             process_count, self.end_crop_fraction), self.go_frames)

    def eval_batches(self, batch_size: int, length: int, num_batches: int) -> list[dict[str, np.ndarray]]:
        return [prepend_go_frames(b, self.go_frames) for b in eval_batches(self.eval, batch_size, length, num_batches)]

    def eval_metadata(self, count: int) -> list[dict]:
        """The in-memory set carries no labels, text or notes."""
        return [dict(NO_METADATA) for _ in range(min(count, len(self.eval_waveforms)))]
