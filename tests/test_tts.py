"""Speech from text and voice cloning at toy size: the embedded speech set, whole-utterance
batches, the guided attention loss, the monotonic constraint of decoding, the `tts`
command, and the speech metrics of evaluate."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiolm_jax.cli import apply_overrides
from audiolm_jax import conditioning, config as C, data as data_lib, speech_eval, train, tts
from audiolm_jax.data import voices
from audiolm_jax.model import MelTransformer, init_cache, init_params
from tests.helpers import first_batch_and_its_examples, tiny_config, tts_config


def test_voices_read_held_out_sentences_in_distinct_voices():
    train_texts = voices.sentences("train", 200)
    held_out = voices.sentences("validation", 20) + voices.sentences("test", 20)
    assert len(held_out) == 40 and not set(held_out) & set(train_texts)
    assert voices.sentences("train", 200) == train_texts  # deterministic
    short, long = voices.speak("a", 0), voices.speak("the quiet river runs slowly", 0)
    assert len(long) > 3 * len(short) and np.abs(long).max() == pytest.approx(0.5, abs=1e-3)
    np.testing.assert_array_equal(voices.speak("red", 2, seed=1), voices.speak("red", 2, seed=1))
    # a high voice and a low one: the spectral centroid of their voiced sound differs
    import librosa

    centroid = lambda w: float(np.median(librosa.feature.spectral_centroid(y=w, sr=16000)))
    assert centroid(voices.speak("aaaa", 5)) > 1.1 * centroid(voices.speak("aaaa", 6))
    assert voices.speak("sss", 0, sample_rate=8000).shape[0] > 0  # noise bands stay below Nyquist


def test_whole_utterance_batches_match_their_transcripts(tmp_path):
    cfg = tts_config(str(tmp_path / "run"))
    dataset, batch, examples = first_batch_and_its_examples(cfg)
    for row, example in enumerate(examples):
        assert conditioning.decode_ids(batch["text"][row]) == example["text"].decode()
        valid = int(batch["mask"][row].sum())  # go frames + the whole utterance, then padding
        expected = 2 + 1 + len(example["speech"]) // cfg.audio.hop_length
        assert abs(valid - expected) <= 1, (valid, expected)
    metas = dataset.eval_metadata(16)
    assert {m["speaker"] for m in metas} == set(range(8)) and all(m["text"] for m in metas)


def test_utterances_longer_than_the_segment_are_skipped_with_a_warning(tmp_path, caplog):
    cfg = tts_config(str(tmp_path / "run"))
    cfg = apply_overrides(cfg, ["--data.segment_seconds=1.6"])
    with caplog.at_level("WARNING"):
        dataset = data_lib.prepare(cfg)
    assert "longer than data.segment_seconds" in caplog.text
    assert 0 < len(dataset._train_ids) < len(dataset.train)
    lengths = [len(dataset.train[int(i)]["speech"]) for i in dataset._train_ids]
    assert max(lengths) <= 1.6 * cfg.audio.sample_rate


def test_diagonal_penalty_is_zero_on_the_diagonal_and_one_on_the_summary_slot():
    text_mask = jnp.asarray([[1.0] * 10 + [0.0] * 6])
    positions = jnp.ones((1, 20))
    penalty = np.asarray(train.diagonal_penalty(text_mask, positions, 0.2))
    assert penalty.shape == (1, 20, 17)
    np.testing.assert_allclose(penalty[0, :, 0], 1.0)  # the summary slot
    np.testing.assert_allclose(penalty[0, :, 11:], 0.0)  # padding characters
    assert penalty[0, 9, 5] < 0.02 and penalty[0, 0, 10] > 0.9  # on and far off the diagonal
    diagonal = np.zeros((1, 20, 17), np.float32)
    diagonal[0, np.arange(20), 1 + np.arange(20) // 2] = 1.0
    anti = np.zeros((1, 20, 17), np.float32)
    anti[0, np.arange(20), 10 - np.arange(20) // 2] = 1.0
    target_mask = jnp.ones((1, 20, 2, 1))
    kept = train.guided_positions(target_mask, None)
    loss = lambda a: float(train.guided_attention_sums(jnp.asarray(a), text_mask, kept, 0.2)["guided_loss"])
    assert loss(diagonal) < 0.1 * loss(anti)
    dropped = train.guided_attention_sums(jnp.asarray(anti), text_mask,
                                          train.guided_positions(target_mask, jnp.asarray([True])), 0.2)
    assert float(dropped["guided_loss"]) == 0.0 and float(dropped["guided_count"]) == 0.0


def _guided_model(monotonic=0, max_dwell=0):
    cfg = tts_config("/tmp/unused").model
    return cfg, MelTransformer(cfg, 16, monotonic, max_dwell), init_params(cfg, 16, jax.random.key(0))


def test_guided_heads_return_their_alignment_over_the_text():
    cfg, model, params = _guided_model()
    conditions = conditioning.condition_arrays(cfg.condition, texts=["the quiet river", "a"])
    groups = jnp.asarray(np.random.default_rng(0).standard_normal((2, 7, 32)), jnp.float32)
    outputs, _ = model.apply({"params": params}, groups, conditions=conditions)
    alignment = np.asarray(outputs["alignment"])
    assert alignment.shape == (2, 7, 1 + 96)
    np.testing.assert_allclose(alignment.sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(alignment[1, :, 2:], 0.0)  # "a" has one character
    unguided = dataclasses.replace(cfg, condition=dataclasses.replace(cfg.condition, guided_layers=0))
    plain, _ = MelTransformer(unguided, 16).apply({"params": init_params(unguided, 16, jax.random.key(0))}, groups,
                                                  conditions=conditions)
    assert "alignment" not in plain


def _step_alignments(monotonic, steps=12, max_dwell=0, dwells=None):
    """Alignment rows `[steps, 1 + S]` and the last layer's focus before each step `[steps]`
    of incremental decoding over a pangram; `dwells`, a list, collects that layer's dwell."""
    cfg, model, params = _guided_model(monotonic, max_dwell)
    params = jax.tree.map(lambda p: p * 4.0, params)  # sharper, more erratic attention than at init
    text = "the quick brown fox jumps over the lazy dog"
    conditions = conditioning.condition_arrays(cfg.condition, texts=[text])
    rng = np.random.default_rng(1)
    cache = init_cache(cfg, 1, steps=steps + 2)
    _, cache = model.apply({"params": params}, jnp.zeros((1, 2, 32)), cache=cache, start=0, conditions=conditions)
    rows, foci = [], []
    for i in range(steps):
        foci.append(float(cache[-1]["context_focus"][0]))
        if dwells is not None:
            dwells.append(float(cache[-1]["context_dwell"][0]))
        group = jnp.asarray(rng.standard_normal((1, 1, 32)), jnp.float32)
        outputs, cache = model.apply({"params": params}, group, cache=cache, start=2 + i)
        rows.append(np.asarray(outputs["alignment"])[0, 0])
    return np.array(rows), np.array(foci)


