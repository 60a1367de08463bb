"""tfds builders for every source: the three embedded sets (piano, sounds, voices),
LibriSpeech, MAESTRO v3, ESC-50, UrbanSound8K and a folder of the user's own audio.

Each stores mono int16 audio at its config's sample rate (resampled with soxr at
preparation, so training never resamples), and is prepared with `download_and_prepare`
into a tfds data dir like any tfds dataset: `tfds.builder("maestro_v3", data_dir=...)`,
splits, caching and `as_data_source`/`as_dataset` work as tfds users expect.

- `SyntheticPiano`, `SyntheticSounds`, `SyntheticVoices`: generated with numpy
  (`synthetic.py`, `sounds.py`, `voices.py`), no download; the voices set has LibriSpeech's
  features (speech, text, speaker_id) with held-out sentences in validation and test.
- `LibrispeechAudio`: tfds's own `librispeech` builder (its URLs, checksums, transcript
  parsing and SPEAKERS/CHAPTERS metadata), reading either the downloaded archives or an
  extracted local `LibriSpeech/` tree (`source_dir`); decoded with soundfile, so
  preparation needs no ffmpeg. Splits are tfds's (`train_clean100`, `dev_clean`, ...).
- `MaestroV3`: the official zip, or a local `maestro-v3.0.0/` folder; splits from the csv's
  `split` column; features audio, the chunk's notes (`midi.py`: sustain applied, times from
  the chunk's start), composer, title, year, duration.
- `AudioFolder`: every wav/flac/ogg/mp3 below `source_dir`, ~5% by hashed path as
  `validation`.

Long recordings (MAESTRO pieces, the user's files) are stored as consecutive chunks of at
most `chunk_seconds` (feature `start_seconds` says where each begins), so a random crop
decodes seconds of audio, not a whole piece. A file that cannot be decoded, is empty or
holds non-finite samples is skipped with a warning naming it and a count per split.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Optional

from etils import epath
import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import utils as tfds_utils
from tensorflow_datasets.datasets.librispeech import librispeech_dataset_builder as tfds_librispeech

from audiolm_jax import audio, midi
from audiolm_jax.data import files, sounds, synthetic, voices
from audiolm_jax.data.files import LIBRISPEECH_SPLITS

log = logging.getLogger(__name__)

MAESTRO_URL = "https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/maestro-v3.0.0.zip"
MAESTRO_HOMEPAGE = "https://magenta.tensorflow.org/datasets/maestro"


def _audio_feature(sample_rate: int) -> tfds.features.Tensor:
    """Mono int16 samples `[samples]` at `sample_rate` Hz, stored as raw bytes.

    Not `tfds.features.Audio`: that stores an int16 array as a varint int64 list, which
    took 5.9 ms to decode per 20 s example against 0.73 ms for raw bytes, and random-access
    training decodes one example per crop. The rate is in `info.metadata["sample_rate"]`.
    """
    return tfds.features.Tensor(shape=(None,), dtype=np.int16, encoding=tfds.features.Encoding.BYTES,
                                doc=f"mono 16-bit PCM at {sample_rate} Hz")


def _notes_feature() -> tfds.features.Tensor:
    """Notes `[N, 4]` float32: onset and offset in seconds from the example's first sample,
    MIDI pitch, velocity (`midi.py`); a note held from before a chunk starts has a negative onset."""
    return tfds.features.Tensor(shape=(None, 4), dtype=np.float32, doc="notes: onset s, offset s, pitch, velocity")


class LocalDatasetInfo(tfds.core.DatasetInfo):
    """tfds's DatasetInfo, never looked up on tfds's GCS bucket (none of these datasets is
    there): tfds 4.9 makes an empty temporary directory (`/tmp/tmp…tfds`) before looking, on
    every construction of an unprepared builder, and never removes it — thousands piled up
    in /tmp after a few test runs."""

    def initialize_from_bucket(self) -> None:
        """Nothing to fetch; no temporary directory."""


def _metadata(sample_rate: int) -> tfds.core.MetadataDict:
    return tfds.core.MetadataDict(sample_rate=sample_rate)


def to_int16(waveform: np.ndarray) -> np.ndarray:
    """float `[samples]` in [-1, 1] → int16 `[samples]` (clipped)."""
    return np.round(np.clip(waveform, -1.0, 1.0) * 32767.0).astype(np.int16)


def to_float(samples: np.ndarray) -> np.ndarray:
    """int16 `[samples]` → float32 `[samples]` in [-1, 1]."""
    return np.asarray(samples, np.float32) / 32767.0


class _SkipCounter:
    """Decodes files for one split, skipping (and naming) those that cannot be used."""

    def __init__(self, what: str):
        self.what, self.skipped, self.seen = what, [], 0
        self._lock = threading.Lock()

    def decode(self, path: str, sample_rate: int) -> Optional[np.ndarray]:
        """Mono float32 `[samples]` at `sample_rate`, or None (warned) for an unusable file.
        Safe to call from several threads."""
        with self._lock:
            self.seen += 1
        try:
            return audio.load(path, sample_rate)
        except Exception as e:  # libsndfile/audioread raise many types for unreadable files
            self.skip(path, e)
            return None

    def skip(self, path: str, reason: object) -> None:
        """Counts `path` (already counted as seen) as skipped, with a warning naming it."""
        log.warning("skipping '%s': %s", path, reason)
        with self._lock:
            self.skipped.append(path)

    def report(self) -> None:
        """One warning naming every skipped file, with the count."""
        if self.skipped:
            log.warning("%s: skipped %d unreadable file(s) of %d: %s", self.what, len(self.skipped),
                        self.seen, ", ".join(sorted(self.skipped)))

    def finish(self) -> None:
        """`report`, then DatasetError if the split got no usable audio (tfds cannot write an
        empty split, and a model cannot train on one)."""
        self.report()
        if len(self.skipped) == self.seen:
            raise files.DatasetError(f"{self.what}: no usable audio ({self.seen} file(s) found, all skipped; "
                                     "see the warnings)")


def _chunks(waveform: np.ndarray, sample_rate: int, chunk_seconds: int) -> Iterator[tuple[int, np.ndarray]]:
    """(index, int16 piece) of consecutive ≤ `chunk_seconds` pieces of `waveform` `[samples]`."""
    size = chunk_seconds * sample_rate
    for index, start in enumerate(range(0, len(waveform), size)):
        yield index, to_int16(waveform[start : start + size])


class _Parallel:
    """A builder whose examples come from independent files (a piece, a chapter, a clip).

    By default `workers` threads decode files ahead (decoding and resampling release the
    GIL) while tfds writes, in order; with `beam=True` the split is an Apache Beam
    transform, which tfds runs on the pipeline given at preparation
    (`sources.download_config`: Dataflow, Spark or Flink on a cluster, or Beam's local
    runner). Subclasses pass `_examples` their work items and a picklable function
    `(item, counter) -> iterator of (key, example)` that decodes through `counter`.
    """

    def __init__(self, *, beam: bool = False, workers: int = 1, **kwargs):
        self._beam, self._workers = beam, max(workers, 1)
        super().__init__(**kwargs)

    def _examples(self, what: str, items: list, to_examples: Callable[[Any, _SkipCounter], Iterator[tuple[str, dict]]]):
        """The split's examples: a generator, or a Beam transform of `items` (the same examples)."""
        if not self._beam:
            return _threaded_examples(what, items, to_examples, self._workers)
        from tensorflow_datasets.core.utils.lazy_imports_utils import apache_beam as beam

        return beam.Create(items) | beam.FlatMap(_item_examples, to_examples, what)


