"""Audio datasets on disk, read as random crops without decoding whole files.

Hours of audio do not fit in memory, so a file-backed dataset keeps only an index (path,
length in samples, native rate) and reads each training crop with a seek
(`soundfile.read(start=..., frames=...)`), resamples it to `AudioConfig.sample_rate`,
and computes log-mels for the whole batch in one JAX call. The crop of batch row i at step s
depends only on (seed, s, i), so resuming replays the same batches.

Layouts, as the datasets ship them:
- LibriSpeech: `LibriSpeech/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac` with
  `<speaker>-<chapter>.trans.txt`; split folders such as `train-clean-100` are named as tfds
  names them (`train_clean100`, `dev_clean`, `test_clean`, ...).
- MAESTRO v3: `maestro-v3.0.0/maestro-v3.0.0.csv` (columns include `split` and
  `audio_filename`) and `<year>/*.wav`; splits `train`, `validation`, `test`.
- folder: any wav/flac/ogg/mp3 below a directory; 5% by path hash form `validation`.

Unreadable, empty or non-finite files are skipped with a warning naming each (when indexed,
or when a crop read fails later), never a crash hours into training.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import jax
import numpy as np
import soundfile as sf

from audiolm_jax import audio
from audiolm_jax.config import LIBRISPEECH_SPLITS, AudioConfig
from audiolm_jax.data.pipeline import NormStats

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


class DatasetError(ValueError):
    """A dataset directory is missing, laid out wrongly or holds no usable audio."""
MAESTRO_CSV = "maestro-v3.0.0.csv"


@dataclasses.dataclass(frozen=True)
class AudioFile:
    """One indexed file: its path, length in samples at its native rate, and that rate (Hz)."""

    path: str
    num_samples: int
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.num_samples / self.sample_rate


# ---------------------------------------------------------------------------------------
# Listing the files of a split


def librispeech_paths(root: str, split: str) -> list[str]:
    """The flac files of a LibriSpeech split under `root` (the `LibriSpeech/` folder or its parent)."""
    if split not in LIBRISPEECH_SPLITS:
        raise DatasetError(f"LibriSpeech split {split!r}: expected one of {sorted(LIBRISPEECH_SPLITS)}")
    base = os.path.join(root, "LibriSpeech") if os.path.isdir(os.path.join(root, "LibriSpeech")) else root
    folder = os.path.join(base, LIBRISPEECH_SPLITS[split])
    if not os.path.isdir(folder):
        raise DatasetError(
            f"data.dir '{root}': expected an extracted LibriSpeech tree with "
            f"LibriSpeech/{LIBRISPEECH_SPLITS[split]}/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac "
            f"for split '{split}' (the OpenSLR resource 12 archives, e.g. {LIBRISPEECH_SPLITS[split]}.tar.gz)")
    paths = sorted(os.path.join(d, f) for d, _, names in os.walk(folder) for f in names if f.endswith(".flac"))
    if not paths:
        raise DatasetError(f"data.dir '{root}': no .flac files under '{folder}'")
    return paths


def maestro_paths(root: str, split: str) -> list[str]:
    """The wav files of a MAESTRO v3 split, from the csv's `split` and `audio_filename` columns."""
    base = os.path.join(root, "maestro-v3.0.0") if os.path.isdir(os.path.join(root, "maestro-v3.0.0")) else root
    table = os.path.join(base, MAESTRO_CSV)
    if not os.path.isfile(table):
        raise DatasetError(
            f"data.dir '{root}': expected the MAESTRO v3 folder (maestro-v3.0.0/{MAESTRO_CSV} with "
            "<year>/*.wav and *.midi beside it, from the maestro-v3.0.0.zip archive)")
    with open(table, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"split", "audio_filename"} <= set(rows[0]):
        raise DatasetError(f"'{table}': expected columns 'split' and 'audio_filename', got {sorted(rows[0])}")
    splits = sorted({r["split"] for r in rows})
    if split not in splits:
        raise DatasetError(f"MAESTRO split {split!r}: '{table}' has splits {splits}")
    return [os.path.join(base, r["audio_filename"]) for r in rows if r["split"] == split]


def folder_paths(root: str) -> list[str]:
    """Every wav/flac/ogg/mp3 below `root`, recursively, sorted."""
    if not os.path.isdir(root):
        raise DatasetError(f"data.dir '{root}': not a directory (expected a folder of "
                           f"{'/'.join(AUDIO_EXTENSIONS)} files for source 'folder')")
    paths = sorted(os.path.join(d, f) for d, _, names in os.walk(root) for f in names
                   if f.lower().endswith(AUDIO_EXTENSIONS))
    if not paths:
        raise DatasetError(f"data.dir '{root}': no {'/'.join(AUDIO_EXTENSIONS)} files found")
    return paths


def split_by_path_hash(files: list[AudioFile], root: str, split: str) -> list[AudioFile]:
    """'validation': the ~5% of files whose path relative to `root` hashes low (at least one
    file, the same on every machine); 'train': the rest."""
    digests = {f.path: hashlib.sha1(os.path.relpath(f.path, root).encode()).digest() for f in files}
    validation = {f.path for f in files if digests[f.path][0] < 13}
    if not validation and len(files) > 1:
        validation = {min(digests, key=digests.__getitem__)}
    return [f for f in files if (f.path in validation) == (split == "validation")]