def test_monotonic_decoding_attends_only_near_the_last_focus_and_never_moves_back():
    rows, foci = _step_alignments(monotonic=2)
    for row, focus in zip(rows, foci):
        entries = np.arange(len(row))
        outside = (entries > 0) & ((entries < focus - 1) | (entries > focus + 2))
        np.testing.assert_array_equal(row[outside], 0.0)
    assert np.all(np.diff(foci) >= 0)
    free, _ = _step_alignments(monotonic=0)
    assert (free[:, 8:] > 1e-3).any()  # unconstrained heads do attend far from the start


def test_a_focus_held_for_max_dwell_steps_is_moved_on():
    last = len("the quick brown fox jumps over the lazy dog")  # the pangram's last entry; the gate ends there
    free_dwells, held_dwells = [], []
    _, free = _step_alignments(monotonic=2, steps=24, dwells=free_dwells)
    rows, foci = _step_alignments(monotonic=2, steps=24, max_dwell=2, dwells=held_dwells)
    assert max(d for d, f in zip(free_dwells, free) if f < last) >= 4  # unlimited, this model's focus sticks
    assert max(d for d, f in zip(held_dwells, foci) if f < last) <= 2
    assert np.argmax(foci == last) < np.argmax(free == last) or free[-1] < last  # so the text is read sooner
    forced = 0
    for before, after, dwell, row in zip(foci[:-1], foci[1:], held_dwells[:-1], rows[:-1]):
        if dwell >= 2 and before < last:  # the step attended past the held character, so the focus moved on
            assert after > before
            np.testing.assert_array_equal(row[1 : int(before) + 1], 0.0)
            forced += 1
    assert forced >= 2


@pytest.mark.slow
def test_guided_attention_loss_falls_in_training(tmp_path):
    cfg = tts_config(str(tmp_path / "run"), steps=30, learning_rate=1e-2, log_every=5)
    result = train.train(cfg, data_lib.prepare(cfg))
    history = [h for h in result.history if "guided_attention" in h]
    assert history[-1]["guided_attention"] < 0.8 * history[0]["guided_attention"]


def test_character_error_rate_and_edit_distance():
    assert speech_eval.edit_distance("kitten", "sitting") == 3
    assert speech_eval.character_error_rate(["The cat."], ["the cat"]) == 0.0
    assert speech_eval.character_error_rate(["abcd"], ["abed"]) == pytest.approx(0.25)
    assert speech_eval.character_error_rate(["ab", "cd"], ["", "cd"]) == pytest.approx(2 / 4)


def test_chance_cer_scores_transcripts_against_sentences_they_do_not_speak():
    """A recogniser that hears every word scores 0 but 1.0 at chance: its transcripts, rotated
    onto the other sentences, share no character position; a model at its chance level is
    unintelligible (share 0) whatever its ratio to the resynthesis."""
    references = ["ab", "cd", "ef"]
    assert speech_eval.character_error_rate(references, references) == 0.0
    assert speech_eval.chance_character_error_rate(references, references) == pytest.approx(1.0)
    # "ab" against "cd" 2 edits, "cd" against "ef" 2, "ab" against "ab" 0: 4 of 6 characters
    assert speech_eval.chance_character_error_rate(references, ["ab", "cd", "ab"]) == pytest.approx(4 / 6)
    assert np.isnan(speech_eval.chance_character_error_rate(["ab"], ["ab"]))
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        speech_eval.chance_character_error_rate(["ab", "cd"], ["ab"])
    # the espeak-ng corpus' figures: a CER 2.19x the resynthesis' yet 0.08 of its margin over chance
    assert speech_eval.intelligibility_share(0.907, 0.95, 0.413, 0.96) == pytest.approx(0.043 / 0.547)
    assert speech_eval.intelligibility_share(0.4, 0.95, 0.4, 0.95) == pytest.approx(1.0)
    assert speech_eval.intelligibility_share(0.95, 0.95, 0.4, 0.95) == 0.0
    assert np.isnan(speech_eval.intelligibility_share(0.5, 0.9, 0.9, 0.9))


def test_reading_and_tail_split_an_alignment_where_its_focus_nears_the_end():
    """11 positions walk to the last of 10 characters (the focus first within 3 of the last,
    character 6, at position 7), then 6 more hold it: 7 positions of reading, 10 of tail; a
    focus that glances back does not undo the running focus; a focus that never nears the
    end is all reading."""
    walk = np.eye(10)[[0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9, 9]]
    assert speech_eval.reading_and_tail(walk, margin=3) == (7, 10)
    glance = walk.copy()
    glance[9] = np.eye(10)[2]  # position 9 looks back at character 2
    assert speech_eval.reading_and_tail(glance, margin=3) == (7, 10)
    assert speech_eval.reading_and_tail(walk, margin=0) == (10, 7)
    assert speech_eval.reading_and_tail(walk[:6], margin=3) == (6, 0)
    assert speech_eval.reading_and_tail(np.zeros((0, 10))) == (0, 0)


def test_alignment_scores_tell_a_diagonal_from_a_stall_and_a_scramble():
    diagonal = np.eye(20)[np.repeat(np.arange(20), 3)]
    assert speech_eval.alignment_scores(diagonal) == {"monotonic": 1.0, "coverage": 1.0, "diagonal": 1.0}
    stall = np.eye(20)[np.minimum(np.repeat(np.arange(20), 3), 6)]
    assert speech_eval.alignment_scores(stall)["coverage"] < 0.5
    scramble = np.eye(20)[np.random.default_rng(0).integers(0, 20, 60)]
    assert speech_eval.alignment_scores(scramble)["monotonic"] < 0.7


def test_identify_picks_the_nearest_voice():
    references = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(speech_eval.identify(np.array([[0.9, 0.2], [-0.1, 2.0], [-3, 0.5]]), references),
                                  [0, 1, 2])