def _threaded_examples(what: str, items: list, to_examples, workers: int) -> Iterator[tuple[str, dict]]:
    """Every item's examples in order, `workers` threads decoding up to 2 × `workers` items
    ahead (bounded memory); then the split's skip report (`_SkipCounter.finish`)."""
    counter = _SkipCounter(what)
    decode = lambda item: list(to_examples(item, counter))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: collections.deque = collections.deque()
        for item in items:
            pending.append(pool.submit(decode, item))
            if len(pending) >= 2 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    counter.finish()


def _item_examples(item, to_examples, what: str) -> list[tuple[str, dict]]:
    """One work item's examples in a Beam worker; a skipped file is named in the worker's
    log (an empty split fails in tfds, as an all-skipped serial split does here)."""
    return list(to_examples(item, _SkipCounter(what)))


def _librispeech_examples(transcript: str, counter: _SkipCounter, *, sample_rate: int):
    """One chapter's utterances: tfds's transcript parsing, `speech` decoded here (not by ffmpeg)."""
    for key, example in tfds_librispeech._generate_librispeech_examples(transcript):
        wave = counter.decode(example["speech"], sample_rate)
        if wave is not None:
            yield key, {**example, "speech": to_int16(wave)}


def _maestro_examples(row: dict, counter: _SkipCounter, *, base: str, sample_rate: int, chunk_seconds: int):
    """One performance's chunks, each with its own notes (times from the chunk's start)."""
    wave = counter.decode(os.path.join(base, row["audio_filename"]), sample_rate)
    if wave is None:
        return
    midi_path = os.path.join(base, row.get("midi_filename", ""))
    try:
        notes = midi.read_notes(midi_path)
    except (midi.MidiError, OSError) as e:
        counter.skip(midi_path, e)
        return
    piece = os.path.splitext(os.path.basename(row["audio_filename"]))[0]
    meta = {"composer": row.get("canonical_composer", ""), "title": row.get("canonical_title", ""),
            "year": int(row.get("year") or 0), "duration": float(row.get("duration") or len(wave) / sample_rate)}
    for index, piece_audio in _chunks(wave, sample_rate, chunk_seconds):
        key = f"{piece}/{index:04d}"
        start = float(index * chunk_seconds)
        yield key, {**meta, "audio": piece_audio, "start_seconds": start, "id": key,
                    "notes": midi.window_notes(notes, start, chunk_seconds)}


