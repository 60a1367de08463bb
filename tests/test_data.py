"""Data sources through their tfds builders, on small real audio files written here in the
official layouts."""

import logging
import os

import numpy as np
import pytest
import soundfile as sf

from audiolm_jax import config as C, train
from audiolm_jax.data import Dataset, batch_examples, build, clip_log_mels, prepare
from audiolm_jax.data.files import DatasetError
from audiolm_jax.data.pipeline import crop_start, process_rows
from tests.helpers import mel_dataset, random_walk_mels, tiny_config
from tests.layouts import write_librispeech, write_maestro
from tests.signals import piano_like, speech_like

def file_config(tmp_path, source, data_dir, **data):
    fields = {"source": source, "dir": str(data_dir), "segment_seconds": 0.5, "stats_clips": 8, **data}
    return tiny_config(str(tmp_path / "run"), data=fields, train={"steps": 3, "checkpoint_every": 3,
                                                                   "eval_every": 3})


def test_librispeech_local_copy(tmp_path):
    root = write_librispeech(tmp_path / "ls")
    cfg = file_config(tmp_path, "librispeech", root, train_split="train_clean100", eval_split="dev_clean")
    data = prepare(cfg)
    assert isinstance(data, Dataset) and data.cache == "none" and len(data.train) == 6 and len(data.eval) == 6
    builder = build(cfg)
    assert builder.info.metadata["sample_rate"] == 8000  # resampled from 16 kHz at preparation
    assert builder.info.metadata["speakers"]["19"]["name"] == "Kara"  # SPEAKERS.TXT, via tfds
    examples = {e["id"].decode(): e for e in (data.train[i] for i in range(6))}
    assert set(examples) == {f"{s}-198-{u:04d}" for s in (19, 26) for u in range(3)}
    first = examples["19-198-0001"]
    assert first["text"] == b"HELLO WORLD NUMBER 1" and first["speaker_id"] == 19 and first["chapter_id"] == 198
    assert len(first["speech"]) == 6400 and first["speech"].dtype == np.int16  # 0.8 s at 8 kHz
    batch = data.train_batch(0, seed=0, batch_size=4, length=32)
    assert batch["mel"].shape == (4, 32, 16) and batch["mask"].shape == (4, 32)
    assert np.all(np.isfinite(batch["mel"]))
    again = data.train_batch(0, seed=0, batch_size=4, length=32)
    np.testing.assert_array_equal(batch["mel"], again["mel"])  # a pure function of (seed, step)
    other = data.train_batch(1, seed=0, batch_size=4, length=32)
    assert not np.allclose(batch["mel"], other["mel"])
    result = train.train(cfg, data)
    assert np.isfinite(result.eval_metrics["mse"])


def test_maestro_local_copy_resamples_chunks_and_splits(tmp_path):
    root = write_maestro(tmp_path / "m")
    cfg = file_config(tmp_path, "maestro", root / "maestro-v3.0.0", chunk_seconds=1)
    data = prepare(cfg)
    builder = build(cfg)
    assert {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")} == {
        "train": 6, "validation": 2, "test": 2}  # 1.5 s pieces in chunks of 1 s + 0.5 s
    examples = [data.train[i] for i in range(len(data.train))]
    by_id = {e["id"].decode(): e for e in examples}
    assert sorted(by_id) == [f"MIDI-Unprocessed_{i:02d}_R1_2018_wav--{i}/{c:04d}" for i in range(3) for c in (0, 1)]
    head, tail = by_id["MIDI-Unprocessed_01_R1_2018_wav--1/0000"], by_id["MIDI-Unprocessed_01_R1_2018_wav--1/0001"]
    assert len(head["audio"]) == 8000 and len(tail["audio"]) == 4000  # mono at the config's 8 kHz
    assert head["start_seconds"] == 0.0 and tail["start_seconds"] == 1.0 and head["duration"] == 1.5
    assert head["composer"] == "Frédéric Chopin".encode() and head["title"] == "Étude 1".encode()
    assert head["year"] == 2018
    # each chunk's own notes, times from the chunk's start: the note held across the cut is in both
    np.testing.assert_allclose(head["notes"], [[0.2, 1.3, 61, 90]], atol=2e-3)
    np.testing.assert_allclose(tail["notes"], [[-0.8, 0.3, 61, 90], [0.1, 0.4, 64, 70]], atol=2e-3)
    expected = piano_like(1.5, 44100, seed=1)  # the left channel; right is 0.8× it
    import librosa
    reference = librosa.resample(0.9 * expected, orig_sr=44100, target_sr=8000, res_type="soxr_hq")
    np.testing.assert_allclose(np.concatenate([head["audio"], tail["audio"]]) / 32767, reference, atol=2e-4)
    evals = data.eval_batches(batch_size=4, length=32, num_examples=4)
    # the piece's last 0.5 s chunk: its last whole-window frame is frame 30 (frame 31 would reach past its end)
    assert len(evals) == 1 and evals[0]["mask"][0].sum() == 31 and evals[0]["mask"][2].sum() == 0
    assert [len(w) for w in data.eval_waveforms(8)] == [4000, 4000]  # 0.5 s segments at 8 kHz
    assert sorted(len(w) for w in data.eval_waveforms(8, seconds=0.75)) == [4000, 6000]  # 0.75 s of the 1 s chunk
    assert [len(w) for w in data.eval_waveforms(1, seconds=0.1)] == [4000]  # never less than a segment