def test_the_recogniser_hears_silence_as_nothing_and_keeps_to_its_vocabulary():
    pytest.importorskip("pocketsphinx")
    recogniser = speech_eval.Recogniser(["red", "blue", "zzqxj"])
    assert recogniser.unknown_words == ["zzqxj"]
    assert recogniser.transcribe(np.zeros(16000, np.float32), 16000) == ""
    heard = recogniser.transcribe(voices.speak("red blue red", 0) * 0.5, 16000)
    assert set(heard.split()) <= {"red", "blue"}


@pytest.mark.slow
def test_tts_run_speaks_clones_and_is_evaluated(tmp_path, capsys, monkeypatch):
    from audiolm_jax import evaluate
    from audiolm_jax.run import run

    cfg = tts_config(str(tmp_path / "run"))
    run(cfg)
    out = tmp_path / "tts"
    code = tts.main(["--workdir", cfg.workdir, "--text", "the quiet river", "--seconds", "1.0",
                     "--sample.griffin_lim_iters=2", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["index.html", "the_quiet_river_sample0.png", "the_quiet_river_sample0.wav"]

    voice = tmp_path / "voice.wav"
    import soundfile as sf
    sf.write(voice, voices.speak("red green", 3, sample_rate=8000), 8000)
    code = tts.main(["--workdir", cfg.workdir, "--text", "blue", "--voice", str(voice), "--voice-text", "red green",
                     "--seconds", "1.0", "--sample.griffin_lim_iters=2", "--out", str(tmp_path / "clone")])
    assert code == 0, capsys.readouterr().err
    page = (tmp_path / "clone" / "index.html").read_text()
    assert "blue_as_voice_prompt.wav" in page and "blue_as_voice_sample0.wav" in page

    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
        tts.main(["--workdir", cfg.workdir, "--text", "x", "--voice", str(voice), "--out", str(out)])
    assert exit_info.value.code == 2 and "--voice and --voice-text go together" in capsys.readouterr().err
    assert tts.main(["--workdir", cfg.workdir, "--text", "x" * 200, "--out", str(tmp_path / "long")]) == 2
    assert "at most 96" in capsys.readouterr().err

    forced_passes = []  # each teacher-forced pass evaluate makes: one per timed recording and transcript
    counted = evaluate.teacher_forced_speech
    monkeypatch.setattr(evaluate, "teacher_forced_speech", lambda *a, **k: forced_passes.append(1) or counted(*a, **k))
    metrics = evaluate.evaluate_checkpoint(cfg.workdir, num_prompts=1, dnsmos="off", tts_utterances=2, tts_draws=2,
                                           tts_duration_utterances=3)
    assert len(forced_passes) == 3 + 3  # own and swapped transcripts; the teacher-forced CER reuses the own
    shown = capsys.readouterr().err  # minutes of sampling on a real run show their progress
    assert "synthesise 3 sentences x 2: 100%" in shown and "align the recordings: 100%" in shown
    for key in ("duration_ratio", "alignment_diagonal", "real_alignment_diagonal", "guided_attention",
                "reading_ratio", "tail_groups", "real_tail_groups"):
        assert np.isfinite(metrics[key]), key
    assert metrics["tts_utterances"] == 2 and metrics["tts_draws"] == 2 and metrics["duration_utterances"] == 3
    assert metrics["duration_syntheses"] == 6  # every draw of every timed transcript, CER on the first 2
    assert float(metrics["duration_within_20pct"] * 6).is_integer()
    if speech_eval.asr_available():
        assert 0.0 <= metrics["cer_resynth"] and "cer_vs_resynth" in metrics
        for key in ("cer_chance", "cer_resynth_chance", "cer_teacher_forced_chance"):
            assert 0.0 <= metrics[key], key  # 2 sentences: each heard against the other's transcript
        assert "intelligibility" in metrics and "teacher_forced_intelligibility" in metrics
        assert metrics["teacher_forced_utterances"] == 2 and 0.0 <= metrics["cer_teacher_forced"]
    assert metrics["text_reliance_utterances"] == 3 and np.isfinite(metrics["text_reliance"])
    if metrics.get("cloned_utterances"):  # resemblyzer installed: the clone beside the vocoder's ceiling
        for key in ("speaker_id_accuracy", "real_speaker_id_accuracy", "resynth_speaker_id_accuracy"):
            assert 0.0 <= metrics[key] <= 1.0, key


def test_absolute_positions_tell_the_decoder_where_it_is():
    cfg = tiny_config("/tmp/unused").model
    groups = jnp.asarray(np.random.default_rng(0).standard_normal((1, 6, 32)), jnp.float32)
    for absolute in (False, True):
        model_cfg = dataclasses.replace(cfg, absolute_positions=absolute)
        model = MelTransformer(model_cfg, 16)
        params = init_params(model_cfg, 16, jax.random.key(0))
        assert ("position_scale" in params) == absolute
        here = model.apply({"params": params}, groups, start=0)[0]["mean"]
        later = model.apply({"params": params}, groups, start=7)[0]["mean"]
        # rotary attention alone sees only distances: the same groups later give the same output
        assert np.allclose(here, later, atol=1e-4) != absolute


def test_gate_may_end_speech_only_once_the_focus_nears_the_texts_end():
    from audiolm_jax import continuation
    from audiolm_jax.decode import Decoded

    walk = np.zeros((10, 6), np.float32)  # focus 0, 0, 1, 1, 2, ... 4, then back to 3 (the running max holds 4)
    walk[np.arange(10), [0, 0, 1, 1, 2, 2, 3, 4, 3, 5]] = 1.0
    allowed = continuation.gate_allowed([walk], context_groups=3, new_groups=9, margin=1)
    # new group g is predicted at position 2 + g; focus >= 6 - 1 - 1 = 4 from position 7 on; past 9: allowed
    np.testing.assert_array_equal(allowed[0], [False] * 5 + [True] * 4)
    assert continuation.gate_allowed([walk], 3, 9, None) is None
    decoded = Decoded(frames=np.zeros((1, 2 * 12, 4)), ended=np.full((1, 9), 0.9))
    assert decoded.lengths(2)[0] == 2 * 3  # the gate alone: at the first new group
    assert decoded.lengths(2, allowed=allowed)[0] == 2 * (3 + 5)


def test_a_focus_held_on_the_last_character_for_max_dwell_positions_ends_speech():
    from audiolm_jax import continuation
    from audiolm_jax.decode import Decoded

    walk = np.zeros((12, 4), np.float32)  # focus reaches the last character (3) at position 4, glances back at 7
    walk[np.arange(12), [0, 1, 1, 2, 3, 3, 3, 2, 3, 3, 3, 3]] = 1.0
    forced = continuation.ended_by_dwell([walk], context_groups=2, new_groups=10, max_dwell=3)
    # new group g is predicted at position 1 + g; positions 4, 5, 6 are the 3 allowed on the last character
    # (7's glance back still counts: the running focus never moves back), so from position 7 (g = 6) speech ends
    np.testing.assert_array_equal(forced[0], [False] * 6 + [True] * 4)
    assert continuation.ended_by_dwell([walk], 2, 10, 0) is None
    silent_gate = Decoded(frames=np.zeros((1, 2 * 12, 4)), ended=np.zeros((1, 10)))
    assert silent_gate.lengths(2)[0] == 2 * 12  # the gate never fires: every frame
    assert silent_gate.lengths(2, forced=forced)[0] == 2 * (2 + 6)
    early_gate = Decoded(frames=np.zeros((1, 2 * 12, 4)), ended=np.eye(10)[None, 3])
    assert early_gate.lengths(2, forced=forced)[0] == 2 * (2 + 3)  # a gate that fires first still ends it


def test_a_cloned_voice_goes_on_past_the_end_of_its_prompt_sentence(tmp_path, monkeypatch):
    """The gate knows where a sentence ends, and a cloning prompt is a whole sentence: a gate
    that fires at once must not end the clone before the guided focus reaches the new text's end
    (the defect: every clone of the espeak-corpus model was one group, 0.03 s, of silence)."""
    from audiolm_jax import continuation

    cfg = tts_config(str(tmp_path / "run"))
    cfg = dataclasses.replace(cfg, sample=dataclasses.replace(cfg.sample, seconds=1.0, griffin_lim_iters=2))
    params = init_params(cfg.model, 16, jax.random.key(0))
    params = {**params, "gate": {**params["gate"], "bias": np.full(1, 10.0, np.float32)}}  # fires everywhere
    stats = data_lib.NormStats(mean=np.full(16, -40.0, np.float32), std=np.full(16, 20.0, np.float32))
    steps_per_char = 2  # a made-up diagonal alignment: the focus moves one character every two positions
    monkeypatch.setattr(continuation, "text_alignments", lambda config, params, frames, conditions, lengths, heard=0: [
        np.eye(int(np.asarray(conditions["text_mask"])[0].sum()), dtype=np.float32)[
            np.minimum(np.arange(frames.shape[1] // 2) // steps_per_char, int(np.asarray(conditions["text_mask"])[0].sum()) - 1)]
        for _ in lengths])
    prompt = tts.speech_prompt(cfg, stats, "blue sky", ("v", voices.speak("red", 3, sample_rate=8000)), "red")
    (cont,) = continuation.continue_prompts(cfg, params, stats, [prompt], jax.random.key(0))
    assert prompt.text == "red blue sky"  # trained without pairs: no break mark between the transcripts
    paired = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, paired_utterances=0.5))
    marked = tts.speech_prompt(paired, stats, "blue sky", ("v", voices.speak("red", 3, sample_rate=8000)), "red")
    assert marked.text == "red. blue sky"  # trained on pairs: the voice's transcript, the break mark, the new text
    chars, margin = len(prompt.text), 3  # sample.gate_focus_margin's default
    context = (cfg.data.go_frames + len(prompt.log_mel_db)) // 2
    expected_groups = steps_per_char * (chars - 1 - margin) + 1 - context  # focus reaches chars-1-margin there
    assert expected_groups > 1
    assert cont.full_log_mel[0].shape[0] == len(prompt.log_mel_db) + 2 * expected_groups
    assert len(tts.new_speech(cont)[0]) == 2 * expected_groups * cfg.audio.hop_length


def test_paired_utterances_join_two_sentences_of_one_speaker(tmp_path):
    cfg = tts_config(str(tmp_path / "run"))
    cfg = apply_overrides(cfg, ["--data.paired_utterances=1.0"])
    dataset = data_lib.prepare(cfg)
    by_text = {dataset.train[int(i)]["text"].decode(): dataset.train[int(i)] for i in dataset._train_ids}
    frames = data_lib.segment_frames(4.0, cfg.audio, 2)
    batch = dataset.train_batch(0, 0, 8, frames)
    from audiolm_jax.data.pipeline import batch_examples
    indices, _ = batch_examples(0, 0, 8, len(dataset._train_ids))
    joined = 0
    for row, index in enumerate(dataset._train_ids[indices]):
        text = conditioning.decode_ids(batch["text"][row])
        second = dataset.train[int(index)]
        assert text.endswith(second["text"].decode())
        first_text = text[: -len(second["text"].decode())]
        samples = len(second["speech"])
        if first_text:  # joined: a whole other training sentence of the same voice first, then the break mark
            assert first_text.endswith(conditioning.UTTERANCE_BREAK) and first_text.count(".") == 1, text
            first = by_text[first_text[: -len(conditioning.UTTERANCE_BREAK)]]
            assert first["speaker_id"] == second["speaker_id"] and first is not second
            samples += len(first["speech"])
            joined += 1
        valid = int(batch["mask"][row].sum())  # go frames + both utterances, then padding
        assert abs(valid - (2 + 1 + samples // cfg.audio.hop_length)) <= 1, (valid, samples)
    segment = 4.0 * cfg.audio.sample_rate
    can_pair = sum(any(e is not dataset.train[int(index)] and e["speaker_id"] == dataset.train[int(index)]["speaker_id"]
                       and len(e["speech"]) + len(dataset.train[int(index)]["speech"]) <= segment
                       for e in by_text.values())
                   for index in dataset._train_ids[indices])
    assert joined == can_pair >= 2  # every row whose voice has a sentence short enough to go first
    unpaired = data_lib.prepare(apply_overrides(cfg, ["--data.paired_utterances=0.0"]), stats=dataset.stats)
    alone = unpaired.train_batch(0, 0, 8, frames)["text"]  # the same rows, each its own sentence only
    assert [conditioning.decode_ids(t) for t in alone] == [dataset.train[int(i)]["text"].decode()
                                                           for i in dataset._train_ids[indices]]
    with pytest.raises(C.ConfigError, match="data.paired_utterances"):
        apply_overrides(tiny_config(str(tmp_path / "x")), ["--data.paired_utterances=0.5"])  # random crops


def test_paired_utterances_need_a_source_with_speakers(tmp_path):
    cfg = apply_overrides(tts_config(str(tmp_path / "run")), ["--data.paired_utterances=0.5"])
    from audiolm_jax.data.files import DatasetError

    clips = [{"speech": np.zeros(4000, np.int16), "text": b"red"}]
    with pytest.raises(DatasetError, match="has no speaker ids"):
        data_lib.Dataset(clips, clips, "speech", cfg.audio, cfg.data, cache="audio", condition=cfg.model.condition,
                         text_key="text")


def _voice_config(workdir="/tmp/unused", steps=4, **train_fields):
    cfg = tts_config(workdir, steps, **train_fields)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, condition=dataclasses.replace(
        cfg.model.condition, voice=True, voice_dim=8)))


def test_a_voice_needs_a_text_or_label_and_its_fields_are_checked():
    cfg = _voice_config()
    for condition, field in ((C.ConditionConfig(voice=True), "model.condition.voice"),
                             (dataclasses.replace(cfg.model.condition, voice_dim=0), "model.condition.voice_dim"),
                             (dataclasses.replace(cfg.model.condition, voice_dropout=1.0), "model.condition.voice_dropout")):
        with pytest.raises(C.ConfigError, match=field):
            C.validate(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, condition=condition)))


def test_the_voice_changes_the_prediction_and_a_dropped_voice_is_the_null():
    """Same text, same frames: two different voices give two different predictions; a row
    whose voice is dropped predicts exactly as a row given no voice at all."""
    cfg = _voice_config().model
    model, params = MelTransformer(cfg, 16), init_params(cfg, 16, jax.random.key(0))
    rng = np.random.default_rng(0)
    groups = jnp.asarray(rng.standard_normal((2, 6, 32)), jnp.float32)
    voices_ = rng.standard_normal((2, 30, 16)).astype(np.float32)
    voices_[1] = 2.0 * voices_[1] + 1.0  # a second, different voice
    texts = ["the quiet river"] * 2
    given = conditioning.condition_arrays(cfg.condition, texts=texts, voices=voices_)
    assert given["voice"].shape == (2, 30, 16) and given["voice_mask"].shape == (2, 30)
    _assert_differs_and_dropped_is_null(model, params, groups, given, cfg.condition, texts, "voice")
    padded = {**given, "voice": np.concatenate([voices_, np.zeros((2, 10, 16), np.float32)], axis=1),
              "voice_mask": np.concatenate([given["voice_mask"], np.zeros((2, 10), np.float32)], axis=1)}
    np.testing.assert_allclose(np.asarray(model.apply({"params": params}, groups, conditions=padded)[0]["mean"]),
                               np.asarray(model.apply({"params": params}, groups, conditions=given)[0]["mean"]),
                               atol=1e-5)  # masked frames are not heard


def _assert_differs_and_dropped_is_null(model, params, groups, given, condition, texts, key, dropped=None):
    """Rows 0 and 1 of `given` differ only in condition `key`: with the same frames their
    predictions differ; a row whose `key` is dropped (`dropped`, by default `drop_<key>`)
    predicts exactly as a row given none, the other row not."""
    predict = lambda g, c: np.asarray(model.apply({"params": params}, g, conditions=c)[0]["mean"])
    out = predict(groups.at[1].set(groups[0]), given)
    assert np.abs(out[0] - out[1]).max() > 1e-3  # the conditions differ, nothing else does
    none = conditioning.condition_arrays(condition, texts=texts)
    assert key not in none
    absent = predict(groups, none)
    without = predict(groups, {**given, dropped or f"drop_{key}": np.array([True, False])})
    np.testing.assert_allclose(without[0], absent[0], atol=1e-5)
    assert np.abs(without[1] - absent[1]).max() > 1e-3


def test_a_voice_model_trains_on_its_own_frames_and_clones_from_the_prompt(tmp_path):
    """Training reads each example's voice from its own frames (batch_conditions); the
    clone's conditions carry the prompt's normalised frames, text alone none."""
    from audiolm_jax import continuation

    cfg = _voice_config(str(tmp_path / "run"))
    batch = {"mel": np.ones((2, 20, 16), np.float32), "mask": np.ones((2, 20), np.float32),
             "text": np.ones((2, 96), np.int32), "text_mask": np.ones((2, 96), np.float32)}
    conditions = train.batch_conditions(batch, cfg.model)
    assert conditions["voice"] is batch["mel"] and conditions["voice_mask"] is batch["mask"]
    stats = data_lib.NormStats(mean=np.full(16, -40.0, np.float32), std=np.full(16, 20.0, np.float32))
    prompt = tts.speech_prompt(cfg, stats, "blue", ("v", voices.speak("red", 3, sample_rate=8000)), "red")
    frames = np.repeat(stats.normalise(prompt.log_mel_db)[None], 2, axis=0)
    cloned = continuation.prompt_conditions(cfg, prompt, 2, None, prompt_frames=frames)
    np.testing.assert_allclose(cloned["voice"][1], stats.normalise(prompt.log_mel_db))
    assert "voice" not in continuation.prompt_conditions(cfg, tts.speech_prompt(cfg, stats, "blue"), 2, None,
                                                         prompt_frames=frames)
    from audiolm_jax.run import run

    run(cfg)  # trains (voice dropout drawn), evaluates and samples through the one path
    cloned = tts.main(["--workdir", cfg.workdir, "--text", "blue", "--voice", str(_write_voice(tmp_path)),
                       "--voice-text", "red green", "--seconds", "0.5", "--sample.griffin_lim_iters=2",
                       "--out", str(tmp_path / "clone")])
    assert cloned == 0


def _write_voice(tmp_path):
    import soundfile as sf

    path = tmp_path / "voice.wav"
    sf.write(path, voices.speak("red green", 3, sample_rate=8000), 8000)
    return path


def _rate_config(workdir="/tmp/unused", steps=4, **train_fields):
    cfg = tts_config(workdir, steps, **train_fields)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, condition=dataclasses.replace(
        cfg.model.condition, speaking_rate=True)))