def _labelled_examples(row: dict, counter: _SkipCounter, *, source_dir: str, sample_rate: int, chunk_seconds: int):
    """One labelled clip's chunks."""
    wave = counter.decode(row["path"], sample_rate)
    if wave is None:
        return
    key = os.path.relpath(row["path"], source_dir)
    for index, piece in _chunks(wave, sample_rate, chunk_seconds):
        yield f"{key}/{index:04d}", {"audio": piece, "label": row["label"], "fold": row["fold"],
                                     "id": f"{key}/{index:04d}"}


def _folder_examples(path: str, counter: _SkipCounter, *, source_dir: str, sample_rate: int, chunk_seconds: int):
    """One file's chunks, labelled by its top-level subfolder."""
    wave = counter.decode(path, sample_rate)
    if wave is None:
        return
    relative = os.path.relpath(path, source_dir)
    for index, piece in _chunks(wave, sample_rate, chunk_seconds):
        key = f"{relative}/{index:04d}"
        yield key, {"audio": piece, "path": relative, "label": files.folder_label(relative),
                    "start_seconds": float(index * chunk_seconds), "id": key}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "audio"


# ---------------------------------------------------------------------------------------
# Builder configs: the sample rate (and chunking) a dataset is stored at is part of its name


@dataclasses.dataclass(eq=False)
class AudioBuilderConfig(tfds.core.BuilderConfig):
    """Stored sample rate (Hz) and, for long recordings, the chunk length (seconds)."""

    sample_rate: int = 16000
    chunk_seconds: int = 30


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
    """The synthetic set's size: clips per split and seconds per clip, at `sample_rate` Hz."""

    sample_rate: int = 16000
    clip_seconds: float = 4.0
    train_clips: int = 1024
    validation_clips: int = 64
    test_clips: int = 64

    def split_counts(self) -> dict[str, int]:
        """Clips (for the sound set: per class) of each split."""
        return {"train": self.train_clips, "validation": self.validation_clips, "test": self.test_clips}