def test_synthetic_builder_is_the_generator_deterministically(tmp_path):
    cfg = tiny_config(str(tmp_path / "run"))
    builder = build(cfg)
    assert {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")} == {
        "train": 8, "validation": 2, "test": 2}
    source = builder.as_data_source("train")
    clip = {source[i]["id"].decode(): source[i]["audio"] for i in range(8)}["train-000003"]
    from audiolm_jax.data import synthetic
    np.testing.assert_allclose(clip / 32767, synthetic.synthesize_clip(0, 3, 1.0, 8000), atol=2e-5)
    data = prepare(cfg)
    assert data.cache == "log_mel"  # the embedded set, read plainly: whole log-mels kept, crops cut in frames
    # a training row is its clip's whole log-mel (63 frames of 1 s; the last, on the padding
    # past the end, dropped), normalised, cropped in frames
    order = [int(data.train[i]["id"].decode().split("-")[1]) for i in range(8)]  # tfds shuffles the clips
    whole = clip_log_mels([synthetic.synthesize_clip(0, i, 1.0, 8000) for i in order], cfg.audio)
    assert [m.shape for m in whole] == [(63, 16)] * 8
    whole = [m[:62] for m in whole]
    batch = data.train_batch(2, seed=0, batch_size=4, length=32)
    indices, fractions = batch_examples(2, 0, 4, 8)
    for row, (index, fraction) in enumerate(zip(indices, fractions)):
        start = crop_start(62, 32, fraction)
        np.testing.assert_allclose(batch["mel"][row], data.stats.normalise(whole[index][start : start + 32]), atol=0.02)  # int16 storage
    assert np.all(batch["mask"] == 1)


def test_the_audio_cache_reads_the_same_batches_as_the_records(tmp_path):
    """`data.cache` changes what is kept in memory, not what is read: audio and none give the
    same batches, bit for bit. log_mel cuts its crops from whole-clip log-mels on the frame
    grid (the test above), so its values differ (a crop's own dB floor, placement in
    samples), not its shapes or masks."""
    batches = {}
    for mode in ("none", "audio", "log_mel"):
        cfg = tiny_config(str(tmp_path / mode), data={"cache": mode})
        data = prepare(cfg, stats=prepare(tiny_config(str(tmp_path / "stats"), data={"cache": "none"})).stats)
        assert data.cache == mode
        batches[mode] = (data.train_batch(3, seed=0, batch_size=4, length=32), data.eval_batches(2, 32, 2)[0])
    for none, audio in zip(batches["none"], batches["audio"]):
        np.testing.assert_array_equal(none["mel"], audio["mel"])
    for none, cached in zip(batches["none"], batches["log_mel"]):
        assert none["mel"].shape == cached["mel"].shape
        np.testing.assert_array_equal(none["mask"], cached["mask"])
    with pytest.raises(C.ConfigError, match="data.cache"):
        tiny_config(str(tmp_path), data={"cache": "log_mel", "augment_gain_db": 3.0})
    with pytest.raises(ValueError, match="from_log_mels.*utterance"):  # whole utterances need audio lengths
        mel_dataset(*random_walk_mels(), C.DataConfig(crop="utterance"))