def test_a_speaking_rate_needs_a_text_and_its_fields_are_checked():
    cfg = _rate_config()
    for condition, field in ((C.ConditionConfig(label=True, speaking_rate=True), "model.condition.speaking_rate"),
                             (dataclasses.replace(cfg.model.condition, rate_dropout=1.0), "model.condition.rate_dropout"),
                             (dataclasses.replace(cfg.model.condition, rate_dropout=-0.1), "model.condition.rate_dropout")):
        with pytest.raises(C.ConfigError, match=field):
            C.validate(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, condition=condition)))


def test_speaking_rates_are_the_characters_read_per_second():
    rates = conditioning.speaking_rates(["The quiet river.", "", "red green blue"], [1.6, 2.0, 0.0], 96)
    np.testing.assert_allclose(rates, [16 / 1.6, 0.0, 14 / 0.01])  # normalised text, spaces and stops counted
    np.testing.assert_allclose(conditioning.speaking_rates(["red green blue"], [2.0], 9), [4.5])  # cut: "red green"
    with pytest.raises(ValueError, match="2 texts but 1 durations"):
        conditioning.speaking_rates(["a", "b"], [1.0], 96)


def test_the_rate_changes_the_prediction_and_a_dropped_rate_is_the_null():
    """Same text, same frames: 8 and 16 characters per second give different predictions;
    a row whose rate is dropped predicts exactly as a row given no rate."""
    cfg = _rate_config().model
    model, params = MelTransformer(cfg, 16), init_params(cfg, 16, jax.random.key(0))
    groups = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 32)), jnp.float32)
    texts = ["the quiet river"] * 2
    given = conditioning.condition_arrays(cfg.condition, texts=texts, rates=np.array([8.0, 16.0]))
    assert given["rate"].dtype == np.float32 and given["rate"].shape == (2,)
    _assert_differs_and_dropped_is_null(model, params, groups, given, cfg.condition, texts, "rate")
    drops = train.condition_drops(jax.random.key(1), dataclasses.replace(cfg.condition, rate_dropout=0.5),
                                  jnp.arange(64))
    assert 10 < int(drops["drop_rate"].sum()) < 54  # about half the rows train without their rate