def synthetic_config(sample_rate: int, clip_seconds: float, train_clips: int, eval_clips: int) -> SyntheticConfig:
    """The config named after its parameters (each distinct set is prepared once)."""
    name = f"sr{sample_rate}_{train_clips}x{round(clip_seconds * 1000)}ms_eval{eval_clips}"
    return SyntheticConfig(name=name, sample_rate=sample_rate, clip_seconds=clip_seconds, train_clips=train_clips,
                           validation_clips=eval_clips, test_clips=eval_clips,
                           description=f"{train_clips} training clips of {clip_seconds:g} s at {sample_rate} Hz")


def sounds_config(sample_rate: int, clip_seconds: float, train_clips: int, eval_clips: int) -> SyntheticConfig:
    """The labelled sound set's config: clips per split are rounded up to whole classes."""
    per_class = lambda clips: max(-(-clips // len(sounds.CLASSES)), 1)
    train, evaluation = per_class(train_clips), per_class(eval_clips)
    name = f"sr{sample_rate}_{train}x{len(sounds.CLASSES)}x{round(clip_seconds * 1000)}ms_eval{evaluation}"
    return SyntheticConfig(name=name, sample_rate=sample_rate, clip_seconds=clip_seconds, train_clips=train,
                           validation_clips=evaluation, test_clips=evaluation,
                           description=f"{train} training clips per class of {clip_seconds:g} s at {sample_rate} Hz")


def voices_config(sample_rate: int, train_clips: int, eval_clips: int) -> SyntheticConfig:
    """The embedded speech set's config: utterances per split (each as long as its sentence)."""
    return SyntheticConfig(name=f"sr{sample_rate}_{train_clips}utt_eval{eval_clips}", sample_rate=sample_rate,
                           clip_seconds=0.0, train_clips=train_clips, validation_clips=eval_clips,
                           test_clips=eval_clips,
                           description=f"{train_clips} training utterances at {sample_rate} Hz")


def audio_config(sample_rate: int, chunk_seconds: int = 30) -> AudioBuilderConfig:
    return AudioBuilderConfig(name=f"sr{sample_rate}_chunk{chunk_seconds}s", sample_rate=sample_rate,
                              chunk_seconds=chunk_seconds,
                              description=f"mono int16 at {sample_rate} Hz, chunks of <= {chunk_seconds} s")


def _parameters(config: tfds.core.BuilderConfig) -> dict:
    """The fields a config subclass adds to tfds's BuilderConfig (what its name encodes)."""
    base = {f.name for f in dataclasses.fields(tfds.core.BuilderConfig)}
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in base}


def registered_config(builder_cls: type, config: tfds.core.BuilderConfig) -> tfds.core.BuilderConfig:
    """`config`, or the object `builder_cls` registers under its name when both hold the same
    parameters.

    Our configs are named after their parameters, so one name is one dataset. tfds refuses a
    second object under a registered name (it compares by identity), so an equal config
    built at run time is swapped for the registered one; a different config under a
    registered name is a ValueError naming both.
    """
    known = builder_cls.builder_configs.get(config.name)
    if known is None or known is config:
        return config
    if type(known) is not type(config) or _parameters(known) != _parameters(config):
        raise ValueError(f"{builder_cls.__name__}: builder config '{config.name}' is registered with "
                         f"{_parameters(known)}, not {_parameters(config)}")
    return known


class _ConfigsByName:
    """Mixin for every builder here: a config passed as an object goes through
    `registered_config`, so any config (registered or not) can be asked for."""

    def __init__(self, *, config=None, **kwargs):
        if isinstance(config, tfds.core.BuilderConfig):
            config = registered_config(type(self), config)
        super().__init__(config=config, **kwargs)


# ---------------------------------------------------------------------------------------
# Builders


class _Generated(_ConfigsByName, tfds.core.GeneratorBasedBuilder):
    """An embedded set the package makes itself: each split from `_generate_examples(split,
    count)` with the config's counts (`SyntheticConfig.split_counts`), features from
    `_features()`, described by `DESCRIPTION`."""

    DESCRIPTION = ""
    SUPERVISED_KEYS: Optional[tuple[str, str]] = None

    def _features(self) -> dict:
        raise NotImplementedError

    def _info(self) -> tfds.core.DatasetInfo:
        return LocalDatasetInfo(builder=self, description=self.DESCRIPTION,
                                     features=tfds.features.FeaturesDict(self._features()),
                                     supervised_keys=self.SUPERVISED_KEYS,
                                     metadata=_metadata(self.builder_config.sample_rate))

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split, n) for split, n in self.builder_config.split_counts().items()}