def test_missing_or_wrong_layout_fails_at_once_naming_what_was_expected(tmp_path):
    with pytest.raises(DatasetError, match=r"LibriSpeech/train-clean-100/<speaker>.*SPEAKERS.TXT"):
        prepare(file_config(tmp_path, "librispeech", tmp_path, train_split="train_clean100", eval_split="dev_clean"))
    root = write_librispeech(tmp_path / "ls", splits=("train-clean-100",))
    with pytest.raises(DatasetError, match=r"LibriSpeech/dev-clean/.*dev-clean.tar.gz"):
        prepare(file_config(tmp_path, "librispeech", root, train_split="train_clean100", eval_split="dev_clean"))
    with pytest.raises(DatasetError, match="maestro-v3.0.0.csv"):
        prepare(file_config(tmp_path, "maestro", tmp_path))
    with pytest.raises(DatasetError, match="not a directory"):
        prepare(file_config(tmp_path, "folder", tmp_path / "nope"))
    with pytest.raises(C.ConfigError, match="data.dir.*data.download=true"):
        tiny_config(str(tmp_path), data={"source": "maestro"})
    with pytest.raises(C.ConfigError, match="data.train_split.*train_clean100"):
        tiny_config(str(tmp_path), data={"source": "librispeech", "dir": "/x", "train_split": "train"})
    with pytest.raises(C.ConfigError, match="data.download.*only librispeech and maestro"):
        tiny_config(str(tmp_path), data={"source": "folder", "dir": "/x", "download": True})
    assert not os.path.exists(tmp_path / "run" / "tfds" / "maestro_v3")  # nothing prepared on a bad layout


def salted_folder(folder):
    """12 good wavs (half in a subfolder) and 4 bad files: empty, truncated, text, NaN."""
    (folder / "sub").mkdir(parents=True)
    for i in range(12):
        sf.write(folder / ("sub" if i % 2 else "") / f"good{i}.wav", piano_like(0.8, 8000, seed=i), 8000)
    (folder / "zero.wav").write_bytes(b"")
    flac = folder / "truncated.flac"
    sf.write(flac, speech_like(1.0, 8000), 8000)
    flac.write_bytes(flac.read_bytes()[:300])
    (folder / "text.wav").write_text("definitely not a RIFF file")
    sf.write(folder / "nan.wav", np.full(4000, np.nan, np.float32), 8000, subtype="FLOAT")
    return folder


def test_salted_folder_skips_bad_files_by_name_and_trains(tmp_path, caplog):
    folder = salted_folder(tmp_path / "mine")
    cfg = file_config(tmp_path, "folder", folder)
    with caplog.at_level(logging.WARNING):
        data = prepare(cfg)
        result = train.train(cfg, data)
    assert np.isfinite(result.eval_metrics["mse"])
    summaries = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    skipped = {os.path.basename(p) for s in summaries for p in s.split(": ", 2)[2].split(", ")}
    assert skipped == {"zero.wav", "truncated.flac", "text.wav", "nan.wav"}
    assert sum(int(s.split("skipped ")[1].split()[0]) for s in summaries) == 4
    paths = [source[i]["path"].decode() for source in (data.train, data.eval) for i in range(len(source))]
    assert len(paths) == 12 and len(set(paths)) == 12


def test_two_processes_read_disjoint_examples_that_cover_the_split():
    num_examples, batch_size = 12, 4
    reads = {0: [], 1: []}
    for step in range(3):  # one epoch: 3 steps × 4 rows
        indices, _ = batch_examples(step, 0, batch_size, num_examples)
        for p in (0, 1):
            reads[p] += [int(indices[r]) for r in process_rows(batch_size, p, 2)]
    assert not set(reads[0]) & set(reads[1])
    assert sorted(reads[0] + reads[1]) == list(range(num_examples))
    next_epoch, _ = batch_examples(3, 0, batch_size, num_examples)
    assert list(next_epoch) != list(batch_examples(0, 0, batch_size, num_examples)[0])  # reshuffled


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