def _batch_needs(cfg, batch, key):
    """`train.batch_conditions` passes the batch's `key` with its text, and names `key` when it is missing."""
    assert set(train.batch_conditions(batch, cfg.model)) >= {"text", "text_mask", key}
    with pytest.raises(ValueError, match=key):
        train.batch_conditions({k: v for k, v in batch.items() if k != key}, cfg.model)


def _cloning_prompt(cfg):
    """Stats, a voice recording of "red green" `[samples]` and the prompt that speaks "blue" in it."""
    stats = data_lib.NormStats(mean=np.full(16, -40.0, np.float32), std=np.full(16, 20.0, np.float32))
    voice = voices.speak("red green", 3, sample_rate=8000)
    return stats, voice, tts.speech_prompt(cfg, stats, "blue", ("v", voice), "red green")


def test_a_rate_model_trains_on_each_examples_own_rate_and_speaks_at_the_voices(tmp_path):
    """Each training row carries its transcript's characters over its audio's seconds; a
    clone speaks at its voice recording's rate unless told one; text alone at the null
    unless told one; evaluate gives a speaker's rate from its other recordings only."""
    from audiolm_jax import continuation, evaluate

    cfg = _rate_config(str(tmp_path / "run"))
    _, batch, examples = first_batch_and_its_examples(cfg)
    for row, example in enumerate(examples):
        wave = example["speech"].astype(np.float32) / 32768.0
        expected = tts.recording_rate(cfg, example["text"].decode(), wave)
        assert 3.0 < expected < 40.0
        np.testing.assert_allclose(batch["rate"][row], expected, rtol=1e-5)
    _batch_needs(cfg, batch, "rate")

    stats, voice, prompt = _cloning_prompt(cfg)
    assert prompt.rate == pytest.approx(tts.recording_rate(cfg, "red green", voice))
    assert tts.speech_prompt(cfg, stats, "blue", ("v", voice), "red green", rate=9.5).rate == 9.5
    assert tts.speech_prompt(cfg, stats, "blue").rate is None
    told = continuation.prompt_conditions(cfg, tts.speech_prompt(cfg, stats, "blue", rate=9.5), 3, None)
    np.testing.assert_allclose(told["rate"], [9.5] * 3)
    assert "rate" not in continuation.prompt_conditions(cfg, tts.speech_prompt(cfg, stats, "blue"), 3, None)
    with pytest.raises(ValueError, match="positive"):
        tts.speech_prompt(cfg, stats, "blue", rate=0.0)
    with pytest.raises(ValueError, match="model.condition.speaking_rate"):
        tts.speech_prompt(tts_config(str(tmp_path / "other")), stats, "blue", rate=9.5)

    metas = [{"speaker": 1, "text": "red green"}, {"speaker": 1, "text": "red green blue"}, {"speaker": 2, "text": "x"}]
    waves = [voice, voices.speak("red green blue", 3, sample_rate=8000), voice]
    assert evaluate.speaker_rate(cfg, metas, waves, 0) == pytest.approx(
        tts.recording_rate(cfg, "red green blue", waves[1]))  # not its own recording's
    assert evaluate.speaker_rate(cfg, metas, waves, 2) is None  # no other recording of speaker 2

    from audiolm_jax.run import run

    run(cfg)  # trains (rate dropout drawn), evaluates and samples through the one path
    assert tts.main(["--workdir", cfg.workdir, "--text", "blue", "--rate", "12", "--seconds", "0.5",
                     "--sample.griffin_lim_iters=2", "--out", str(tmp_path / "told")]) == 0