class SyntheticPiano(_Generated):
    """Deterministic piano-like notes and chords (see `synthetic.py`); no download."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "Motif-repeating notes and chords, 8 inharmonic partials.",
                     "1.1.0": "Each clip's notes (its exact MIDI)."}
    BUILDER_CONFIGS = [synthetic_config(16000, 4.0, 1024, 64)]
    AUDIO_KEY = "audio"
    NOTES_KEY = "notes"
    DESCRIPTION = ("Procedural piano-like music: notes and chords with harmonic partials, attack/decay envelopes, "
                   "varying tempo and polyphony.")

    def _features(self) -> dict:
        return {"audio": _audio_feature(self.builder_config.sample_rate), "notes": _notes_feature(), "id": np.str_}

    def _generate_examples(self, split: str, count: int):
        c = self.builder_config
        seed = synthetic.split_seed(split)
        for i in range(count):
            wave, notes = synthetic.synthesize_clip_with_notes(seed, i, c.clip_seconds, c.sample_rate)
            yield f"{split}-{i:06d}", {"audio": to_int16(wave), "notes": notes, "id": f"{split}-{i:06d}"}


class SyntheticSounds(_Generated):
    """Ten kinds of everyday sound with labels and captions (see `sounds.py`); no download.
    The config's clip counts are per class."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "rain, wind, engine, siren, bell, footsteps, knocking, applause, dripping, thunder."}
    BUILDER_CONFIGS = [sounds_config(16000, 3.0, 640, 80)]
    AUDIO_KEY = "audio"
    LABEL_KEY = "label"
    TEXT_KEY = "caption"
    DESCRIPTION = "Procedural everyday sounds, a label and a caption per clip."
    SUPERVISED_KEYS = ("audio", "label")

    def _features(self) -> dict:
        return {"audio": _audio_feature(self.builder_config.sample_rate),
                "label": tfds.features.ClassLabel(names=sounds.CLASSES), "caption": tfds.features.Text(),
                "id": np.str_}

    def _generate_examples(self, split: str, per_class: int):
        c = self.builder_config
        seed = synthetic.split_seed(split)
        for i in range(per_class):
            for label in sounds.CLASSES:
                wave, caption = sounds.synthesize_sound(label, seed, i, c.clip_seconds, c.sample_rate)
                key = f"{split}-{label}-{i:05d}"
                yield key, {"audio": to_int16(wave), "label": label, "caption": caption, "id": key}


