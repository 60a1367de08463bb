"""Data sources on small real audio files written here in the official layouts."""

import csv
import json
import logging
import os

import numpy as np
import pytest
import soundfile as sf

from audiolm_jax import config as C, train
from audiolm_jax.data import FileData, PreparedData, prepare
from audiolm_jax.data.files import DatasetError
from tests.helpers import tiny_config
from tests.signals import piano_like, speech_like


def write_librispeech(root, splits=("train-clean-100", "dev-clean")):
    base = root / "LibriSpeech"
    for s, split in enumerate(splits):
        for speaker in (19 + s * 100, 26 + s * 100):
            chapter = 198
            folder = base / split / str(speaker) / str(chapter)
            folder.mkdir(parents=True)
            lines = []
            for utt in range(3):
                name = f"{speaker}-{chapter}-{utt:04d}"
                sf.write(folder / f"{name}.flac", speech_like(0.6 + 0.2 * utt, 16000, seed=speaker + utt), 16000)
                lines.append(f"{name} HELLO WORLD NUMBER {utt}")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    (base / "SPEAKERS.TXT").write_text(";ID|SEX|SUBSET|MINUTES|NAME\n19 | F | train-clean-100 | 25.19 | Kara\n")
    (base / "CHAPTERS.TXT").write_text(";ID|READER|MINUTES|SUBSET|PROJ.|BOOK ID|CH. TITLE|PROJECT TITLE\n")
    return root


