"""Training batches read by random access from a prepared tfds dataset.

A prepared split is an ArrayRecord file that tfds opens as a data source: a sequence whose
item i is example i, decoded (`builder.as_data_source(split)`). Reading by index — the
access pattern grain is built on — keeps the property the in-memory set has: the batch of
step s is a pure function of (seed, s) (`pipeline.batch_examples`), so resuming replays the
same batches and each process reads its own rows. Each batch: read the examples (a thread
pool), take a random crop of `segment_seconds` (seconds → samples at the stored rate),
augment if configured, pad, log-mel for the whole batch in one JAX call, normalise, mask.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional, Sequence

import jax
import numpy as np

from audiolm_jax import audio, conditioning, midi
from audiolm_jax.config import AudioConfig, ConditionConfig, DataConfig
from audiolm_jax.data import augment as augment_lib
from audiolm_jax.data.builders import to_float
from audiolm_jax.data.files import DatasetError
from audiolm_jax.data.pipeline import FRAME_KEYS, NO_METADATA, NormStats, batch_examples, crop_start, prepend_go_frames, process_rows

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RecordData:
    """A prepared dataset's train and eval splits, read as crops.

    `train`/`eval` are tfds data sources (sequences of example dicts) whose `audio_key`
    holds int16 `[samples]` at `audio.sample_rate`. Provides the same `train_batch` /
    `eval_batches` / `eval_waveforms` as the in-memory `PreparedData`; `stats` must be set
    before batches are read (`sources.prepare` computes them with `sample_log_mels`).

    With `condition` active, batches also carry the examples' conditions
    (`conditioning.condition_arrays`): the class label from `label_key` (a tfds ClassLabel,
    whose ids are the run's label ids; names `label_names`) and the text from `text_key`.
    """

    train: Sequence[dict[str, Any]]
    eval: Sequence[dict[str, Any]]
    audio_key: str
    audio: AudioConfig
    data: DataConfig
    stats: NormStats | None = None
    workers: int = 4
    condition: ConditionConfig = ConditionConfig()
    label_key: Optional[str] = None  # the ClassLabel feature, if the dataset has one
    text_key: Optional[str] = None  # the text feature (transcript, caption), if any
    label_names: tuple[str, ...] = ()  # the ClassLabel's names, in id order
    notes_key: Optional[str] = None  # the notes feature `[N, 4]` (`midi.py`), if the dataset has one
    speaker_key: Optional[str] = None  # the speaker feature (LibriSpeech's speaker_id), if the dataset has one

    def __post_init__(self):
        if len(self.train) == 0:
            raise DatasetError("no readable training audio (every file was skipped; see the warnings)")
        if len(self.eval) == 0:
            raise DatasetError("no readable evaluation audio (every file was skipped; see the warnings)")
        if self.condition.label and self.label_key is None:
            raise DatasetError(f"model.condition.label is on but data.source={self.data.source} has no labels")
        if self.condition.text and self.text_key is None:
            raise DatasetError(f"model.condition.text is on but data.source={self.data.source} has no text")
        if self.condition.midi != "none" and self.notes_key is None:
            raise DatasetError(f"model.condition.midi={self.condition.midi!r} but data.source={self.data.source} "
                               "has no notes (use maestro or synthetic)")
        self._pool = ThreadPoolExecutor(max_workers=self.workers)
        self._log_mel = jax.jit(audio.log_mel_jax, static_argnums=(1,))
        self._segment_samples = int(round(self.data.segment_seconds * self.audio.sample_rate))
        self._train_ids = self._usable(self.train, "training")
        self._eval_ids = self._usable(self.eval, "evaluation")

    def _usable(self, source: Sequence[dict[str, Any]], name: str) -> np.ndarray:
        """Indices `[K]` of the examples batches are drawn from: all of them for random crops;
        with `data.crop="utterance"`, those no longer than `data.segment_seconds` (whole
        utterances only, so a transcript always matches its audio; the others are counted
        and skipped)."""
        if self.data.crop == "random":
            return np.arange(len(source))
        lengths = np.array(list(self._pool.map(lambda i: len(source[i][self.audio_key]), range(len(source)))))
        ids = np.flatnonzero(lengths <= self._segment_samples)
        if len(ids) < len(source):
            log.warning("data.crop=utterance: %d of %d %s examples are longer than data.segment_seconds=%g s "
                        "and are skipped", len(source) - len(ids), len(source), name, self.data.segment_seconds)
        if not len(ids):
            raise DatasetError(f"data.crop=utterance: no {name} example fits in data.segment_seconds="
                               f"{self.data.segment_seconds:g} s (the longest is {lengths.max() / self.audio.sample_rate:.1f} s)")
        return ids

    def _crop(self, source: Sequence[dict[str, Any]], index: int, fraction: float,
              end_crop_fraction: float = 0.0) -> tuple[np.ndarray, dict[str, Any]]:
        """Float32 `[≤ segment samples]` of example `index`, placed by `crop_start` from
        `fraction`, and its metadata (`label` id, `text`, `notes` `[N, 4]` with times from
        the crop's first sample; None where the dataset has none)."""
        example = source[int(index)]
        samples = example[self.audio_key]
        start = 0 if self.data.crop == "utterance" else crop_start(len(samples), self._segment_samples, fraction,
                                                                     end_crop_fraction)
        meta = self._metadata(example)
        if meta["notes"] is not None:
            rate = self.audio.sample_rate
            meta["notes"] = midi.window_notes(meta["notes"], start / rate, self._segment_samples / rate)
        return to_float(samples[start : start + self._segment_samples]), meta

    def _metadata(self, example: dict[str, Any]) -> dict[str, Any]:
        text = example.get(self.text_key) if self.text_key else None
        return {"label": int(example[self.label_key]) if self.label_key else None,
                "text": text.decode("utf-8") if isinstance(text, bytes) else text,
                "notes": np.asarray(example[self.notes_key], np.float32) if self.notes_key else None,
                "speaker": int(example[self.speaker_key]) if self.speaker_key else None}

    def _train_crop(self, index: int, fraction: float, seed: int, step: int, row: int
                    ) -> tuple[np.ndarray, dict[str, Any]]:
        crop, meta = self._crop(self.train, index, fraction, self.data.end_crop_fraction)
        if self.data.augments:
            rng = np.random.default_rng([seed, step, row, 2])
            crop = augment_lib.augment(crop, self.data, self.audio.sample_rate, rng)
        return crop, meta

    def _log_mels(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Crops → log-mel in dB `[B, T, M]` (zero-padded to the segment) and frame mask `[B, T]`."""
        waves = np.zeros((len(crops), self._segment_samples), np.float32)
        for row, crop in enumerate(crops):
            waves[row, : len(crop)] = crop
        mel = np.asarray(self._log_mel(waves, self.audio))
        frames = mel.shape[1]
        valid = np.array([min(1 + len(c) // self.audio.hop_length, frames) if len(c) else 0 for c in crops])
        return mel, (np.arange(frames)[None, :] < valid[:, None]).astype(np.float32)

    def _batch(self, read: list[tuple[np.ndarray, dict[str, Any]]], length: int) -> dict[str, np.ndarray]:
        """(crop, metadata) pairs → `length` frames of normalised log-mel `[B, T, M]` (padding
        zeroed) after `data.go_frames` go frames, frame mask `[B, T]`, and the conditions the
        model takes (`label` `[B]`, `text` `[B, S]`, the piano roll `notes` `[B, T, F]` or the
        note tokens of the T frames; see `conditioning.condition_arrays`)."""
        mel, mask = self._log_mels([crop for crop, _ in read])
        batch = {"mel": (self.stats.normalise(mel) * mask[..., None]).astype(np.float32), "mask": mask}
        if self.condition.midi == "frames":  # a frame-aligned array: shifted and cut with the mel
            batch["notes"] = np.stack([midi.piano_roll(self._notes(m), mel.shape[1], self.audio.sample_rate,
                                                       self.audio.hop_length) for _, m in read]) * mask[..., None]
        batch = _cut_frames(prepend_go_frames(batch, self.data.go_frames), length)
        tokens = None
        if self.condition.midi == "tokens":  # the notes' time 0 is the first frame after the go frames
            hop_seconds = self.audio.hop_length / self.audio.sample_rate
            shift, seconds = self.data.go_frames * hop_seconds, length * hop_seconds
            tokens = np.stack([midi.note_tokens(midi.window_notes(self._notes(m), -shift, seconds), seconds,
                                                self.condition.max_note_tokens) for _, m in read])
        if self.condition.active:
            labels = np.array([m["label"] if m["label"] is not None else 0 for _, m in read], np.int32)
            texts = [m["text"] or "" for _, m in read]
            batch.update(conditioning.condition_arrays(self.condition, labels, texts, batch.pop("notes", None),
                                                       tokens, self.audio.frames_per_second))
        return batch

    @staticmethod
    def _notes(meta: dict[str, Any]) -> np.ndarray:
        return meta["notes"] if meta["notes"] is not None else midi.EMPTY

    def train_batch(self, step: int, seed: int, batch_size: int, length: int,
                    process_index: int = 0, process_count: int = 1) -> dict[str, np.ndarray]:
        """This process's rows of the global batch of `step`, `length` frames each."""
        indices, fractions = batch_examples(step, seed, batch_size, len(self._train_ids))
        indices = self._train_ids[indices]
        rows = process_rows(batch_size, process_index, process_count)
        read = list(self._pool.map(lambda r: self._train_crop(indices[r], fractions[r], seed, step, r), rows))
        return self._batch(read, length)

    def eval_batches(self, batch_size: int, length: int, num_batches: int) -> list[dict[str, np.ndarray]]:
        """Deterministic evaluation batches: each evaluation example's first segment, in order."""
        ids = self._eval_ids[: batch_size * num_batches]
        read = list(self._pool.map(lambda i: self._crop(self.eval, i, 0.0), ids))
        while len(read) % batch_size:
            read.append((np.zeros(0, np.float32), dict(NO_METADATA)))
        return [self._batch(read[i : i + batch_size], length) for i in range(0, len(read), batch_size)]

    @property
    def eval_waveforms(self) -> list[np.ndarray]:
        """The first segment of a few evaluation examples `[samples]`, as prompts for sampling."""
        return [self._crop(self.eval, i, 0.0)[0] for i in self._eval_ids[:8]]

    def labelled_clips(self, split: str, count: int) -> tuple[list[np.ndarray], np.ndarray]:
        """The first segment `[samples]` of up to `count` examples of the `train` or `eval`
        split, with their label ids `[N]` (for the evaluation's own classifier)."""
        if self.label_key is None:
            raise DatasetError(f"data.source={self.data.source} has no labels")
        source = self.train if split == "train" else self.eval
        read = list(self._pool.map(lambda i: self._crop(source, i, 0.0), range(min(len(source), count))))
        return [crop for crop, _ in read], np.array([meta["label"] for _, meta in read], np.int32)

    def eval_metadata(self, count: int) -> list[dict[str, Any]]:
        """The label name (or None), text (or None), notes `[N, 4]` (seconds from the
        example's first sample, where its first segment and `eval_waveforms` start; or
        None) and speaker id (or None) of the first `count` evaluation examples."""
        return [self._named(self._metadata(self.eval[i])) for i in self._eval_ids[:count]]

    def _named(self, meta: dict[str, Any]) -> dict[str, Any]:
        """`_metadata` with the label id replaced by its name."""
        return {**meta, "label": self.label_names[meta["label"]] if meta["label"] is not None else None}

    def eval_utterances(self, count: Optional[int] = None) -> list[tuple[np.ndarray, dict[str, Any]]]:
        """Up to `count` (None: all) whole evaluation examples, float32 `[samples]` (at most
        `data.segment_seconds`), each with its metadata as `eval_metadata` gives it (for
        scoring speech synthesised from their transcripts against them); each read once."""
        examples = [self.eval[i] for i in self._eval_ids[:count]]
        return [(to_float(e[self.audio_key][: self._segment_samples]), self._named(self._metadata(e)))
                for e in examples]

    def eval_recordings(self, count: int, seconds: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """The first `seconds` (or all) of up to `count` evaluation examples, float32
        `[samples]`, with the notes `[N, 4]` heard in them (seconds from their first
        sample), for scoring renderings of MIDI against the recordings of it."""
        if self.notes_key is None:
            raise DatasetError(f"data.source={self.data.source} has no notes")
        want = int(round(seconds * self.audio.sample_rate))
        out = []
        for i in range(min(len(self.eval), count)):
            example = self.eval[i]
            wave = to_float(example[self.audio_key][:want])
            notes = midi.window_notes(np.asarray(example[self.notes_key], np.float32), 0.0,
                                      len(wave) / self.audio.sample_rate)
            out.append((wave, notes))
        return out

    def sample_log_mels(self, count: int, seed: int) -> list[np.ndarray]:
        """Log-mels in dB `[frames, n_mels]` of `count` random training crops (for statistics)."""
        indices = np.random.default_rng([seed, 3]).integers(0, len(self.train), size=count)
        fractions = np.random.default_rng([seed, 4]).random(count)
        crops = list(self._pool.map(lambda r: self._crop(self.train, indices[r], fractions[r])[0], range(count)))
        mels = []
        for start in range(0, count, 32):  # bounded STFT memory
            mel, mask = self._log_mels(crops[start : start + 32])
            mels += [m[valid > 0] for m, valid in zip(mel, mask)]
        return mels


def _cut_frames(batch: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
    """The batch's frame-aligned arrays (`mel`, `mask`, `notes`) cut to `length` frames (other conditions untouched)."""
    return {k: v[:, :length] if k in FRAME_KEYS else v for k, v in batch.items()}