class SyntheticVoices(_Generated):
    """Sentences read by a formant synthesiser in eight voices, with transcripts and voice ids
    (see `voices.py`); held-out sentences in validation and test; no download."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Eight formant-synthesised voices reading 3-7 word sentences."}
    BUILDER_CONFIGS = [voices_config(16000, 800, 40)]
    AUDIO_KEY = "speech"
    TEXT_KEY = "text"
    SPEAKER_KEY = "speaker_id"
    DESCRIPTION = "Formant-synthesised speech: a sentence, its text and its voice per example."
    SUPERVISED_KEYS = ("speech", "text")

    def _features(self) -> dict:
        return {"speech": _audio_feature(self.builder_config.sample_rate), "text": tfds.features.Text(),
                "speaker_id": np.int64, "id": np.str_}

    def _generate_examples(self, split: str, count: int):
        c = self.builder_config
        for i, text in enumerate(voices.sentences(split, count)):
            voice = i % len(voices.VOICES)
            wave = voices.speak(text, voice, c.sample_rate, seed=voices.split_seed(split) * 100003 + i)
            key = f"{split}-{i:06d}"
            yield key, {"speech": to_int16(wave), "text": text, "speaker_id": voice, "id": key}


class LibrispeechAudio(_Parallel, _ConfigsByName, tfds_librispeech.Builder):
    """tfds's LibriSpeech builder, resampled to the config's rate, decoded with soundfile.

    `source_dir`: an extracted `LibriSpeech/` tree (or its parent) to read instead of
    downloading; only the splits present in it are prepared.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "tfds librispeech 2.1.1 features, any sample rate, local copies."}
    SUPPORTED_VERSIONS = []
    BUILDER_CONFIGS = [audio_config(16000)]
    AUDIO_KEY = "speech"
    TEXT_KEY = "text"
    SPEAKER_KEY = "speaker_id"

    def __init__(self, *, source_dir: Optional[str] = None, **kwargs):
        self._source_dir = source_dir
        super().__init__(**kwargs)

    @tfds_utils.classproperty
    @classmethod
    def _checksums_path(cls) -> epath.Path:
        """tfds's own LibriSpeech checksums: downloads are verified exactly as tfds verifies them."""
        return tfds_librispeech.Builder.code_path.parent / "checksums.tsv"

    def _info(self) -> tfds.core.DatasetInfo:
        sample_rate = self.builder_config.sample_rate
        return LocalDatasetInfo(
            builder=self, description="LibriSpeech read English speech (OpenSLR 12), mono int16.",
            features=tfds.features.FeaturesDict({
                "speech": _audio_feature(sample_rate), "text": tfds.features.Text(),
                "speaker_id": np.int64, "chapter_id": np.int64, "id": np.str_}),
            supervised_keys=("speech", "text"), homepage=tfds_librispeech._URL,
            metadata=_metadata(sample_rate))

    def _split_generators(self, dl_manager):
        if self._source_dir is not None:
            root = files.librispeech_root(self._source_dir)
            present = [s for s, folder in LIBRISPEECH_SPLITS.items() if os.path.isdir(os.path.join(root, folder))]
            if not present:
                raise files.DatasetError(files.librispeech_layout_message(self._source_dir))
            parents = {split: os.path.dirname(root) for split in present}
        else:
            parents = {split: os.fspath(p) for split, p in dl_manager.download_and_extract(tfds_librispeech._DL_URLS).items()}
        first = next(iter(parents.values()))
        for name in ("SPEAKERS.TXT", "CHAPTERS.TXT"):
            if not os.path.isfile(os.path.join(first, "LibriSpeech", name)):
                raise files.DatasetError(f"'{os.path.join(first, 'LibriSpeech')}': no {name} "
                                         f"({files.librispeech_layout_message(first)})")
        self._populate_metadata([epath.Path(first)])
        return {split: self._generate_examples(parent, split) for split, parent in parents.items()}

    def _generate_examples(self, directory: str, split: str):
        folder = os.path.join(directory, "LibriSpeech", LIBRISPEECH_SPLITS[split])
        to_examples = functools.partial(_librispeech_examples, sample_rate=self.builder_config.sample_rate)
        return self._examples(f"LibriSpeech {split}", _glob_transcripts(folder), to_examples)