def test_batch_frames_are_whole_window_frames_and_a_recordings_end_is_its_last_whole_frame(tmp_path):
    """Every real frame of a batch is computed on audio only. A crop inside a recording read
    its last frames over the zero padding after the cut (dB low: an edge, not a sound, and a
    training target at every crop's end); a crop that reaches the recording's end counted
    those edge frames as real, so the end-of-audio gate learned the edge, which free-running
    decoding never makes (a speech model's gate never fired)."""
    from audiolm_jax.audio import log_mel_jax, whole_window_frames
    from audiolm_jax.data.builders import to_float

    cfg = tiny_config(str(tmp_path), audio={"top_db": None})  # no per-clip floor: crop and recording comparable
    a = cfg.audio
    long, short = piano_like(1.5, 8000, seed=1), piano_like(0.3, 8000, seed=2)
    as_int16 = lambda x: {"audio": np.round(x / np.max(np.abs(x)) * 20000).astype(np.int16)}
    data = Dataset([as_int16(long), as_int16(short)], [as_int16(long), as_int16(short)], "audio", a, cfg.data,
                   cache="audio")
    frames = a.seconds_to_frames(cfg.data.segment_seconds)  # 32
    batch = data.eval_batches(2, frames, 2)[0]
    full_db = lambda x: data.stats.normalise(np.asarray(log_mel_jax(to_float(as_int16(x)["audio"])[None], a))[0])
    inside, ending = batch["mel"][0], batch["mel"][1]
    assert batch["mask"][0].sum() == frames  # inside the recording: every frame whole
    np.testing.assert_allclose(inside, full_db(long)[:frames], atol=2e-3)  # the last ones too
    whole = whole_window_frames(len(short), a)
    assert whole < 1 + len(short) // a.hop_length
    np.testing.assert_array_equal(batch["mask"][1], np.arange(frames) < whole)  # masked after the last whole frame
    np.testing.assert_allclose(ending[:whole], full_db(short)[:whole], atol=2e-3)
    counted, ended, _ = train.gate_labels(batch["mask"], 1, 5.0)
    assert ended[1, whole - 1] == 1 and ended[0].sum() == 0  # 'ended' after the last whole frame


def test_short_clips_are_padded_and_masked_not_dropped(tmp_path):
    folder = tmp_path / "short"
    folder.mkdir()
    for i in range(4):
        sf.write(folder / f"{i}.wav", piano_like(0.2, 8000, seed=i), 8000)  # shorter than the 0.5 s segment
    data = prepare(file_config(tmp_path, "folder", folder))
    batch = data.train_batch(0, seed=0, batch_size=4, length=32)
    valid = batch["mask"].sum(axis=1)
    assert np.all(valid == (1600 - 128) // 128 + 1) and np.all(batch["mel"][:, 20:] == 0)  # whole-window frames


def test_prepare_cli_builds_an_experiments_dataset_without_training(tmp_path, capsys):
    from audiolm_jax.data.__main__ import main

    main(["experiments.demo", f"--workdir={tmp_path / 'run'}", "--data.synthetic_train_clips=3",
          "--data.synthetic_eval_clips=2"])
    out = capsys.readouterr().out
    assert "train: 3 examples" in out and "validation: 2 examples" in out
    assert f"{tmp_path / 'run' / 'tfds' / 'synthetic_piano'}" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["experiments.demo", f"--workdir={tmp_path / 'x'}", "--data.source=folder", f"--data.dir={tmp_path / 'no'}"])
    assert exit_info.value.code == 2 and "not a directory" in capsys.readouterr().err


