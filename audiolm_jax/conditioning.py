"""Conditioning: metadata (a class label, a text, MIDI notes) → the arrays a batch carries beside its mel.

A batch's conditions, all optional and batch-first like the mel:
- `label` `[B]` int32: the index of the example's label in the run's `LabelSet`;
- `text` `[B, S]` int32 ids of the text's characters, or of its phonemes with
  `model.condition.text_units="phonemes"` (`encode_texts`; `read_as`), and `text_mask`
  `[B, S]` (1 for a symbol, 0 for padding), S = `model.condition.max_text_chars`;
- `notes` `[B, T, 3 * 88]` float32: the piano roll of the notes each mel frame hears
  (`midi.piano_roll`), T the mel's frames; the model tells position i the roll of the
  group it predicts (`model.next_group_rolls`);
- `voice` `[B, Tv, n_mels]` float32 normalised log-mel frames whose voice to speak in, with
  `voice_mask` `[B, Tv]` (1 for a frame): in training the example's own frames, at
  sampling the prompt's; `drop_voice` `[B]` marks rows without one (the learned null);
- `rate` `[B]` float32: the speaking rate in characters per second (`speaking_rates`: the
  characters the model reads over the seconds of audio they are spoken in): in training
  the example's own, at sampling a voice's or a chosen one; `drop_rate` `[B]` marks rows
  without one (the learned null: the model guesses the rate);
- `end_frame` `[B]` float32 (with `model.condition.duration`): the frame of the decoded
  sequence (go frames included) at which the audio ends: the audio's first frame plus the
  text's characters over `rate` in frames, so in training the example's own end (its rate
  is its characters over its seconds), at sampling the end that rate gives; rows without a
  rate (or with `drop_rate`) get the learned null;
- `level` `[B]` float32 (with `model.condition.level`): the audio's level, `audio_levels`
  of its log-mel in dB (tens of dB): in training the example's own crop's, computed by the
  data pipeline before any corruption, at sampling the prompt's;
  `drop_level` `[B]` marks rows without one (the learned null);
- `note_tokens` `[B, S]` int32, `note_mask` `[B, S]` and `note_frames` `[B, S]` (each
  token's time in mel frames): the note events of the window the model sees
  (`midi.note_tokens`), S = `model.condition.max_note_tokens`.

The label set is a run's own: the dataset's label names in order, saved once in
`<workdir>/labels.json` when training starts, so sampling turns a name into the same id
with nothing but the workdir. The vocabularies are fixed here (characters: lower-cased
ASCII letters, digits, a little punctuation; phonemes: `phonemes.SYMBOLS`), so they need
no file: the run's config says which one its encoder reads. "Characters" below are the
symbols the encoder reads, phonemes included: a speaking rate is symbols per second.

`drop_mask` draws which examples lose their conditions for classifier-free guidance; the
model replaces theirs with a learned null (`model.Conditioner`).
"""

from __future__ import annotations

import json
import os
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from audiolm_jax import atomic, midi, phonemes
from audiolm_jax.decibels import frame_loudness_db
from audiolm_jax.config import ConditionConfig

PAD, UNKNOWN = 0, 1
CHARACTERS = " abcdefghijklmnopqrstuvwxyz0123456789'.,;:?!-"
_SYMBOLS = {"characters": CHARACTERS, "phonemes": phonemes.SYMBOLS}  # per model.condition.text_units
_IDS = {units: {c: i + 2 for i, c in enumerate(symbols)} for units, symbols in _SYMBOLS.items()}
LABELS_FILE = "labels.json"


class ConditionError(ValueError):
    """A condition the run cannot take: an unknown label, a text where none is expected."""


def normalise_text(text: str) -> str:
    """Lower case, runs of whitespace as one space, trimmed."""
    return " ".join(text.lower().split())


UTTERANCE_BREAK = ". "  # between two recordings' transcripts in one text: where one recording ends and the next begins


def join_transcripts(first: str, second: str, marked: bool = True) -> str:
    """Two recordings' transcripts as one normalised text: `first` (its own closing
    punctuation dropped) then `UTTERANCE_BREAK` then `second`; with `marked` False, one space
    between them as they were (how a model trained without paired utterances reads a cloning
    prompt: it never learnt the mark). Paired training examples and voice-cloning prompts
    join alike, so the model learns the pause between two recordings at the mark, not at
    whichever word boundary it guesses."""
    if not marked:
        return normalise_text(f"{first} {second}")
    return f"{normalise_text(first).rstrip('.,;:?! ')}{UTTERANCE_BREAK}{normalise_text(second)}"


def vocabulary_size(units: str = "characters") -> int:
    """Rows of the text encoder's embedding for `units` ("characters" or "phonemes"):
    padding, unknown, then the symbols."""
    return 2 + len(_SYMBOLS[units])


def read_as(text: str, units: str = "characters", language: str = "en-us") -> str:
    """`text` as the text encoder reads it: normalised characters (`normalise_text`), or
    with `units` "phonemes" espeak-ng's IPA of them in `language` (`phonemes.phonemise`)."""
    text = normalise_text(text)
    return phonemes.phonemise(text, language) if units == "phonemes" else text