def _glob_transcripts(folder: str) -> list[str]:
    """Every `<speaker>-<chapter>.trans.txt` below `folder`, sorted."""
    return sorted(os.path.join(d, f) for d, _, names in os.walk(folder) for f in names if f.endswith(".trans.txt"))


class MaestroV3(_Parallel, _ConfigsByName, tfds.core.GeneratorBasedBuilder):
    """MAESTRO v3.0.0 piano performances with their MIDI, chunked into ≤ `chunk_seconds`.

    `source_dir`: a local `maestro-v3.0.0/` folder (or its parent) instead of the download.
    """

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {"1.0.0": "Audio (mono, resampled), MIDI bytes, composer, title, year, duration.",
                     "2.0.0": "Each chunk's own notes (sustain applied, times from the chunk's start) "
                              "instead of the whole file's MIDI bytes; pieces whose MIDI is unreadable are skipped."}
    BUILDER_CONFIGS = [audio_config(16000)]
    AUDIO_KEY = "audio"
    NOTES_KEY = "notes"

    def __init__(self, *, source_dir: Optional[str] = None, **kwargs):
        self._source_dir = source_dir
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return LocalDatasetInfo(
            builder=self, description="MAESTRO v3: ~200 h of virtuosic piano with aligned MIDI (Hawthorne et al., 2019).",
            features=tfds.features.FeaturesDict({
                "audio": _audio_feature(self.builder_config.sample_rate),
                "notes": _notes_feature(),
                "composer": tfds.features.Text(), "title": tfds.features.Text(), "year": np.int32,
                "duration": tfds.features.Scalar(np.float32, doc="the whole performance, seconds"),
                "start_seconds": tfds.features.Scalar(np.float32, doc="where this chunk begins"),
                "id": np.str_}),
            homepage=MAESTRO_HOMEPAGE, metadata=_metadata(self.builder_config.sample_rate))

    def _split_generators(self, dl_manager):
        if self._source_dir is not None:
            base = files.maestro_root(self._source_dir)
        else:
            base = os.path.join(os.fspath(dl_manager.download_and_extract(MAESTRO_URL)), "maestro-v3.0.0")
        rows = files.maestro_rows(base)
        return {split: self._generate_examples(base, [r for r in rows if r["split"] == split])
                for split in sorted({r["split"] for r in rows})}

    def _generate_examples(self, base: str, rows: list[dict]):
        c = self.builder_config
        to_examples = functools.partial(_maestro_examples, base=base, sample_rate=c.sample_rate,
                                        chunk_seconds=c.chunk_seconds)
        return self._examples(f"MAESTRO {rows[0]['split'] if rows else ''}", rows, to_examples)


class _LabelledSounds(_Parallel, _ConfigsByName, tfds.core.GeneratorBasedBuilder):
    """A labelled sound collection read from a local copy in its official layout
    (`files.LABELLED_LAYOUTS`), splits by the dataset's own folds; the class names are read
    from the copy's metadata, so `source_dir` is needed for `info` too."""

    LAYOUT = ""
    AUDIO_KEY = "audio"
    LABEL_KEY = "label"
    BUILDER_CONFIGS = [audio_config(16000)]

    def __init__(self, *, source_dir: str, **kwargs):
        self._source_dir = os.path.abspath(source_dir)
        self._rows = files.labelled_rows(self._source_dir, self.LAYOUT)
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return LocalDatasetInfo(
            builder=self, description=f"{self.LAYOUT} from {self._source_dir}: labelled environmental sound.",
            features=tfds.features.FeaturesDict({
                "audio": _audio_feature(self.builder_config.sample_rate),
                "label": tfds.features.ClassLabel(names=files.label_names(self._rows)),
                "fold": np.int32, "id": np.str_}),
            supervised_keys=("audio", "label"), metadata=_metadata(self.builder_config.sample_rate))

    def _split_generators(self, dl_manager):
        folds = files.LABELLED_SPLIT_FOLDS[self.LAYOUT]
        return {split: self._generate_examples(split, [r for r in self._rows if r["fold"] in wanted])
                for split, wanted in folds.items()}

    def _generate_examples(self, split: str, rows: list[dict]):
        c = self.builder_config
        to_examples = functools.partial(_labelled_examples, source_dir=self._source_dir, sample_rate=c.sample_rate,
                                        chunk_seconds=c.chunk_seconds)
        return self._examples(f"{self.LAYOUT} {split}", rows, to_examples)


