"""Piano from MIDI: reading notes (sustain pedal), piano rolls on the mel's frames, the
notes in datasets and batches, a model that plays the notes it is given, cached decoding
with notes, the render_midi command and the transcription metrics."""

import io
import logging
import os

import jax
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from audiolm_jax import conditioning, config as C, decode, evaluate, midi, model as model_lib, render_midi, train, transcribe
from audiolm_jax.data import synthetic
from audiolm_jax.data.pipeline import batch_examples, crop_start
from audiolm_jax.model import MelTransformer
from audiolm_jax.run import run
from tests.helpers import tiny_config


def _pedalled_midi() -> bytes:
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes += [pretty_midi.Note(100, 60, 0.0, 0.5),  # released while the pedal is down: sounds to 1.0
                    pretty_midi.Note(80, 62, 0.0, 0.2), pretty_midi.Note(90, 62, 0.6, 0.7),  # re-struck at 0.6
                    pretty_midi.Note(70, 64, 1.2, 1.5),  # after the pedal lifts: unchanged
                    pretty_midi.Note(70, 10, 0.0, 1.0)]  # below the piano's A0: dropped
    piano.control_changes += [pretty_midi.ControlChange(64, 127, 0.1), pretty_midi.ControlChange(64, 0, 1.0)]
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes.append(pretty_midi.Note(100, 38, 0.0, 0.1))
    pm.instruments += [piano, drums]
    buffer = io.BytesIO()
    pm.write(buffer)
    return buffer.getvalue()


def test_read_notes_applies_the_sustain_pedal():
    notes = midi.read_notes(_pedalled_midi())
    np.testing.assert_allclose(notes, [[0.0, 1.0, 60, 100], [0.0, 0.6, 62, 80], [0.6, 1.0, 62, 90],
                                       [1.2, 1.5, 64, 70]], atol=2e-3)


def test_a_damaged_midi_file_is_named(tmp_path):
    path = tmp_path / "broken.mid"
    path.write_bytes(b"MThd\x00\x00\x00")
    with pytest.raises(midi.MidiError, match="broken.mid: not a readable MIDI file"):
        midi.read_notes(str(path))


def test_midi_files_round_trip(tmp_path):
    notes = np.array([[0.25, 0.75, 60, 64], [0.5, 1.5, 67, 100]], np.float32)
    midi.write_midi(notes, str(tmp_path / "a.mid"))
    np.testing.assert_allclose(midi.read_notes(str(tmp_path / "a.mid")), notes, atol=2e-3)


def test_piano_roll_marks_onsets_sounding_frames_and_velocity():
    # 8000 Hz, hop 100: frame f is centred at f / 80 s
    notes = np.array([[0.1, 0.2, 60, 127], [-0.5, 0.05, 21, 64]], np.float32)
    roll = midi.piano_roll(notes, 20, 8000, 100)
    assert roll.shape == (20, 264)
    key = 60 - 21
    assert np.flatnonzero(roll[:, key]).tolist() == [8]  # 0.1 s = frame 8
    assert np.flatnonzero(roll[:, 88 + key]).tolist() == list(range(8, 16))  # to 0.2 s = frame 16
    np.testing.assert_allclose(roll[8:16, 176 + key], 1.0)
    assert roll[:, 0].sum() == 0  # held from before: no onset in this audio
    assert np.flatnonzero(roll[:, 88]).tolist() == [0, 1, 2, 3]  # sounds from frame 0 to 0.05 s
    np.testing.assert_allclose(roll[:4, 176], 64 / 127)
    assert np.count_nonzero(roll) == 1 + 8 + 8 + 4 + 4


def test_window_notes_keeps_held_notes_with_negative_onsets():
    notes = np.array([[0.2, 1.3, 60, 90], [1.1, 1.4, 64, 70], [2.5, 3.0, 65, 70]], np.float32)
    np.testing.assert_allclose(midi.window_notes(notes, 1.0, 1.0), [[-0.8, 0.3, 60, 90], [0.1, 0.4, 64, 70]],
                               atol=1e-6)