def cut_text(text: str, max_chars: int) -> str:
    """`text` (normalised) cut to at most `max_chars` characters at a word boundary (a
    single word longer than that is cut inside)."""
    text = normalise_text(text)
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars + 1].rsplit(" ", 1)[0]
    return cut if 0 < len(cut) <= max_chars else text[:max_chars]


def encoder_text(text: str, max_chars: int, units: str = "characters", language: str = "en-us") -> str:
    """`text` as the text encoder takes it: read as `units` (`read_as`), cut to `max_chars`
    symbols at a word boundary (`cut_text`)."""
    return cut_text(read_as(text, units, language), max_chars)


def encode_texts(texts: Sequence[str], max_chars: int, units: str = "characters", language: str = "en-us"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Texts → symbol ids `[B, max_chars]` int32 (unknown symbols → UNKNOWN) and mask
    `[B, max_chars]` float32, each text as `encoder_text` gives it."""
    ids = np.full((len(texts), max_chars), PAD, np.int32)
    lookup = _IDS[units]
    for row, text in enumerate(texts):
        chars = encoder_text(text, max_chars, units, language)
        ids[row, : len(chars)] = [lookup.get(c, UNKNOWN) for c in chars]
    return ids, (ids != PAD).astype(np.float32)


def speaking_rates(texts: Sequence[str], seconds: Sequence[float], max_chars: int, units: str = "characters",
                   language: str = "en-us") -> np.ndarray:
    """`[B]` float32 symbols per second: each text's symbols as the model reads them
    (`encoder_text` in `units`, spaces and punctuation counted) over the
    `seconds` of audio it is spoken in (at least 0.01 s, so an empty clip is not a division by 0)."""
    if len(texts) != len(seconds):
        raise ValueError(f"speaking_rates: {len(texts)} texts but {len(seconds)} durations")
    chars = np.array([len(encoder_text(t, max_chars, units, language)) for t in texts], np.float32)
    return chars / np.maximum(np.asarray(seconds, np.float32), 0.01)


def decode_ids(ids: np.ndarray, units: str = "characters") -> str:
    """Symbol ids `[S]` in `units` → the text the encoder read (padding dropped, unknown as '?')."""
    lookup = {i: c for c, i in _IDS[units].items()}
    return "".join(lookup.get(int(i), "?") for i in ids if int(i) != PAD)


class LabelSet:
    """A run's label names in id order; `ids(names)` → `[B]` int32."""

    def __init__(self, names: Sequence[str]):
        self.names = tuple(str(n) for n in names)
        if len(set(self.names)) != len(self.names):
            raise ConditionError(f"label set {self.names}: names repeat")
        self._ids = {n: i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def id(self, name: str) -> int:
        """The id of `name`; an unknown name raises ConditionError listing the known ones."""
        if name not in self._ids:
            raise ConditionError(f"label {name!r}: this run knows {', '.join(self.names) or 'no labels'}")
        return self._ids[name]

    def ids(self, names: Sequence[str]) -> np.ndarray:
        return np.array([self.id(n) for n in names], np.int32)

    def save(self, workdir: str) -> None:
        """Writes `<workdir>/labels.json` atomically."""
        atomic.write_json(os.path.join(workdir, LABELS_FILE), {"labels": list(self.names)})

    @classmethod
    def load(cls, workdir: str) -> "LabelSet":
        path = os.path.join(workdir, LABELS_FILE)
        try:
            with open(path) as f:
                return cls(json.load(f)["labels"])
        except FileNotFoundError:
            raise ConditionError(f"{path}: no label set (the run was not trained with model.condition.label)") from None
        except (ValueError, KeyError, TypeError) as e:
            raise ConditionError(f"{path}: expected {{\"labels\": [names]}} ({e})") from None


def check_label_set(labels: LabelSet, config: ConditionConfig) -> None:
    """Fails when the dataset has more labels than the embedding has rows."""
    if len(labels) > config.max_labels:
        raise ConditionError(f"the dataset has {len(labels)} labels; model.condition.max_labels is "
                             f"{config.max_labels}: raise it")
    if len(labels) == 0:
        raise ConditionError("model.condition.label is on but the dataset has no labels")


def condition_arrays(config: ConditionConfig, labels: Optional[np.ndarray] = None,
                     texts: Optional[Sequence[str]] = None, rolls: Optional[np.ndarray] = None,
                     note_tokens: Optional[np.ndarray] = None, frames_per_second: float = 0.0,
                     voices: Optional[np.ndarray] = None, rates: Optional[np.ndarray] = None,
                     audio_start_frame: int = 0) -> dict[str, np.ndarray]:
    """The conditions of a batch as the model takes them: `label` `[B]` (ids) when
    `config.label`, `text`/`text_mask` `[B, S]` when `config.text`, `notes` `[B, frames,
    3 * 88]` (piano rolls aligned to the mel frames, `midi.piano_roll`) when `config.midi`
    is "frames", `note_tokens`/`note_mask` `[B, max_note_tokens]` (`midi.note_tokens`) and
    `note_frames` (each token's time in mel frames at `frames_per_second`) when it is
    "tokens"; `voice` `[B, Tv, n_mels]` (normalised frames of `voices`) with `voice_mask`
    when `config.voice` and voices are given (without, the model uses its learned null
    voice); `rate` `[B]` (`rates`, characters per second) when `config.speaking_rate` and
    rates are given (without, the learned null rate); with `config.duration` and rates,
    `rate` and `end_frame` `[B]` (`audio_start_frame`, the decoded sequence's frame where the
    audio starts, plus each text's characters over its rate at `frames_per_second`; see
    `end_frames`); {} without conditioners. Raises ConditionError when a conditioner's
    input is missing."""
    out: dict[str, np.ndarray] = {}
    if config.midi != "none":
        given = rolls if config.midi == "frames" else note_tokens
        if given is None:
            raise ConditionError(f"the model is conditioned on MIDI (model.condition.midi={config.midi!r}): give notes")
        if config.midi == "frames":
            out["notes"] = np.asarray(rolls, np.float32)
        else:
            out["note_tokens"] = np.asarray(note_tokens, np.int32)
            out["note_mask"] = (out["note_tokens"] != 0).astype(np.float32)
            out["note_frames"] = np.stack([midi.token_seconds(t) for t in out["note_tokens"]]) * frames_per_second
    if not config.cross_attends:
        return out
    if config.voice and voices is not None:
        out["voice"] = np.asarray(voices, np.float32)
        out["voice_mask"] = np.ones(out["voice"].shape[:2], np.float32)
    if config.takes_rate and rates is not None:
        out["rate"] = np.asarray(rates, np.float32).reshape(-1)
    alone = config.each_dropout > 0  # trained to take the label or the text alone
    if config.label and config.text and labels is None and texts is None:
        raise ConditionError("the model is conditioned on a label and a text (model.condition): give one or both")
    if config.label:
        if labels is None and not alone:
            raise ConditionError("the model is conditioned on labels (model.condition.label): give a label")
        rows = len(texts) if labels is None else len(labels)
        out["label"] = np.zeros(rows, np.int32) if labels is None else np.asarray(labels, np.int32)
        if alone:
            out["drop_label"] = np.full(rows, labels is None)
    if config.text:
        if texts is None and not alone:
            raise ConditionError("the model is conditioned on text (model.condition.text): give a text")
        rows = len(labels) if texts is None else len(texts)
        out["text"], out["text_mask"] = encode_texts([""] * rows if texts is None else texts, config.max_text_chars,
                                                     config.text_units, config.phoneme_language)
        if alone:
            out["drop_text"] = np.full(rows, texts is None)
        if config.duration and "rate" in out and texts is not None:
            out["end_frame"] = end_frames(out["text_mask"].sum(axis=1), out["rate"], frames_per_second,
                                          audio_start_frame)
    return out


def audio_levels(mel_db: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The level of each row `[B]` float32 of log-mel frames `mel_db` `[B, T, n_mels]` (dB)
    with `mask` `[B, T]` (1 for a frame), in units of 10 dB: the mean `frame_loudness_db` of
    the louder half of its frames (the ceil(n / 2) of its n frames), so a clip's quiet
    opening or a pause does not set it, as loudness gating leaves silence out (ITU-R
    BS.1770); 0 for a row without frames. The model's input (`model.LevelEncoder`): one
    unit is 10 dB, and audio at full scale sits near 0."""
    loudness = frame_loudness_db(mel_db).astype(np.float64)  # [B, T]
    valid = np.asarray(mask) > 0
    louder_first = -np.sort(-np.where(valid, loudness, -np.inf), axis=1)
    count = valid.sum(axis=1)
    kept = (count + 1) // 2
    taken = np.arange(loudness.shape[1])[None, :] < kept[:, None]
    total = np.where(taken, louder_first, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(kept, 1) / 10.0, 0.0).astype(np.float32)


def end_frames(chars: np.ndarray, rates: np.ndarray, frames_per_second: float, audio_start_frame: int
               ) -> np.ndarray:
    """`[B]` float32: the frame at which audio of `chars` `[B]` characters spoken at `rates`
    `[B]` characters per second ends, counted from the decoded sequence's start, the audio
    beginning at frame `audio_start_frame` (the go frames before it). Inverse of
    `speaking_rates`: a training example's rate gives back its own end."""
    if frames_per_second <= 0:
        raise ValueError(f"end_frames: frames_per_second must be positive, got {frames_per_second}")
    seconds = np.asarray(chars, np.float32) / np.maximum(np.asarray(rates, np.float32), 1e-3)
    return (audio_start_frame + seconds * frames_per_second).astype(np.float32)


def drop_mask(key: jax.Array, rate: float, example_ids: jax.Array) -> jax.Array:
    """`[B]` bool: which examples lose their conditions (to the learned null), each drawn from
    `key` folded with its global example id, so the draw is the same on any device count."""
    if rate <= 0:
        return jnp.zeros(example_ids.shape, bool)
    return jax.vmap(lambda e: jax.random.bernoulli(jax.random.fold_in(key, e), rate))(example_ids)