def test_a_windowed_text_encoder_keeps_each_character_to_its_neighbourhood():
    """With `text_window` w and L layers a character's encoding depends on the characters
    within L·w of it and no others; with 0, on the whole text."""
    from audiolm_jax.model import Conditioner

    def encodings(window, text):
        cond = C.ConditionConfig(text=True, max_text_chars=40, text_layers=2, text_window=window)
        model = Conditioner(cond, 32, 4, jnp.float32)
        arrays = conditioning.condition_arrays(cond, texts=[text])
        params = model.init(jax.random.key(0), arrays)
        return np.asarray(model.apply(params, arrays)[0])[0, 1:]  # the characters' entries (slot 0 is the summary)

    text, changed = "the quiet river runs slowly past", "the quiet river ruxs slowly past"
    where = text.index("runs") + 2  # the one character that differs
    for window in (2, 0):
        moved = np.abs(encodings(window, text) - encodings(window, changed)).max(axis=1)[: len(text)] > 1e-6
        distance = np.abs(np.arange(len(text)) - where)
        if window:
            np.testing.assert_array_equal(moved, distance <= 2 * window)
        else:
            assert moved.all()
    with pytest.raises(C.ConfigError, match="model.condition.text_window"):
        C.validate(apply_overrides(tts_config("/tmp/unused"), ["--model.condition.text_window=-1"]))