def write_maestro(root):
    base = root / "maestro-v3.0.0"
    (base / "2018").mkdir(parents=True)
    rows = []
    for i, split in enumerate(["train", "train", "train", "validation", "test"]):
        stem = f"2018/MIDI-Unprocessed_{i:02d}_R1_2018_wav--{i}"
        wave = piano_like(1.5, 44100, seed=i)
        sf.write(base / f"{stem}.wav", np.stack([wave, 0.8 * wave], axis=1), 44100)
        (base / f"{stem}.midi").write_bytes(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0")
        rows.append({"canonical_composer": "Frédéric Chopin", "canonical_title": f"Étude {i}", "split": split,
                     "year": 2018, "midi_filename": f"{stem}.midi", "audio_filename": f"{stem}.wav",
                     "duration": 1.5})
    with open(base / "maestro-v3.0.0.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (base / "maestro-v3.0.0.json").write_text(json.dumps({k: {str(i): r[k] for i, r in enumerate(rows)} for k in rows[0]}))
    return root


def file_config(tmp_path, source, data_dir, **data):
    fields = {"source": source, "dir": str(data_dir), "segment_seconds": 0.5, "stats_clips": 8, **data}
    return tiny_config(str(tmp_path / "run"), data=fields, train={"steps": 3, "checkpoint_every": 3,
                                                                   "eval_every": 3})


def test_librispeech_local_copy(tmp_path):
    root = write_librispeech(tmp_path / "ls")
    cfg = file_config(tmp_path, "librispeech", root, train_split="train_clean100", eval_split="dev_clean")
    data = prepare(cfg)
    assert isinstance(data, FileData)
    assert len(data.train_files) == 6 and len(data.eval_files) == 6
    assert all("train-clean-100" in f.path for f in data.train_files)
    assert {f.sample_rate for f in data.train_files} == {16000}
    batch = data.train_batch(0, seed=0, batch_size=4, length=32)
    assert batch["mel"].shape == (4, 32, 16) and batch["mask"].shape == (4, 32)
    assert np.all(np.isfinite(batch["mel"]))
    again = data.train_batch(0, seed=0, batch_size=4, length=32)
    np.testing.assert_array_equal(batch["mel"], again["mel"])  # a pure function of (seed, step)
    other = data.train_batch(1, seed=0, batch_size=4, length=32)
    assert not np.allclose(batch["mel"], other["mel"])
    result = train.train(cfg, data)
    assert np.isfinite(result.eval_metrics["mse"])


def test_maestro_local_copy_resamples_and_splits(tmp_path):
    root = write_maestro(tmp_path / "m")
    cfg = file_config(tmp_path, "maestro", root / "maestro-v3.0.0")
    data = prepare(cfg)
    assert [os.path.basename(f.path)[:22] for f in data.train_files] == [
        f"MIDI-Unprocessed_{i:02d}_R1" for i in range(3)]
    assert len(data.eval_files) == 1 and {f.sample_rate for f in data.train_files} == {44100}
    crop = data._read(data.train_files[0], 0.0)
    assert len(crop) == 4000  # 0.5 s at the config's 8 kHz, mixed to mono
    evals = data.eval_batches(batch_size=2, length=32, num_batches=1)
    assert len(evals) == 1 and evals[0]["mask"][0].sum() == 32 and evals[0]["mask"][1].sum() == 0
    prompts = data.eval_waveforms
    assert len(prompts) == 1 and len(prompts[0]) == 4000


def test_missing_or_wrong_layout_fails_at_once_naming_what_was_expected(tmp_path):
    with pytest.raises(DatasetError, match=r"LibriSpeech/train-clean-100/<speaker>"):
        prepare(file_config(tmp_path, "librispeech", tmp_path, train_split="train_clean100", eval_split="dev_clean"))
    with pytest.raises(DatasetError, match="maestro-v3.0.0.csv"):
        prepare(file_config(tmp_path, "maestro", tmp_path))
    with pytest.raises(DatasetError, match="not a directory"):
        prepare(file_config(tmp_path, "folder", tmp_path / "nope"))
    with pytest.raises(C.ConfigError, match="data.dir"):
        tiny_config(str(tmp_path), data={"source": "maestro"})
    with pytest.raises(C.ConfigError, match="data.train_split.*train_clean100"):
        tiny_config(str(tmp_path), data={"source": "librispeech", "dir": "/x", "train_split": "train"})


def test_salted_folder_skips_bad_files_by_name_and_trains(tmp_path, caplog):
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    for i in range(12):
        sf.write(folder / ("sub" if i % 2 else "") / f"good{i}.wav", piano_like(0.8, 8000, seed=i), 8000)
    (folder / "zero.wav").write_bytes(b"")
    flac = folder / "truncated.flac"
    sf.write(flac, speech_like(1.0, 8000), 8000)
    flac.write_bytes(flac.read_bytes()[:300])
    (folder / "text.wav").write_text("definitely not a RIFF file")
    sf.write(folder / "nan.wav", np.full(4000, np.nan, np.float32), 8000, subtype="FLOAT")
    cfg = file_config(tmp_path, "folder", folder)
    with caplog.at_level(logging.WARNING):
        data = prepare(cfg)
        result = train.train(cfg, data)
    assert np.isfinite(result.eval_metrics["mse"])
    summaries = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    skipped = {os.path.basename(p) for s in summaries for p in s.split(": ", 1)[1].split(", ")}
    assert skipped == {"zero.wav", "truncated.flac", "text.wav", "nan.wav"}
    assert sum(int(s.split()[1]) for s in summaries) == 4
    paths = [f.path for f in data.train_files + data.eval_files]
    assert len(paths) == 12 and len(set(paths)) == 12


@pytest.mark.parametrize("source", ["synthetic", "folder"])
def test_two_processes_read_disjoint_rows_that_cover_the_global_batch(tmp_path, source):
    if source == "synthetic":
        data = prepare(tiny_config(str(tmp_path)))
    else:
        folder = tmp_path / "f"
        folder.mkdir()
        for i in range(6):
            sf.write(folder / f"{i}.wav", piano_like(1.0, 8000, seed=i), 8000)
        data = prepare(file_config(tmp_path, "folder", folder))
    whole = data.train_batch(5, seed=0, batch_size=8, length=32)
    parts = [data.train_batch(5, seed=0, batch_size=8, length=32, process_index=p, process_count=2) for p in (0, 1)]
    assert all(p["mel"].shape[0] == 4 for p in parts)
    np.testing.assert_array_equal(np.concatenate([p["mel"] for p in parts]), whole["mel"])
    assert not np.array_equal(parts[0]["mel"], parts[1]["mel"])


def test_short_clips_are_padded_and_masked_not_dropped(tmp_path):
    folder = tmp_path / "short"
    folder.mkdir()
    for i in range(4):
        sf.write(folder / f"{i}.wav", piano_like(0.2, 8000, seed=i), 8000)  # shorter than the 0.5 s segment
    data = prepare(file_config(tmp_path, "folder", folder))
    batch = data.train_batch(0, seed=0, batch_size=4, length=32)
    valid = batch["mask"].sum(axis=1)
    assert np.all(valid == 1 + 1600 // 128) and np.all(batch["mel"][:, 20:] == 0)
