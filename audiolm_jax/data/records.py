"""Training batches read by random access from a prepared tfds dataset: `Dataset`, the one
reader every run uses, with what it keeps in memory set by `data.cache`.

A prepared split is an ArrayRecord file that tfds opens as a data source: a sequence whose
item i is example i, decoded (`builder.as_data_source(split)`). Reading by index — the
access pattern grain is built on — keeps the property the in-memory set has: the batch of
step s is a pure function of (seed, s) (`pipeline.batch_examples`), so resuming replays the
same batches and each process reads its own rows. Each batch: read the examples (a thread
pool), take a random crop of `segment_seconds` (seconds → samples at the stored rate),
augment if configured, pad, log-mel for the whole batch in one JAX call, normalise, mask
(or, with whole log-mels cached, cut the crop from them on the frame grid).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional, Sequence

import jax
import numpy as np
import tqdm

from audiolm_jax import conditioning, midi
from audiolm_jax.audio import lookahead_samples, log_mel_jax, whole_window_frames
from audiolm_jax.config import AudioConfig, ConditionConfig, DataConfig
from audiolm_jax.data import augment as augment_lib
from audiolm_jax.data.builders import to_float
from audiolm_jax.data.files import DatasetError
from audiolm_jax.data.pipeline import (FRAME_KEYS, NO_METADATA, NormStats, batch_examples, clip_log_mels,
                                      compute_norm_stats, crop_frames, crop_start, prepend_go_frames, process_rows)

log = logging.getLogger(__name__)


CACHE_MODES = ("none", "audio", "log_mel")  # what `Dataset` keeps in memory (`data.cache` once resolved)


class Dataset:
    """A dataset's train and eval splits, read as crops: the one reader every run uses.

    `train`/`eval` are sequences of example dicts (tfds data sources over the prepared
    ArrayRecord files) whose `audio_key` holds int16 `[samples]` at `audio.sample_rate`.
    `cache` says what is kept in memory, as big_vision's `config.input.cache`:
    - "none": each batch reads its examples from the records (any size of dataset);
    - "audio": every example decoded once at start-up and kept (sets that fit in RAM);
    - "log_mel": also each example's whole normalised log-mel `[frames, n_mels]`, computed
      once; crops are cut in frames (the fastest supply: the small embedded sets; no
      augmentation, which works on waveforms).
    `stats` are computed when not given: from the whole log-mels of the first
    `data.stats_clips` examples ("log_mel"), else from as many random training crops drawn
    from `seed`.

    With `condition` active, batches also carry the examples' conditions
    (`conditioning.condition_arrays`): the class label from `label_key` (a tfds ClassLabel,
    whose ids are the run's label ids; names `label_names`) and the text from `text_key`.
    """

    def __init__(self, train: Sequence[dict[str, Any]], eval: Sequence[dict[str, Any]], audio_key: Optional[str],
                 audio: AudioConfig, data: DataConfig, *, cache: str = "none", stats: Optional[NormStats] = None,
                 seed: int = 0, workers: int = 4, condition: ConditionConfig = ConditionConfig(),
                 label_key: Optional[str] = None, text_key: Optional[str] = None, label_names: tuple[str, ...] = (),
                 notes_key: Optional[str] = None, speaker_key: Optional[str] = None,
                 log_mels: Optional[tuple[list[np.ndarray], list[np.ndarray]]] = None):
        if cache not in CACHE_MODES:
            raise ValueError(f"Dataset cache={cache!r}: expected one of {CACHE_MODES}")
        if cache == "log_mel" and data.augments:
            raise DatasetError("data.cache=log_mel keeps log-mels, and augmentation works on waveforms: "
                               "use data.cache=audio or none with augmentation")
        self.audio, self.data, self.cache, self.condition = audio, data, cache, condition
        self.audio_key, self.label_key, self.text_key = audio_key, label_key, text_key  # features of an example
        self.notes_key, self.speaker_key, self.label_names = notes_key, speaker_key, label_names
        self.train, self.eval = train, eval
        self._check_sources()
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._log_mel = jax.jit(log_mel_jax, static_argnums=(1,))
        self._segment_samples = int(round(data.segment_seconds * audio.sample_rate))
        self._lookahead = lookahead_samples(audio)  # samples read past a crop, so its last frame is whole
        if cache != "none":
            self.train, self.eval = self._decoded(train, "training"), self._decoded(eval, "evaluation")
        self._train_ids, train_facts = self._usable(self.train, "training")
        self._eval_ids, _ = self._usable(self.eval, "evaluation")
        self._pairing = self._pairing_table(train_facts) if data.paired_utterances else None
        self._mels: dict[str, list[np.ndarray]] = {}
        if cache == "log_mel":
            db = log_mels or (self._whole_log_mels(self.train), self._whole_log_mels(self.eval))
            stats = stats or compute_norm_stats(db[0], data.stats_clips)
            self._mels = {"train": [stats.normalise(m) for m in db[0]], "eval": [stats.normalise(m) for m in db[1]]}
        self.stats: NormStats = stats or compute_norm_stats(self.sample_log_mels(data.stats_clips, seed), data.stats_clips)

    @classmethod
    def from_log_mels(cls, train: list[np.ndarray], eval: list[np.ndarray], stats: NormStats, audio: AudioConfig,
                      data: DataConfig, condition: ConditionConfig = ConditionConfig()) -> "Dataset":
        """An in-memory set of log-mels in dB `[frames, n_mels]` without audio (tests, studies
        of the model on made-up spectrograms): no `eval_waveforms`, no metadata (so of
        `condition`, only a level); random crops only (`data.crop="utterance"` needs audio
        lengths)."""
        if data.crop != "random":
            raise ValueError(f"Dataset.from_log_mels: data.crop={data.crop!r}; only 'random' crops are cut from log-mels alone")
        no_audio = lambda mels: [{} for _ in mels]
        return cls(no_audio(train), no_audio(eval), None, audio, data, cache="log_mel", stats=stats,
                   log_mels=(list(train), list(eval)), condition=condition)

    def _check_sources(self) -> None:
        if len(self.train) == 0:
            raise DatasetError("no readable training audio (every file was skipped; see the warnings)")
        if len(self.eval) == 0:
            raise DatasetError("no readable evaluation audio (every file was skipped; see the warnings)")
        if self.condition.label and self.label_key is None:
            raise DatasetError(f"model.condition.label is on but data.source={self.data.source} has no labels")
        if self.condition.text and self.text_key is None:
            raise DatasetError(f"model.condition.text is on but data.source={self.data.source} has no text")
        if self.data.paired_utterances and self.speaker_key is None:
            raise DatasetError(f"data.paired_utterances joins two utterances of one speaker, and "
                               f"data.source={self.data.source} has no speaker ids")
        if self.condition.midi != "none" and self.notes_key is None:
            raise DatasetError(f"model.condition.midi={self.condition.midi!r} but data.source={self.data.source} "
                               "has no notes (use maestro or synthetic)")

    def _decoded(self, source: Sequence[dict[str, Any]], name: str) -> list[dict[str, Any]]:
        """Every example of `source`, read and decoded once (threaded), for the in-memory caches."""
        items = self._pool.map(lambda i: source[i], range(len(source)))
        return list(tqdm.tqdm(items, total=len(source), desc=f"caching {name} examples", unit="example",
                              disable=len(source) < 1000, leave=False))

    def _whole_log_mels(self, source: Sequence[dict[str, Any]]) -> list[np.ndarray]:
        """Log-mel in dB `[frames, n_mels]` of every example's whole audio (equal lengths
        batched), its whole-window frames only (see `_log_mels`)."""
        waves = [to_float(example[self.audio_key]) for example in source]
        return [mel[: whole_window_frames(len(wave), self.audio)]
                for mel, wave in zip(clip_log_mels(waves, self.audio), waves)]

    def _usable(self, source: Sequence[dict[str, Any]], name: str) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Indices `[K]` of the examples batches are drawn from: all of them for random crops;
        with `data.crop="utterance"`, those no longer than `data.segment_seconds` (whole
        utterances only, so a transcript always matches its audio; the others are counted
        and skipped), with their `_utterance_facts` `[K, 3]` (None for random crops)."""
        if self.data.crop == "random":
            return np.arange(len(source)), None
        facts = self._utterance_facts(source)
        lengths = facts[:, 0]
        ids = np.flatnonzero(lengths <= self._segment_samples)
        if len(ids) < len(source):
            log.warning("data.crop=utterance: %d of %d %s examples are longer than data.segment_seconds=%g s "
                        "and are skipped", len(source) - len(ids), len(source), name, self.data.segment_seconds)
        if not len(ids):
            raise DatasetError(f"data.crop=utterance: no {name} example fits in data.segment_seconds="
                               f"{self.data.segment_seconds:g} s (the longest is {lengths.max() / self.audio.sample_rate:.1f} s)")
        return ids, facts[ids]

    def _utterance_facts(self, source: Sequence[dict[str, Any]]) -> np.ndarray:
        """Per example of `source` `[N, 3]` int64, each read once: its samples, its speaker id
        (-1 without one) and the symbols of its transcript as the model reads them
        (`conditioning.read_as`: characters or phonemes; 0 without one)."""
        def facts(i: int) -> tuple[int, int, int]:
            example = source[i]
            meta = self._metadata(example)
            return (len(example[self.audio_key]), -1 if meta["speaker"] is None else meta["speaker"],
                    len(conditioning.read_as(meta["text"], self.condition.text_units,
                                             self.condition.phoneme_language)) if meta["text"] else 0)

        return np.array(list(self._pool.map(facts, range(len(source)))), np.int64).reshape(-1, 3)

    @staticmethod
    def _pairing_table(facts: np.ndarray) -> dict[str, np.ndarray]:
        """What choosing a training pair needs, per usable training example (in `_train_ids`
        order), from their `_utterance_facts`: `samples`, `speaker`, `chars`."""
        return {"samples": facts[:, 0], "speaker": facts[:, 1], "chars": facts[:, 2]}

    def _partner(self, index: int, seed: int, step: int, row: int) -> Optional[int]:
        """The training example joined before example `index` in row `row` of step `step`
        (`data.paired_utterances`): with that probability, another utterance of its speaker
        that fits with it in a segment (text too: `model.condition.max_text_chars`), drawn
        from (seed, step, row); None when not paired or when no utterance fits."""
        if self._pairing is None:
            return None
        rng = np.random.default_rng([seed, step, row, 3])
        if rng.random() >= self.data.paired_utterances:
            return None
        t, ids = self._pairing, self._train_ids
        me = int(np.flatnonzero(ids == index)[0])
        max_chars = self.condition.max_text_chars if self.condition.text else np.iinfo(np.int64).max
        fits = ((t["speaker"] == t["speaker"][me]) & (ids != index)
                & (t["samples"] + t["samples"][me] <= self._segment_samples)
                & (t["chars"] + t["chars"][me] + len(conditioning.UTTERANCE_BREAK) <= max_chars))
        return int(rng.choice(ids[fits])) if fits.any() else None

    def _crop(self, source: Sequence[dict[str, Any]], index: int, fraction: float,
              end_crop_fraction: float = 0.0, samples: Optional[int] = None, lookahead: int = 0
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Float32 `[≤ samples + lookahead]` (default: a segment) of example `index`, placed
        by `crop_start` from `fraction`, and its metadata (`label` id, `text`, `notes` `[N, 4]`
        with times from the crop's first sample; None where the dataset has none).
        `lookahead` more samples past the crop, where the example has them, are the audio
        its last frames' windows reach (`_log_mels`)."""
        example = source[int(index)]
        audio = example[self.audio_key]
        want = samples or self._segment_samples
        start = 0 if self.data.crop == "utterance" else crop_start(len(audio), want, fraction, end_crop_fraction)
        meta = self._metadata(example)
        if meta["notes"] is not None:
            rate = self.audio.sample_rate
            meta["notes"] = midi.window_notes(meta["notes"], start / rate, want / rate)
        return to_float(audio[start : start + want + lookahead]), meta

    def _mel_crop(self, split: str, index: int, fraction: float, length: int, end_crop_fraction: float = 0.0
                  ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """`length` frames of example `index`'s cached normalised log-mel `[length, n_mels]`
        (zero past its end), its frame mask `[length]`, placed by `crop_start` from
        `fraction` in frames, and its metadata as `_crop` gives it (notes from the crop's
        first frame)."""
        mel = self._mels[split][int(index)]
        start = 0 if self.data.crop == "utterance" else crop_start(len(mel), length, fraction, end_crop_fraction)
        piece, mask = crop_frames(mel, start, length)
        meta = self._metadata((self.train if split == "train" else self.eval)[int(index)])
        if meta["notes"] is not None:
            hop_seconds = self.audio.hop_length / self.audio.sample_rate
            meta["notes"] = midi.window_notes(meta["notes"], start * hop_seconds, length * hop_seconds)
        return piece, mask, meta

    def _metadata(self, example: dict[str, Any]) -> dict[str, Any]:
        text = example.get(self.text_key) if self.text_key else None
        return {"label": int(example[self.label_key]) if self.label_key else None,
                "text": text.decode("utf-8") if isinstance(text, bytes) else text,
                "notes": np.asarray(example[self.notes_key], np.float32) if self.notes_key else None,
                "speaker": int(example[self.speaker_key]) if self.speaker_key else None}

    def _train_crop(self, index: int, fraction: float, seed: int, step: int, row: int
                    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Row `row` of step `step`: example `index`'s crop (after its `_partner`, when
        paired) with the lookahead, augmented if configured, and its metadata."""
        crop, meta = self._crop(self.train, index, fraction, self.data.end_crop_fraction,
                                lookahead=self._lookahead)
        partner = self._partner(index, seed, step, row)
        if partner is not None:  # the partner whole, then this utterance: one speaker, one transcript
            before, before_meta = self._crop(self.train, partner, 0.0)
            crop = np.concatenate([before, crop])
            meta = {**meta, "text": conditioning.join_transcripts(before_meta["text"], meta["text"])}
        if self.data.augments:
            rng = np.random.default_rng([seed, step, row, 2])
            crop = augment_lib.augment(crop, self.data, self.audio.sample_rate, rng)
        return crop, meta

    def _log_mels(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Crops of up to a segment plus `lookahead_samples` (`_crop`'s `lookahead`) → the
        segment's log-mel in dB `[B, T, M]` (zero-padded) and frame mask `[B, T]`.

        A frame is real only if its whole analysis window lies in the audio read: the frames
        at a cut are computed on the zero padding after it (0.5-30 dB low). Read with the
        lookahead, a crop inside a recording has all T frames whole; a crop that reaches the
        recording's end is masked after its last whole frame — where the end-of-audio gate
        learns 'ended' from what was heard, not from the edge of the cut, which free-running
        decoding never produces (so the gate never fired there).
        """
        waves = np.zeros((len(crops), self._segment_samples + self._lookahead), np.float32)
        for row, crop in enumerate(crops):
            waves[row, : len(crop)] = crop[: waves.shape[1]]
        frames = self.audio.seconds_to_frames(self.data.segment_seconds)
        mel = np.asarray(self._log_mel(waves, self.audio))[:, :frames]
        valid = np.array([min(whole_window_frames(len(c), self.audio), frames) for c in crops])
        return mel, (np.arange(frames)[None, :] < valid[:, None]).astype(np.float32)

    def _batch(self, mel: np.ndarray, mask: np.ndarray, metas: list[dict[str, Any]], length: int
               ) -> dict[str, np.ndarray]:
        """Normalised log-mel `[B, T, M]` (padding zeroed), its frame mask `[B, T]` and the
        examples' metadata → `length` frames after `data.go_frames` go frames, the mask
        likewise, and the conditions the model takes (`label` `[B]`, `text` `[B, S]`, the
        piano roll `notes` `[B, T, F]` or the note tokens of the T frames, the speaking
        `rate` `[B]` of the text over the mask's seconds and with it the audio's `end_frame`
        `[B]` (after the go frames); see
        `conditioning.condition_arrays`)."""
        batch = {"mel": mel.astype(np.float32), "mask": mask.astype(np.float32)}
        if self.condition.midi == "frames":  # a frame-aligned array: shifted and cut with the mel
            batch["notes"] = np.stack([midi.piano_roll(self._notes(m), mel.shape[1], self.audio.sample_rate,
                                                       self.audio.hop_length) for m in metas]) * mask[..., None]
        batch = _cut_frames(prepend_go_frames(batch, self.data.go_frames), length)
        tokens = None
        if self.condition.midi == "tokens":  # the notes' time 0 is the first frame after the go frames
            hop_seconds = self.audio.hop_length / self.audio.sample_rate
            shift, seconds = self.data.go_frames * hop_seconds, length * hop_seconds
            tokens = np.stack([midi.note_tokens(midi.window_notes(self._notes(m), -shift, seconds), seconds,
                                                self.condition.max_note_tokens) for m in metas])
        if self.condition.active:
            labels = np.array([m["label"] if m["label"] is not None else 0 for m in metas], np.int32)
            texts = [m["text"] or "" for m in metas]
            rates = None
            if self.condition.takes_rate:  # the text's characters over the seconds of audio that speak it
                rates = conditioning.speaking_rates(texts, mask.sum(axis=1) / self.audio.frames_per_second,
                                                    self.condition.max_text_chars, self.condition.text_units,
                                                    self.condition.phoneme_language)
            batch.update(conditioning.condition_arrays(self.condition, labels, texts, batch.pop("notes", None),
                                                       tokens, self.audio.frames_per_second, rates=rates,
                                                       audio_start_frame=self.data.go_frames))
        if self.condition.level:  # the crop's own level, from its dB frames
            batch["level"] = conditioning.audio_levels(self.stats.denormalise(batch["mel"]), batch["mask"])
        return batch

    def _wave_batch(self, read: list[tuple[np.ndarray, dict[str, Any]]], length: int) -> dict[str, np.ndarray]:
        """(waveform crop, metadata) pairs → the batch of `_batch` (one log-mel call for all)."""
        mel, mask = self._log_mels([crop for crop, _ in read])
        return self._batch(self.stats.normalise(mel) * mask[..., None], mask, [m for _, m in read], length)

    def _mel_batch(self, read: list[tuple[np.ndarray, np.ndarray, dict[str, Any]]], length: int
                   ) -> dict[str, np.ndarray]:
        """(log-mel crop, mask, metadata) triples from the cache → the batch of `_batch`."""
        return self._batch(np.stack([m for m, _, _ in read]), np.stack([k for _, k, _ in read]),
                           [meta for _, _, meta in read], length)

    @staticmethod
    def _notes(meta: dict[str, Any]) -> np.ndarray:
        return meta["notes"] if meta["notes"] is not None else midi.EMPTY

    def train_batch(self, step: int, seed: int, batch_size: int, length: int,
                    process_index: int = 0, process_count: int = 1) -> dict[str, np.ndarray]:
        """This process's rows of the global batch of `step`, `length` frames each."""
        indices, fractions = batch_examples(step, seed, batch_size, len(self._train_ids))
        indices = self._train_ids[indices]
        rows = process_rows(batch_size, process_index, process_count)
        if self.cache == "log_mel":
            return self._mel_batch([self._mel_crop("train", indices[r], fractions[r], length,
                                                   self.data.end_crop_fraction) for r in rows], length)
        read = list(self._pool.map(lambda r: self._train_crop(indices[r], fractions[r], seed, step, r), rows))
        return self._wave_batch(read, length)

    def eval_batches(self, batch_size: int, length: int, num_examples: int) -> list[dict[str, np.ndarray]]:
        """Deterministic evaluation batches of the first `num_examples` evaluation examples
        (all, if fewer): each one's first segment (first `length` frames), in order, the last
        batch completed with masked all-zero rows, so the set is the same at any batch size."""
        ids = self._eval_ids[:num_examples]
        if self.cache == "log_mel":
            read = [self._mel_crop("eval", i, 0.0, length) for i in ids]
            while len(read) % batch_size:
                read.append((np.zeros_like(read[0][0]), np.zeros(length, np.float32), dict(NO_METADATA)))
            return [self._mel_batch(read[i : i + batch_size], length) for i in range(0, len(read), batch_size)]
        read = list(self._pool.map(lambda i: self._crop(self.eval, i, 0.0, lookahead=self._lookahead), ids))
        while len(read) % batch_size:
            read.append((np.zeros(0, np.float32), dict(NO_METADATA)))
        return [self._wave_batch(read[i : i + batch_size], length) for i in range(0, len(read), batch_size)]

    def eval_waveforms(self, count: int, seconds: float = 0.0) -> list[np.ndarray]:
        """The first `max(seconds, data.segment_seconds)` of up to `count` evaluation examples
        `[samples]`, as prompts with their real continuation (none for a set without audio)."""
        if self.audio_key is None:
            return []
        samples = max(int(round(seconds * self.audio.sample_rate)), self._segment_samples)
        return [self._crop(self.eval, i, 0.0, samples=samples)[0] for i in self._eval_ids[:count]]

    def labelled_clips(self, split: str, count: int, seconds: float) -> tuple[list[np.ndarray], np.ndarray]:
        """The first `seconds` `[samples]` (all of a shorter example) of up to `count` examples
        of the `train` or `eval` split, with their label ids `[N]` (for the evaluation's own
        classifier)."""
        if self.label_key is None:
            raise DatasetError(f"data.source={self.data.source} has no labels")
        source = self.train if split == "train" else self.eval
        samples = int(round(seconds * self.audio.sample_rate))
        read = list(self._pool.map(lambda i: self._crop(source, i, 0.0, samples=samples),
                                   range(min(len(source), count))))
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
        crops = list(self._pool.map(lambda r: self._crop(self.train, indices[r], fractions[r],
                                                         lookahead=self._lookahead)[0], range(count)))
        mels = []
        for start in range(0, count, 32):  # bounded STFT memory
            mel, mask = self._log_mels(crops[start : start + 32])
            mels += [m[valid > 0] for m, valid in zip(mel, mask)]
        return mels


def _cut_frames(batch: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
    """The batch's frame-aligned arrays (`mel`, `mask`, `notes`) cut to `length` frames (other conditions untouched)."""
    return {k: v[:, :length] if k in FRAME_KEYS else v for k, v in batch.items()}