class Esc50(_LabelledSounds):
    """ESC-50 (Piczak 2015): 2000 five-second clips of 50 classes; folds 1-3 train, 4 validation, 5 test."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Mono int16 at the config's rate, labels from meta/esc50.csv."}
    LAYOUT = "esc50"


class UrbanSound8k(_LabelledSounds):
    """UrbanSound8K (Salamon et al. 2014): 8732 clips of 10 urban classes; folds 1-8 train, 9 validation, 10 test."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Mono int16 at the config's rate, labels from metadata/UrbanSound8K.csv."}
    LAYOUT = "urbansound8k"


class AudioFolder(_Parallel, _ConfigsByName, tfds.core.GeneratorBasedBuilder):
    """Every wav/flac/ogg/mp3 below `source_dir`, chunked; `validation` = ~5% by path hash.
    A file's label is the name of the top-level subfolder it lies in (`files.folder_label`).

    The folder is part of the config's name, so two folders prepare into two datasets.
    """

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "Mono int16 chunks of the user's audio, hashed validation split.",
                     "1.1.0": "A label per file: its top-level subfolder's name."}
    BUILDER_CONFIGS = [audio_config(16000)]
    AUDIO_KEY = "audio"
    LABEL_KEY = "label"

    def __init__(self, *, source_dir: str, **kwargs):
        self._source_dir = os.path.abspath(source_dir)
        if "config" in kwargs and isinstance(kwargs["config"], AudioBuilderConfig):
            kwargs["config"] = folder_config(self._source_dir, kwargs["config"])
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return LocalDatasetInfo(
            builder=self, description=f"Audio files below {self._source_dir}.",
            features=tfds.features.FeaturesDict({
                "audio": _audio_feature(self.builder_config.sample_rate), "path": np.str_,
                "label": tfds.features.ClassLabel(names=files.folder_labels(self._source_dir)),
                "start_seconds": tfds.features.Scalar(np.float32), "id": np.str_}),
            metadata=_metadata(self.builder_config.sample_rate))

    def _split_generators(self, dl_manager):
        """Decodes every file once first (the user's audio may hold anything), so the hashed
        validation split is drawn from usable files only."""
        paths = files.folder_paths(self._source_dir)
        counter = _SkipCounter(f"folder '{self._source_dir}'")
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            decodable = list(pool.map(lambda p: counter.decode(p, self.builder_config.sample_rate) is not None, paths))
        counter.report()
        usable = [p for p, ok in zip(paths, decodable) if ok]
        if not usable:
            raise files.DatasetError(f"data.dir '{self._source_dir}': none of its {len(paths)} audio files "
                                     "could be read (see the warnings)")
        return {split: self._generate_examples(files.split_paths_by_hash(usable, self._source_dir, split), split)
                for split in ("train", "validation")}

    def _generate_examples(self, paths: list[str], split: str):
        c = self.builder_config
        to_examples = functools.partial(_folder_examples, source_dir=self._source_dir, sample_rate=c.sample_rate,
                                        chunk_seconds=c.chunk_seconds)
        return self._examples(f"folder {split}", paths, to_examples)


def folder_config(source_dir: str, base: AudioBuilderConfig) -> AudioBuilderConfig:
    """`base` renamed after the folder (its name and a hash of its absolute path)."""
    digest = hashlib.sha1(os.path.abspath(source_dir).encode()).hexdigest()[:10]
    return dataclasses.replace(base, name=f"{_slug(os.path.basename(source_dir))}_{digest}_{base.name}")