def test_prefetched_batches_arrive_in_order_unchanged_and_errors_surface():
    from audiolm_jax.prefetch import prefetched

    steps = range(3, 11)
    for depth in (0, 1, 4, 20):
        assert list(prefetched(lambda s: s * s, steps, depth)) == [s * s for s in steps]

    def failing(step):
        if step == 6:
            raise ValueError("bad step 6")
        return step

    out = prefetched(failing, steps, 2)
    assert [next(out) for _ in range(3)] == [3, 4, 5]
    with pytest.raises(ValueError, match="bad step 6"):
        next(out)


def test_maestro_json_alone_gives_the_same_splits(tmp_path):
    root = write_maestro(tmp_path / "m")
    (root / "maestro-v3.0.0" / "maestro-v3.0.0.csv").unlink()
    builder = build(file_config(tmp_path, "maestro", root))
    assert {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")} == {
        "train": 3, "validation": 1, "test": 1}


class RecordingSource:
    """A data source that records which example indices are read."""

    def __init__(self, source):
        self.source, self.read = source, []

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        self.read.append(int(index))
        return self.source[index]


def test_two_processes_of_the_real_reader_read_disjoint_examples_covering_the_split(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(40):
        sf.write(folder / f"{i:02d}.wav", piano_like(0.6, 8000, seed=i), 8000)
    data = prepare(file_config(tmp_path, "folder", folder))
    count = len(data.train)
    reads = []
    for p in (0, 1):  # a global batch of 2: one row per process per step, positions 2s + p
        spy = RecordingSource(data.train)
        data.train = spy
        for step in range((count + 1) // 2):
            data.train_batch(step, seed=0, batch_size=2, length=32, process_index=p, process_count=2)
        data.train = spy.source
        reads.append([index for step, index in enumerate(spy.read) if 2 * step + p < count])  # first epoch
    assert not set(reads[0]) & set(reads[1])
    assert sorted(reads[0] + reads[1]) == list(range(count))


def test_a_dataset_prepared_from_another_copy_says_how_to_prepare_again(tmp_path):
    first = write_librispeech(tmp_path / "a", splits=("dev-clean", "train-clean-100"))
    prepare(file_config(tmp_path, "librispeech", first, train_split="train_clean100", eval_split="dev_clean"))
    other = write_librispeech(tmp_path / "b", splits=("dev-clean", "test-clean"))
    with pytest.raises(DatasetError, match=r"no split 'test_clean'.*delete that folder"):
        prepare(file_config(tmp_path, "librispeech", other, train_split="test_clean", eval_split="dev_clean"))


def test_a_split_with_no_usable_audio_is_one_clear_error(tmp_path):
    root = write_maestro(tmp_path / "m")
    for wav in (root / "maestro-v3.0.0" / "2018").glob("*--3.wav"):  # the only validation piece
        wav.write_bytes(b"RIFF broken")
    with pytest.raises(DatasetError, match=r"MAESTRO validation: no usable audio \(1 file\(s\) found, all skipped"):
        prepare(file_config(tmp_path, "maestro", root))


def test_the_evaluation_set_is_the_same_examples_at_any_batch_size(tmp_path):
    """`train.eval_examples` held-out examples, whatever the batch: the set used to be
    `eval_batches` × `batch_size`, so changing the batch changed what val_mse averaged."""
    cfg = tiny_config(str(tmp_path), audio={"top_db": None})
    clips = [{"audio": np.round(piano_like(0.6, 8000, seed=s) * 20000).astype(np.int16)} for s in range(5)]
    data = Dataset(clips, clips, "audio", cfg.audio, cfg.data, cache="audio")
    frames = cfg.audio.seconds_to_frames(cfg.data.segment_seconds)
    real_rows = lambda batches: np.concatenate([b["mel"][b["mask"].sum(1) > 0] for b in batches])
    by_two, by_four = data.eval_batches(2, frames, 3), data.eval_batches(4, frames, 3)
    assert len(by_two) == 2 and len(by_four) == 1  # the last batch padded with masked rows
    assert real_rows(by_two).shape == (3, frames, 16)
    np.testing.assert_array_equal(real_rows(by_two), real_rows(by_four))  # the same three examples, in order
    assert len(real_rows(data.eval_batches(4, frames, 99))) == 5  # all of them when asked for more