def _duration_config(workdir="/tmp/unused", steps=4, **train_fields):
    cfg = tts_config(workdir, steps, **train_fields)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, condition=dataclasses.replace(
        cfg.model.condition, duration=True)))


def test_a_duration_needs_a_text():
    with pytest.raises(C.ConfigError, match="model.condition.duration"):
        C.validate(dataclasses.replace(_duration_config(), model=dataclasses.replace(
            _duration_config().model, condition=C.ConditionConfig(label=True, duration=True))))


def test_end_frames_invert_speaking_rates():
    """A training example's rate (its characters over its seconds) gives back its own end:
    the audio's first frame plus its frames; 15 characters at 10 per second last 1.5 s."""
    seconds = np.array([1.5, 2.25], np.float32)
    rates = conditioning.speaking_rates(["the quiet river", "red green"], seconds, 96)
    np.testing.assert_allclose(conditioning.end_frames(np.array([15, 9]), rates, 62.5, 2), 2 + seconds * 62.5,
                               rtol=1e-5)
    np.testing.assert_allclose(conditioning.end_frames(np.array([15]), np.array([10.0]), 40.0, 0), [60.0])
    with pytest.raises(ValueError, match="frames_per_second"):
        conditioning.end_frames(np.array([15]), np.array([10.0]), 0.0, 0)


def test_the_time_left_changes_the_prediction_and_a_dropped_one_is_the_null():
    """Same text, same frames: ends at frame 40 and frame 80 give different predictions; a
    row whose rate (hence end) is dropped predicts exactly as a row given none."""
    cfg = _duration_config().model
    model, params = MelTransformer(cfg, 16), init_params(cfg, 16, jax.random.key(0))
    groups = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 32)), jnp.float32)
    texts = ["the quiet river"] * 2
    given = conditioning.condition_arrays(cfg.condition, texts=texts, rates=np.array([15 / 1.25, 15 / 0.625]),
                                          frames_per_second=32.0, audio_start_frame=0)
    np.testing.assert_allclose(given["end_frame"], [40.0, 20.0], rtol=1e-5)
    _assert_differs_and_dropped_is_null(model, params, groups, given, cfg.condition, texts, "end_frame", "drop_rate")


def test_cached_decoding_keeps_each_rows_end_across_steps_and_windows():
    """The cached decoder (the end kept in the cache after the prefill, counted from each
    chunk's start) draws what the full-pass reference draws, past two window slides; a
    different end changes what is drawn."""
    from audiolm_jax import decode

    cfg = dataclasses.replace(_duration_config().model, prenet_dropout=0.0)
    params = init_params(cfg, 16, jax.random.key(2))
    texts = ["the quiet river"] * 2
    conditions = conditioning.condition_arrays(cfg.condition, texts=texts, rates=np.array([15 / 1.0, 15 / 2.0]),
                                               frames_per_second=32.0, audio_start_frame=2)
    prompt = np.random.default_rng(1).standard_normal((2, 4, 16)).astype(np.float32)
    run = lambda f, c: f(cfg, params, prompt, 40, jax.random.key(3), window=8, conditions=c).frames
    fast = run(decode.generate, conditions)
    np.testing.assert_allclose(fast, run(decode.generate_by_recompute, conditions), atol=1e-4)
    later = {**conditions, "end_frame": conditions["end_frame"] + 30.0}
    assert np.abs(fast[:, 4:] - run(decode.generate, later)[:, 4:]).max() > 1e-3
    # a chunk whose position 0 is absolute group 5 (r = 2) counts the end from frame 10
    shifted = decode._window_fed(conditions, None, 5, 8, 1.0, cfg.frames_per_step)
    np.testing.assert_allclose(shifted["end_frame"], conditions["end_frame"] - 10.0)
    assert shifted["text"] is conditions["text"] and decode._window_fed(conditions, None, 0, 8, 1.0, 2) is conditions


def test_a_duration_model_trains_to_each_examples_own_end_and_speaks_to_the_voices(tmp_path):
    """Each training row's end is where its audio ends (go frames, then the mask's frames:
    where the gate learns 'ended'); a clone's end is its whole text at the voice's rate
    from the voice's first frame; text alone told a rate ends at its characters over it."""
    from audiolm_jax import continuation

    cfg = _duration_config(str(tmp_path / "run"))
    _, batch, examples = first_batch_and_its_examples(cfg)
    np.testing.assert_allclose(batch["end_frame"], batch["mask"].sum(axis=1), rtol=1e-5)
    assert batch["end_frame"].min() > cfg.data.go_frames + 10
    _batch_needs(cfg, batch, "end_frame")

    stats, voice, prompt = _cloning_prompt(cfg)
    voice_rate = tts.recording_rate(cfg, "red green", voice)
    assert prompt.rate == pytest.approx(voice_rate)
    ends = continuation.prompt_conditions(cfg, prompt, 2, None)["end_frame"]
    fps = cfg.audio.frames_per_second
    np.testing.assert_allclose(ends, [cfg.data.go_frames + len(prompt.text) / voice_rate * fps] * 2, rtol=1e-5)
    alone = continuation.prompt_conditions(cfg, tts.speech_prompt(cfg, stats, "blue sky", rate=4.0), 1, None)
    np.testing.assert_allclose(alone["end_frame"], [2 + 8 / 4.0 * fps], rtol=1e-5)
    assert "end_frame" not in continuation.prompt_conditions(cfg, tts.speech_prompt(cfg, stats, "blue"), 1, None)

    from audiolm_jax.run import run

    run(cfg)  # trains (rate dropout drawn), evaluates and samples through the one path
    assert tts.main(["--workdir", cfg.workdir, "--text", "blue", "--rate", "12", "--seconds", "0.5",
                     "--sample.griffin_lim_iters=2", "--out", str(tmp_path / "told")]) == 0