def index_files(paths: Sequence[str], verify: bool = False) -> list[AudioFile]:
    """Reads each file's header; skips (with a warning naming it) what cannot be used.

    With `verify`, also decodes every file once and skips truncated or non-finite ones
    (for folders of the user's own audio; the official datasets are checked by header only).
    """
    files, skipped = [], []
    for path in paths:
        try:
            info = sf.info(path)
            if info.frames <= 0:
                raise ValueError("zero-length audio")
            if verify:  # decodes the whole file: zero-length, corrupt, non-finite all raise
                audio.load(path, int(info.samplerate))
            files.append(AudioFile(path, int(info.frames), int(info.samplerate)))
        except Exception as e:  # libsndfile raises several types for unreadable files
            log.warning("skipping '%s': %s", path, e)
            skipped.append(path)
    if skipped:
        log.warning("skipped %d unreadable audio file(s) of %d: %s", len(skipped), len(paths), ", ".join(skipped))
    return files


# ---------------------------------------------------------------------------------------
# Reading crops


def read_crop(file: AudioFile, start_seconds: float, seconds: float, sample_rate: int) -> np.ndarray:
    """Mono float32 `[≤ seconds * sample_rate]` from `start_seconds`; ValueError names the file."""
    start = int(start_seconds * file.sample_rate)
    count = int(np.ceil(seconds * file.sample_rate))
    try:
        data, _ = sf.read(file.path, start=start, frames=count, dtype="float32", always_2d=True)
    except Exception as e:
        raise ValueError(f"'{file.path}': unreadable or corrupt audio ({e})") from None
    wave = audio.to_mono(data, file.sample_rate, sample_rate, file.path)
    return wave[: int(round(seconds * sample_rate))]


@dataclasses.dataclass
class FileData:
    """A file-backed dataset: train/eval file indexes, the audio settings and the stats.

    Provides the same `train_batch`/`eval_batches` as the in-memory `PreparedData`.
    """

    train_files: list[AudioFile]
    eval_files: list[AudioFile]
    audio: AudioConfig
    segment_seconds: float
    stats: NormStats | None = None
    workers: int = 4

    def __post_init__(self):
        if not self.train_files:
            raise DatasetError("no readable training audio (every file was skipped; see the warnings)")
        if not self.eval_files:
            raise DatasetError("no readable evaluation audio (every file was skipped; see the warnings)")
        self._pool = ThreadPoolExecutor(max_workers=self.workers)
        self._log_mel = jax.jit(audio.log_mel_jax, static_argnums=(1,))
        weights = np.array([f.seconds for f in self.train_files], np.float64)
        self._weights = weights / weights.sum()

    @property
    def eval_waveforms(self) -> list[np.ndarray]:
        """The first seconds of a few evaluation files, as prompts for sampling."""
        return [self._read(f, 0.0) for f in self.eval_files[:8]]

    def _read(self, file: AudioFile, start: float) -> np.ndarray:
        return read_crop(file, start, self.segment_seconds, self.audio.sample_rate)

    def _read_or_substitute(self, files: list[AudioFile], index: int, start_fraction: float) -> np.ndarray:
        """Reads a crop; a file that fails is skipped (warned) for the next one, in order."""
        for attempt in range(len(files)):
            file = files[(index + attempt) % len(files)]
            start = start_fraction * max(file.seconds - self.segment_seconds, 0.0)
            try:
                return self._read(file, start)
            except ValueError as e:
                log.warning("skipping %s", e)
        raise DatasetError("every audio file failed to read (see the warnings)")

    def _batch(self, crops: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Crops → normalised log-mel `[B, T, M]` and frame mask `[B, T]` (padding masked)."""
        target = int(round(self.segment_seconds * self.audio.sample_rate))
        waves = np.zeros((len(crops), target), np.float32)
        for row, crop in enumerate(crops):
            waves[row, : len(crop)] = crop
        mel = np.asarray(self._log_mel(waves, self.audio))
        frames = mel.shape[1]
        valid = np.array([min(1 + len(c) // self.audio.hop_length, frames) if len(c) else 0 for c in crops])
        mask = (np.arange(frames)[None, :] < valid[:, None]).astype(np.float32)
        if self.stats is not None:
            mel = self.stats.normalise(mel) * mask[..., None]
        return {"mel": mel.astype(np.float32), "mask": mask}

    def train_batch(self, step: int, seed: int, batch_size: int, length: int,
                    process_index: int = 0, process_count: int = 1) -> dict[str, np.ndarray]:
        """This process's rows of the global batch of `step` (see `pipeline.train_batch`)."""
        rng = np.random.default_rng([seed, step])
        ids = rng.choice(len(self.train_files), size=batch_size, p=self._weights)
        fractions = rng.random(batch_size)
        rows = range(process_index * (batch_size // process_count), (process_index + 1) * (batch_size // process_count))
        crops = list(self._pool.map(lambda r: self._read_or_substitute(self.train_files, int(ids[r]), fractions[r]), rows))
        batch = self._batch(crops)
        return {k: v[:, :length] for k, v in batch.items()}

    def eval_batches(self, batch_size: int, length: int, num_batches: int) -> list[dict[str, np.ndarray]]:
        """Deterministic evaluation batches: each evaluation file's first segment, in order."""
        count = min(len(self.eval_files), batch_size * num_batches)
        crops = list(self._pool.map(lambda i: self._read_or_substitute(self.eval_files, i, 0.0), range(count)))
        while len(crops) % batch_size:
            crops.append(np.zeros(0, np.float32))
        batches = [self._batch(crops[i : i + batch_size]) for i in range(0, len(crops), batch_size)]
        return [{k: v[:, :length] for k, v in b.items()} for b in batches]

    def sample_log_mels(self, count: int, seed: int) -> list[np.ndarray]:
        """Log-mels in dB `[frames, n_mels]` of `count` random training crops (for statistics)."""
        stats, self.stats = self.stats, None
        try:
            batch = self.train_batch(10**9 + seed, seed, count, 10**9)
        finally:
            self.stats = stats
        return [m[mask > 0] for m, mask in zip(batch["mel"], batch["mask"])]