def test_the_embedded_piano_clips_carry_their_exact_notes():
    wave, notes = synthetic.synthesize_clip_with_notes(0, 5, 2.0, 8000)
    np.testing.assert_array_equal(wave, synthetic.synthesize_clip(0, 5, 2.0, 8000))  # the audio is unchanged
    assert len(notes) > 3 and np.all(notes[:, 1] > notes[:, 0]) and np.all((notes[:, 3] >= 1) & (notes[:, 3] <= 127))
    roll = midi.piano_roll(notes, 1 + len(wave) // 128, 8000, 128)
    energy = np.array([np.sum(wave[max(f * 128 - 64, 0) : f * 128 + 64] ** 2) for f in range(len(roll))])
    sounding = roll[:, 88:176].any(axis=1)
    near = np.convolve(sounding, np.ones(3), mode="same") > 0  # a frame's window reaches ±64 samples
    # the audio is room noise where no note sounds and loud where one does
    assert energy[~near].max() < 1e-3 * np.median(energy[sounding])


def test_a_maestro_piece_with_a_damaged_midi_is_skipped_and_named(tmp_path, caplog):
    from audiolm_jax.data import prepare
    from tests.layouts import write_maestro
    from tests.test_data import file_config

    root = write_maestro(tmp_path / "m")
    damaged = root / "maestro-v3.0.0" / "2018" / "MIDI-Unprocessed_00_R1_2018_wav--0.midi"
    damaged.write_bytes(b"not midi")
    cfg = file_config(tmp_path, "maestro", root / "maestro-v3.0.0", chunk_seconds=1)
    with caplog.at_level(logging.WARNING):
        data = prepare(cfg)
    ids = sorted(data.train[i]["id"].decode() for i in range(len(data.train)))
    assert not any(i.startswith("MIDI-Unprocessed_00") for i in ids) and len(ids) == 4
    assert "MIDI-Unprocessed_00_R1_2018_wav--0.midi" in caplog.text


def midi_config(workdir: str, condition: C.ConditionConfig = C.ConditionConfig(midi="frames"),
                **sections) -> C.ExperimentConfig:
    """The tiny config on the embedded piano set, MIDI-conditioned, crops after go frames."""
    sections.setdefault("train", {"steps": 4, "checkpoint_every": 4, "eval_every": 4})
    return tiny_config(workdir, model={"condition": condition, "head": "mixture", "mixture_components": 2},
                       data={"go_frames": 2}, **sections)


def test_batches_carry_the_piano_roll_of_their_crops(tmp_path):
    from audiolm_jax.data import prepare

    cfg = midi_config(str(tmp_path / "run"))
    data = prepare(cfg)
    length = 32
    batch = data.train_batch(3, seed=cfg.train.seed, batch_size=4, length=length)
    assert batch["notes"].shape == (4, length, 264) and batch["mel"].shape[:2] == (4, length)
    indices, fractions = batch_examples(3, cfg.train.seed, 4, len(data.train))
    segment = int(round(cfg.data.segment_seconds * 8000))
    for row in range(4):
        example = data.train[int(indices[row])]
        start = crop_start(len(example["audio"]), segment, fractions[row])
        notes = midi.window_notes(example["notes"], start / 8000, segment / 8000)
        expected = midi.piano_roll(notes, length - 2, 8000, 128)  # after the 2 go frames
        np.testing.assert_array_equal(batch["notes"][row, :2], 0.0)
        np.testing.assert_array_equal(batch["notes"][row, 2:], expected)


def _note_batches(step: int, batch: int = 16, frames: int = 24, bins: int = 8, max_tokens: int = 48):
    """Mels that only the notes predict: bin k is loud while key k sounds, notes start at
    random frames, the first frame is noise; the notes as a piano roll and as tokens."""
    r = np.random.default_rng(step)
    frame_seconds = 128 / 8000
    rolls, tokens = [], []
    for _ in range(batch):
        notes = []
        for _ in range(3):
            key, start = r.integers(0, bins), r.integers(1, frames - 4)
            notes.append(((start + 0.1) * frame_seconds, (start + r.integers(2, 6) + 0.1) * frame_seconds,
                          21 + key, 100))
        notes = np.array(notes, np.float32)
        rolls.append(midi.piano_roll(notes, frames, 8000, 128))
        tokens.append(midi.note_tokens(notes, frames * frame_seconds, max_tokens))
    roll = np.stack(rolls)
    mel = 2.0 * roll[..., 88 : 88 + bins] - 1.0 + 0.05 * r.standard_normal((batch, frames, bins))
    mel[:, 0] = r.standard_normal((batch, bins))
    tokens = np.stack(tokens)
    return {"mel": mel.astype(np.float32), "mask": np.ones((batch, frames), np.float32), "notes": roll,
            "note_tokens": tokens, "note_mask": (tokens != 0).astype(np.float32),
            "note_frames": np.stack([midi.token_seconds(t) for t in tokens]) / frame_seconds}


@pytest.mark.parametrize("encoding", ["frames", "tokens"])
def test_a_midi_conditioned_model_plays_the_notes_it_is_given(encoding):
    # the roll is added where it acts; tokens must be found by cross-attention in time: slower to learn
    steps, ratio = (200, 0.25) if encoding == "frames" else (800, 0.7)
    cfg = C.validate(C.ExperimentConfig(
        audio=C.AudioConfig(sample_rate=8000, n_fft=256, win_length=256, hop_length=128, n_mels=8),
        model=C.ModelConfig(num_layers=2, d_model=32, num_heads=2, prenet_dim=16, frames_per_step=2,
                            prenet_dropout=0.0, max_frames=32,
                            condition=C.ConditionConfig(midi=encoding, max_note_tokens=48, note_layers=1)),
        data=C.DataConfig(segment_seconds=0.25, synthetic_clip_seconds=1.0),
        train=C.TrainConfig(steps=steps, batch_size=16, learning_rate=1e-2, warmup_steps=5),
        sample=C.SampleConfig(prompt_seconds=0.1)))
    mesh = train.make_mesh(jax.devices()[:1])
    tx = train.optimizer(cfg.train)
    state = train.init_state(cfg, tx)
    step = train.make_train_step(MelTransformer(cfg.model, 8), tx, cfg, mesh)
    losses = []
    for s in range(steps):
        state, metrics = step(state, train.shard_batch(_note_batches(s), mesh))
        losses.append(float(metrics["mse"]))
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])
    held_out, other = _note_batches(10_000), _note_batches(20_000)
    forward = train.make_forward(MelTransformer(cfg.model, 8))

    def error(notes):
        conditions = train.batch_conditions({**held_out, **notes}, cfg.model)
        predicted = train.teacher_forced_prediction(forward, state.params, held_out["mel"], 2, conditions)
        return float(np.mean((predicted[:, 2:] - held_out["mel"][:, 2:]) ** 2))

    keys = ("notes", "note_tokens", "note_mask", "note_frames")
    right, wrong = error({k: held_out[k] for k in keys}), error({k: other[k] for k in keys})
    assert right < ratio * wrong, (right, wrong)