def test_teacher_forced_frames_are_each_groups_prediction_from_the_real_past(tmp_path):
    """evaluate's `cer_teacher_forced` hears these frames: group g must be what the model
    predicts from groups 0..g-1 alone (no look-ahead through the padding to one window, no
    shift), with the text it is given."""
    from audiolm_jax import continuation, decode

    cfg = tts_config(str(tmp_path / "run"))
    r, m = cfg.model.frames_per_step, cfg.audio.n_mels
    params = init_params(cfg.model, m, jax.random.key(0))
    frames = np.random.default_rng(0).standard_normal((1, 10 * r, m)).astype(np.float32)
    conditions = conditioning.condition_arrays(cfg.model.condition, texts=["red blue"])
    predicted = continuation.teacher_forced_frames(cfg, params, frames, conditions, None)
    assert predicted.shape == frames.shape
    np.testing.assert_array_equal(predicted[:, :r], frames[:, :r])  # nothing predicts the first group
    model = MelTransformer(cfg.model, m)
    groups = jnp.asarray(frames.reshape(1, 10, r * m))
    for g in (1, 4, 9):
        alone = model.apply({"params": params}, groups[:, :g], conditions=conditions)[0]["mean"][0, -1]
        np.testing.assert_allclose(predicted[0, g * r:(g + 1) * r].reshape(-1), np.asarray(alone), atol=2e-5)
    other = continuation.teacher_forced_frames(cfg, params, frames,
                                               conditioning.condition_arrays(cfg.model.condition, texts=["green"]), None)
    assert np.abs(other[:, r:] - predicted[:, r:]).max() > 1e-3  # the text reaches the prediction
    too_long = (decode.trained_window(cfg) + 2) * r
    with pytest.raises(ValueError, match="one trained window"):
        continuation.teacher_forced_frames(cfg, params, np.zeros((1, too_long, m), np.float32), conditions, None)


def test_text_reliance_is_one_when_the_text_says_nothing_new_and_the_swap_otherwise():
    """evaluate's `text_reliance`: the teacher-forced error with each recording's transcript
    swapped for the next one's, over the error with its own. Swapping identical transcripts
    changes nothing (exactly 1.0); swapping different ones is the ratio of the two errors
    `teacher_forced_speech` gives."""
    from audiolm_jax import evaluate, sample
    from audiolm_jax.stats import NormStats

    cfg = tts_config("/tmp/unused")
    r, m = cfg.model.frames_per_step, cfg.audio.n_mels
    stats = NormStats(np.full(m, -40.0, np.float32), np.full(m, 12.0, np.float32))
    sampler = sample.Sampler(cfg, init_params(cfg.model, m, jax.random.key(0)), stats, step=0)
    rng = np.random.default_rng(0)
    hop = cfg.audio.hop_length
    recordings = [(text, rng.standard_normal(12 * r * hop).astype(np.float32) * 0.1,
                   (-40.0 + 12.0 * rng.standard_normal((12 * r, m))).astype(np.float32))
                  for text in ("red blue", "green river")]
    same = evaluate.text_reliance(sampler, [("red blue", w, db) for _, w, db in recordings])
    assert same == {"text_reliance": pytest.approx(1.0, abs=1e-6), "text_reliance_utterances": 2}

    def error(text, wave, db):
        predicted = evaluate.teacher_forced_speech(sampler, db, text, wave)
        return np.mean((predicted[r:] - db[r:len(predicted)]) ** 2)

    (t0, w0, d0), (t1, w1, d1) = recordings
    expected = (error(t1, w0, d0) + error(t0, w1, d1)) / (error(t0, w0, d0) + error(t1, w1, d1))
    swapped = evaluate.text_reliance(sampler, recordings)
    assert swapped["text_reliance"] == pytest.approx(expected, rel=1e-5) and abs(expected - 1.0) > 1e-4
    assert np.isnan(evaluate.text_reliance(sampler, recordings[:1])["text_reliance"])
    own = [evaluate.teacher_forced_speech(sampler, db, text, wave) for text, wave, db in recordings]
    assert evaluate.text_reliance(sampler, recordings, own)["text_reliance"] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="1 own_frames for 2 recordings"):
        evaluate.text_reliance(sampler, recordings, own[:1])


def test_a_model_without_feedback_learns_to_speak_and_clones_from_what_it_hears(tmp_path):
    """`model.feedback` false: training lowers the loss and aligns, speech from text alone is
    the teacher-forced pass over any frames (nothing drawn is fed back), and a voice prompt,
    the only audio it hears, changes what it says."""
    from audiolm_jax import continuation

    cfg = tts_config(str(tmp_path / "run"), steps=30, learning_rate=1e-2, log_every=1)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, feedback=False, predict_residual=False),
                              sample=dataclasses.replace(cfg.sample, stop_at_gate=False, seconds=1.0,
                                                         griffin_lim_iters=2, monotonic=0, max_dwell=0))
    data = data_lib.prepare(cfg)
    result = train.train(cfg, data)
    losses = [h["loss"] for h in result.history]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:3])
    params, stats = result.state.ema_params, data.stats
    alone = continuation.draw_frames(cfg, params, stats, tts.speech_prompt(cfg, stats, "blue sky"), jax.random.key(0),
                                     None)
    text = continuation.prompt_conditions(cfg, tts.speech_prompt(cfg, stats, "blue sky"), 1, None, 200, None)
    frames = stats.normalise(alone.log_mel_db)  # text alone: the go frames are not heard either
    noise = np.random.default_rng(0).standard_normal(frames.shape).astype(np.float32)
    forced = continuation.teacher_forced_frames(cfg, params, noise, text, stats.normalised_bounds())
    np.testing.assert_allclose(forced[:, 2:], frames[:, 2:], atol=1e-3)
    voice = ("v", voices.speak("red", 3, sample_rate=8000))
    cloned = continuation.draw_frames(cfg, params, stats, tts.speech_prompt(cfg, stats, "blue sky", voice, "red"),
                                      jax.random.key(0), None)
    other = continuation.draw_frames(cfg, params, stats, tts.speech_prompt(
        cfg, stats, "blue sky", ("v", voices.speak("red", 7, sample_rate=8000)), "red"), jax.random.key(0), None)
    assert np.max(np.abs(cloned.log_mel_db[0, -10:] - other.log_mel_db[0, -10:])) > 0.1  # dB: the voice is heard