def test_note_tokens_name_held_keys_then_events_in_time_order():
    notes = np.array([[-0.5, 0.3, 60, 100], [0.1, 0.5, 64, 64], [0.1, 2.0, 67, 64], [1.5, 1.7, 72, 127]], np.float32)
    tokens = midi.note_tokens(notes, 1.0, 16)
    held, events = midi.decode_tokens(tokens)
    assert held == [60]  # sounding when the window opens: in the tie section
    assert events == [(0.1, 64, 16), (0.1, 67, 16), (0.3, 60, 0), (0.5, 64, 0)]  # 72 starts after the window
    assert np.count_nonzero(tokens) == 11 and tokens[11:].sum() == 0
    assert np.count_nonzero(midi.note_tokens(notes, 1.0, 5)) == 5  # what does not fit is dropped from the end


@pytest.mark.parametrize("encoding,guidance", [("frames", 1.0), ("frames", 3.0), ("tokens", 1.0), ("tokens", 3.0)])
def test_cached_decoding_with_notes_equals_its_reference_across_window_slides(encoding, guidance):
    cfg = C.ModelConfig(num_layers=2, d_model=32, num_heads=2, prenet_dim=32, frames_per_step=2, max_frames=64,
                        head="mixture", mixture_components=2, prenet_dropout=0.3,
                        condition=C.ConditionConfig(midi=encoding, max_note_tokens=64))
    params = model_lib.init_params(cfg, 8, jax.random.PRNGKey(0))
    prompt = np.random.default_rng(0).normal(size=(2, 6, 8)).astype(np.float32)
    hop_seconds = 256 / 16000

    def with_notes(notes):
        if encoding == "frames":
            return {"conditions": {"notes": np.repeat(midi.piano_roll(notes, 80, 16000, 256)[None], 2, axis=0)}}

        def window(first_group, groups):  # as continuation.prompt_window_conditions cuts them
            start, seconds = first_group * 2 * hop_seconds, (groups + 1) * 2 * hop_seconds
            tokens = midi.note_tokens(midi.window_notes(notes, start, seconds), seconds, 64)
            return conditioning.condition_arrays(cfg.condition, note_tokens=np.repeat(tokens[None], 2, axis=0),
                                                 frames_per_second=1 / hop_seconds)
        return {"window_conditions": window}

    notes = np.array([[0.0, 0.5, 60, 100], [0.3, 1.0, 64, 80], [0.9, 1.2, 70, 50]], np.float32)
    kwargs = dict(window=10, temperature=0.5, prenet_dropout=True, guidance=guidance)
    cached = decode.generate(cfg, params, prompt, 40, jax.random.PRNGKey(1), **kwargs, **with_notes(notes))
    reference = decode.generate_by_recompute(cfg, params, prompt, 40, jax.random.PRNGKey(1), **kwargs,
                                             **with_notes(notes))  # 20 groups: 3 slides of the window
    np.testing.assert_allclose(cached.frames, reference.frames, atol=1e-4)
    silent = decode.generate(cfg, params, prompt, 40, jax.random.PRNGKey(1), **kwargs, **with_notes(midi.EMPTY))
    assert np.abs(silent.frames[:, 6:] - cached.frames[:, 6:]).mean() > 0.1  # the notes change what is played


def test_transcriber_finds_the_embedded_clips_notes():
    transcriber = transcribe.PianoTranscriber()
    f1s = []
    for i in range(3):
        wave, notes = synthetic.synthesize_clip_with_notes(1, i, 4.0, 16000)
        f1s.append(transcribe.onset_scores(notes, transcriber.notes(wave, 16000))["f1"])
        shuffled = midi.shuffled_notes(notes, 4.0, np.random.default_rng(i))
        assert transcribe.onset_scores(notes, shuffled)["f1"] < 0.5
    assert np.mean(f1s) > 0.8, f1s


def test_midi_run_renders_midi_and_is_scored_by_transcription(tmp_path, capsys):
    cfg = midi_config(str(tmp_path / "run"))
    run(cfg)
    piece = tmp_path / "piece.mid"
    midi.write_midi(np.array([[0.1, 0.4, 60, 100], [0.3, 0.9, 64, 80]], np.float32), str(piece))
    out = tmp_path / "out"
    code = render_midi.main(["--workdir", cfg.workdir, "--midi", str(piece), "--seconds", "0.75",
                             "--num-samples", "2", "--sample.griffin_lim_iters=2", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    data, rate = sf.read(out / "piece_sample1.wav")
    assert rate == 8000 and len(data) == 6000
    assert os.path.exists(out / "piece_sample0.png") and "piece_sample1.wav" in (out / "index.html").read_text()

    prompt = tmp_path / "prompt.wav"
    sf.write(prompt, synthetic.synthesize_clip(0, 0, 0.5, 8000), 8000)
    code = render_midi.main(["--workdir", cfg.workdir, "--midi", str(piece), "--seconds", "0.75", "--prompt",
                             str(prompt), "--sample.griffin_lim_iters=2", "--out", str(tmp_path / "cont")])
    assert code == 0, capsys.readouterr().err
    data, _ = sf.read(tmp_path / "cont" / "piece_prompt_sample0.wav")
    assert len(data) == 6000  # the 0.25 s prompt (sample.prompt_seconds), then 0.5 s played from the MIDI

    (tmp_path / "bad.mid").write_bytes(b"nope")
    assert render_midi.main(["--workdir", cfg.workdir, "--midi", str(tmp_path / "bad.mid"), "--out",
                             str(tmp_path / "x")]) == 2
    assert "bad.mid: not a readable MIDI file" in capsys.readouterr().err

    metrics = evaluate.evaluate_checkpoint(cfg.workdir, num_prompts=1, dnsmos="off", midi_pieces=2, midi_seconds=1.0)
    assert "render MIDI pieces: " in capsys.readouterr().err  # each piece's renderings show progress
    for key in ("onset_f1", "onset_f1_resynth", "onset_f1_real", "onset_f1_shuffled", "midi_silent_where_notes",
                "midi_frozen_where_notes"):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
    assert metrics["onset_f1_real"] > 0.5  # the transcriber hears the recordings' own notes
    assert np.isfinite(metrics["midi_energy_error_db"]) and metrics["midi_pieces"] == 2


def test_render_midi_refuses_a_run_without_midi(tmp_path, capsys):
    from tests.helpers import random_walk_data

    cfg = tiny_config(str(tmp_path), train={"steps": 2, "checkpoint_every": 2})
    train.train(cfg, random_walk_data())
    (tmp_path / "a.mid").write_bytes(_pedalled_midi())
    assert render_midi.main(["--workdir", str(tmp_path), "--midi", str(tmp_path / "a.mid"), "--out",
                             str(tmp_path / "o")]) == 2
    assert "not a MIDI-conditioned run" in capsys.readouterr().err


def test_batches_carry_the_note_tokens_of_their_crops(tmp_path):
    from audiolm_jax.data import prepare

    cfg = midi_config(str(tmp_path / "run"), C.ConditionConfig(midi="tokens", max_note_tokens=64))
    data = prepare(cfg)
    batch = data.train_batch(2, seed=cfg.train.seed, batch_size=2, length=32)
    assert batch["note_tokens"].shape == (2, 64) and "notes" not in batch
    indices, fractions = batch_examples(2, cfg.train.seed, 2, len(data.train))
    segment, frame_seconds = int(round(cfg.data.segment_seconds * 8000)), 128 / 8000
    for row in range(2):
        example = data.train[int(indices[row])]
        start = crop_start(len(example["audio"]), segment, fractions[row])
        # time 0 of the tokens is the first go frame: the crop's notes come 2 frames later
        notes = midi.window_notes(example["notes"], start / 8000 - 2 * frame_seconds, 32 * frame_seconds)
        np.testing.assert_array_equal(batch["note_tokens"][row], midi.note_tokens(notes, 32 * frame_seconds, 64))
        np.testing.assert_allclose(batch["note_frames"][row], midi.token_seconds(batch["note_tokens"][row]) / frame_seconds,
                                   rtol=1e-5)


def test_note_tokens_reach_decoding_window_by_window_through_the_continuation_path(tmp_path):
    from audiolm_jax import continuation
    from audiolm_jax.stats import NormStats

    cfg = midi_config(str(tmp_path), C.ConditionConfig(midi="tokens", max_note_tokens=64),
                      sample={"seconds": 1.5, "num_samples": 1, "griffin_lim_iters": 2, "temperature": 0.0})
    params = model_lib.init_params(cfg.model, 16, jax.random.PRNGKey(0))
    stats = NormStats(np.zeros(16, np.float32) - 40, np.ones(16, np.float32) * 10)
    calls = []
    notes = np.array([[0.1, 0.6, 60, 100], [0.8, 1.4, 72, 90]], np.float32)
    prompt = continuation.unconditional_prompt(cfg, stats, "p", notes=notes)
    window = continuation.prompt_window_conditions(cfg, prompt, 1)
    spy = lambda first, groups: calls.append((first, groups)) or window(first, groups)
    decoded = decode.generate(cfg.model, params, np.zeros((1, 2, 16), np.float32), 48, jax.random.PRNGKey(0),
                              window=decode.trained_window(cfg), window_conditions=spy)
    assert decoded.frames.shape == (1, 50, 16) and len(calls) >= 2  # 1.5 s is longer than the 0.5 s window
    first, groups = calls[1]
    tokens = window(first, groups)["note_tokens"][0]
    held, events = midi.decode_tokens(tokens)
    start = (first * 2 - 2) * 128 / 8000  # the notes' time 0 is the first frame after the 2 go frames
    expected = midi.note_tokens(midi.window_notes(notes, start, (groups + 1) * 2 * 128 / 8000),
                                (groups + 1) * 2 * 128 / 8000, 64)
    np.testing.assert_array_equal(tokens, expected)
    other = continuation.continue_prompts(cfg, params, stats, [prompt], jax.random.PRNGKey(0))[0]
    moved = continuation.continue_prompts(
        cfg, params, stats, [continuation.unconditional_prompt(cfg, stats, "p", notes=notes + [0.3, 0.3, 0, 0])],
        jax.random.PRNGKey(0))[0]
    assert len(other.full[0]) == 12000 and np.abs(other.full_log_mel[0] - moved.full_log_mel[0]).max() > 0.01
