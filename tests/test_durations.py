"""Text read by durations (`model.condition.text_alignment="durations"`): monotonic alignment
search against brute force, the per-frame track, a voice prompt's partial alignment, and a
tiny model that learns its alignment, speaks each character for its predicted frames and
decodes the same cached or recomputed."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiolm_jax import alignment, conditioning, config as C, data as data_lib, train, tts
from audiolm_jax.model import init_params, next_group_rolls
from tests.helpers import tts_config


def _best_path_by_enumeration(log_likelihood: np.ndarray) -> np.ndarray:
    """The likeliest monotonic path of all T frames through all S characters, each at least one frame."""
    chars, frames = log_likelihood.shape
    best, best_path = -np.inf, None
    for cuts in itertools.combinations(range(1, frames), chars - 1):
        bounds = (0,) + cuts + (frames,)
        path = np.concatenate([np.full(bounds[i + 1] - bounds[i], i) for i in range(chars)])
        score = log_likelihood[path, np.arange(frames)].sum()
        if score > best:
            best, best_path = score, path
    return best_path


def test_monotonic_alignment_search_finds_the_likeliest_path_and_marks_padding():
    rng = np.random.default_rng(0)
    for _ in range(25):
        chars = int(rng.integers(1, 5))
        frames = int(rng.integers(chars, 9))
        scores = rng.normal(size=(6, 10)).astype(np.float32)  # padded beyond (chars, frames)
        path = np.asarray(alignment.monotonic_alignment(jnp.asarray(scores), jnp.int32(chars), jnp.int32(frames)))
        np.testing.assert_array_equal(path[:frames], _best_path_by_enumeration(scores[:chars, :frames].astype(np.float64)))
        assert (path[frames:] == -1).all()
    empty = alignment.monotonic_alignment(jnp.zeros((3, 5)), jnp.int32(0), jnp.int32(5))
    assert (np.asarray(empty) == -1).all()


def test_search_under_per_character_means_recovers_the_durations_that_made_the_frames():
    """Frames made from three characters' mean frames for 3, 5 and 2 frames (plus a little
    noise) are aligned back to exactly those durations; padding frames count for none."""
    rng = np.random.default_rng(1)
    prior = rng.normal(size=(1, 4, 8)).astype(np.float32)  # the 4th is padding
    durations = [3, 5, 2]
    frames = np.concatenate([np.repeat(prior[:, i : i + 1], d, axis=1) for i, d in enumerate(durations)], axis=1)
    frames = np.pad(frames + 0.05 * rng.normal(size=frames.shape), ((0, 0), (0, 4), (0, 0))).astype(np.float32)
    path = alignment.batch_alignment(jnp.asarray(prior), jnp.asarray(frames), jnp.asarray([[1, 1, 1, 0]]),
                                     jnp.asarray([[1] * 10 + [0] * 4]))
    np.testing.assert_array_equal(np.asarray(alignment.path_durations(path, 4)), [[3, 5, 2, 0]])


def test_the_track_tells_each_frame_its_character_progress_and_duration():
    track = np.asarray(alignment.aligned_text(np.array([[2, 1, 3, 0], [1, 1, 0, 0]]), 2, 9))
    np.testing.assert_array_equal(track[0, :, 0], [0, 0, 1, 1, 2, 3, 3, 3, 0])
    np.testing.assert_allclose(track[0, 2:8, 1], [0.25, 0.75, 0.5, 1 / 6, 0.5, 5 / 6], rtol=1e-6)
    np.testing.assert_allclose(track[0, 2:8, 2], np.log([2, 2, 1, 3, 3, 3]), rtol=1e-6)
    np.testing.assert_array_equal(track[1, :, 0], [0, 0, 1, 2, 0, 0, 0, 0, 0])
    assert (track[:, :2] == 0).all()  # the go frames hear no character
    per_position = np.asarray(next_group_rolls(jnp.asarray(track[:, :8]), 2))
    assert per_position.shape == (2, 3, 6)  # position i is told group i + 1's frames
    np.testing.assert_array_equal(per_position[0, 0, [0, 3]], [1, 1])


def test_the_duration_offset_learns_the_utterance_lengths_that_median_durations_miss():
    """A row's expected length is its characters' exp(log duration + offset) summed: its
    squared log error against the found frames is `total_duration_sq`; only the offset
    learns from it (the duration predictor's gradient is stopped), and the offset where its
    gradient vanishes is the closed form mean(log found − log Σ exp(log duration))."""
    from audiolm_jax.model import TextPrior

    rng = np.random.default_rng(4)
    prior = rng.normal(size=(2, 4, 8)).astype(np.float32)
    made = [[3, 5, 2, 0], [6, 4, 0, 0]]  # frames per character of each row (0: padding)
    frames = np.zeros((2, 14, 8), np.float32)
    for b, row in enumerate(made):
        spoken = np.concatenate([np.repeat(prior[b, i : i + 1], d, axis=0) for i, d in enumerate(row) if d])
        frames[b, : len(spoken)] = spoken + 0.05 * rng.normal(size=spoken.shape)
    mask = np.array([[1] * 10 + [0] * 4, [1] * 10 + [0] * 4], np.float32)
    text_mask = jnp.asarray([[1, 1, 1, 0], [1, 1, 0, 0]], jnp.float32)
    predictor = TextPrior(8, 16, jnp.float32)
    memory = jnp.asarray(rng.normal(size=(2, 4, 16)), jnp.float32)
    params = predictor.init(jax.random.key(0), memory)["params"]

    def total_sq(p):
        _, log_durations, expected = predictor.apply({"params": p}, memory)
        outputs = {"text_prior": jnp.asarray(prior), "log_durations": log_durations, "log_expected_durations": expected}
        return alignment.aligned_by_search(outputs, jnp.asarray(frames), jnp.asarray(mask), text_mask, 0)[1][
            "total_duration_sq"]

    log_durations = np.asarray(predictor.apply({"params": params}, memory)[1])
    medians = np.sum(np.exp(log_durations) * np.asarray(text_mask), axis=1)
    np.testing.assert_allclose(total_sq(params), np.sum(np.log(medians / 10.0) ** 2), rtol=1e-4)
    grads = jax.grad(total_sq)(params)
    assert all(np.abs(np.asarray(g)).max() == 0.0 for name, g in jax.tree_util.tree_leaves_with_path(grads)
               if "log_duration_offset" not in jax.tree_util.keystr(name))
    assert float(grads["log_duration_offset"]) != 0.0
    best = {**params, "log_duration_offset": jnp.float32(np.mean(np.log(10.0 / medians)))}
    assert abs(float(jax.grad(total_sq)(best)["log_duration_offset"])) < 1e-4


def test_synthesis_from_text_alone_speaks_for_the_offset_durations_and_a_rate_overrides_them():
    """Text alone lasts exp(offset) times the predicted medians (an offset of log 2: twice
    the frames); told a rate, the text takes its characters over that rate whatever the
    offset."""
    from audiolm_jax import continuation, stats as stats_lib

    cfg = _durations_config()
    params = init_params(cfg.model, cfg.audio.n_mels, jax.random.key(5))
    stats = stats_lib.NormStats(np.zeros(cfg.audio.n_mels, np.float32), np.ones(cfg.audio.n_mels, np.float32))
    doubled = {**params, "text_prior": {**params["text_prior"], "log_duration_offset": jnp.float32(np.log(2.0))}}
    for rate in (None, 5.0):
        prompt = tts.speech_prompt(cfg, stats, "the quiet river", rate=rate)
        conditions = continuation.prompt_conditions(cfg, prompt, 1, None, 200, None)
        frames = [continuation.synthesis_track(cfg, p, prompt, conditions, None, 1)[1] for p in (params, doubled)]
        if rate is None:
            assert frames[1] == pytest.approx(2 * frames[0], abs=len("the quiet river"))  # each rounded alone
            assert frames[1] > 1.5 * frames[0]
        else:
            assert frames[0] == frames[1] == pytest.approx(len("the quiet river") / rate * cfg.audio.frames_per_second,
                                                           rel=0.15)


def test_a_checkpoint_written_before_the_duration_offset_restores_with_none(tmp_path):
    """Sampling restores a durations checkpoint whose params lack `log_duration_offset` (it
    was trained before the offset existed) with an offset of 0, the model as it was trained;
    one that has it keeps its value."""
    from audiolm_jax import checkpoint, stats as stats_lib

    cfg = _durations_config(str(tmp_path))
    params = init_params(cfg.model, cfg.audio.n_mels, jax.random.key(6))
    stats = stats_lib.NormStats(np.zeros(cfg.audio.n_mels, np.float32), np.ones(cfg.audio.n_mels, np.float32))
    older = {**params, "text_prior": {k: v for k, v in params["text_prior"].items() if k != "log_duration_offset"}}
    newer = {**params, "text_prior": {**params["text_prior"], "log_duration_offset": jnp.float32(0.25)}}
    mngr = checkpoint.manager(str(tmp_path))
    for step, saved in ((1, older), (2, newer)):
        checkpoint.save(mngr, step, {"params": saved, "ema_params": saved}, cfg, stats, force=True)
    mngr.wait_until_finished()
    mngr.close()
    reader = checkpoint.manager(str(tmp_path), read_only=True)  # as sampling opens it
    restored = [checkpoint.restore_params(reader, step, cfg, use_ema=True) for step in (1, 2)]
    reader.close()
    assert [float(r["text_prior"]["log_duration_offset"]) for r in restored] == [0.0, 0.25]
    np.testing.assert_array_equal(restored[0]["text_prior"]["prior"]["kernel"], params["text_prior"]["prior"]["kernel"])


def test_training_resumes_a_checkpoint_written_before_the_duration_offset(tmp_path):
    """A durations run whose checkpoint lacks `log_duration_offset` (params, EMA params and
    Adam's moments) resumes with the offset 0 and zero moments for it, every stored leaf as
    saved, and trains the offset from there."""
    from audiolm_jax import checkpoint

    cfg = _durations_config(str(tmp_path / "run"), steps=3)
    data = data_lib.prepare(cfg)
    tx = train.optimizer(cfg.train)
    fresh = train.init_state(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=5)), tx)
    without = lambda p: {**p, "text_prior": {k: v for k, v in p["text_prior"].items() if k != "log_duration_offset"}}
    params = without(fresh.params)  # another seed's: unlike the fresh start train.train would make
    older = train.TrainState(step=jnp.int32(1), params=params, opt_state=tx.init(params),
                             ema_params=without(fresh.ema_params), rng=fresh.rng)
    mngr = checkpoint.manager(cfg.workdir)
    checkpoint.save(mngr, 1, older, cfg, data.stats, force=True)
    mngr.wait_until_finished()
    mngr.close()
    reader = checkpoint.manager(cfg.workdir, read_only=True)
    restored = checkpoint.restore_state(reader, 1, train.abstract_state(cfg, tx, train.make_mesh()))
    reader.close()
    adam = restored.opt_state[1][0]
    assert [float(t["text_prior"]["log_duration_offset"]) for t in (restored.params, restored.ema_params,
                                                                    adam.mu, adam.nu)] == [0.0] * 4
    np.testing.assert_array_equal(restored.params["text_prior"]["prior"]["kernel"],
                                  params["text_prior"]["prior"]["kernel"])
    assert int(restored.step) == 1
    result = train.train(cfg, data)
    assert int(result.state.step) == 3
    assert float(result.state.params["text_prior"]["log_duration_offset"]) != 0.0


def test_synthesis_durations_round_scale_and_keep_a_prompts_own():
    log_frames = np.log(np.array([[2.0, 0.3, 4.4, 9.0]]))
    mask = np.array([[1, 1, 1, 0]])
    np.testing.assert_array_equal(alignment.synthesis_durations(log_frames, mask), [[2, 1, 4, 0]])
    np.testing.assert_array_equal(alignment.synthesis_durations(log_frames, mask, 2.0), [[4, 1, 9, 0]])
    fixed = np.array([[7, 0, 0, 0]])
    np.testing.assert_array_equal(alignment.synthesis_durations(log_frames, mask, 1.0, fixed), [[7, 1, 4, 0]])


def test_a_prompts_frames_align_to_the_characters_they_speak():
    """Six frames that speak characters 0, 1, 2 for two frames each leave characters 3 and 4
    (still to be said) without frames."""
    rng = np.random.default_rng(2)
    prior = rng.normal(size=(5, 8)).astype(np.float32)
    frames = np.repeat(prior[:3], 2, axis=0) + 0.05 * rng.normal(size=(6, 8)).astype(np.float32)
    scores = np.asarray(alignment.frame_log_likelihoods(jnp.asarray(prior[None]), jnp.asarray(frames[None])))[0]
    np.testing.assert_array_equal(alignment.partial_alignment(scores, 5), [2, 2, 2, 0, 0])
    np.testing.assert_array_equal(alignment.partial_alignment(scores, 0), [0, 0, 0, 0, 0])


def _durations_config(workdir="/tmp/unused", steps=4, **train_fields):
    cfg = tts_config(workdir, steps, **train_fields)
    condition = dataclasses.replace(cfg.model.condition, text_alignment="durations")
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, condition=condition, feedback=False,
                                                              predict_residual=False))


def test_durations_need_a_text_and_no_self_feeding():
    cfg = _durations_config()
    C.validate(cfg)
    with pytest.raises(C.ConfigError, match="model.condition.text_alignment"):
        C.validate(dataclasses.replace(cfg, model=dataclasses.replace(
            cfg.model, condition=C.ConditionConfig(label=True, text_alignment="durations"))))
    with pytest.raises(C.ConfigError, match="train.self_feed"):
        C.validate(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, self_feed=0.2)))
    with pytest.raises(C.ConfigError, match="train.text_prior_weight"):
        C.validate(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, text_prior_weight=-1.0)))


def test_cached_decoding_of_a_durations_model_equals_the_recompute_reference_and_follows_the_track():
    from audiolm_jax import decode

    cfg = dataclasses.replace(_durations_config().model, prenet_dropout=0.0, feedback=True)
    params = init_params(cfg, 16, jax.random.key(2))
    conditions = conditioning.condition_arrays(cfg.condition, texts=["the quiet river"] * 2)
    prompt = np.random.default_rng(1).standard_normal((2, 4, 16)).astype(np.float32)
    slow = np.array([[3] * 15], np.int32).repeat(2, axis=0)
    conditions["aligned_text"] = np.asarray(alignment.aligned_text(slow, 4, 4 + 48))
    run = lambda f, c: f(cfg, params, prompt, 40, jax.random.key(3), window=8, conditions=c).frames
    fast = run(decode.generate, conditions)
    np.testing.assert_allclose(fast, run(decode.generate_by_recompute, conditions), atol=1e-4)
    quick = {**conditions, "aligned_text": np.asarray(alignment.aligned_text(slow // 3, 4, 4 + 48))}
    assert np.abs(fast[:, 4:] - run(decode.generate, quick)[:, 4:]).max() > 1e-3


def test_a_durations_model_learns_its_alignment_and_speaks_for_its_predicted_durations(tmp_path):
    """Training lowers the decoder's loss and the prior's error; text alone is spoken for
    exactly the frames its predicted durations sum to, each character in order, and is the
    teacher-forced pass over any frames (nothing drawn fed back); another text says
    something else; told a rate it takes the text's characters over it; a voice prompt aligns
    to its own transcript's characters."""
    from audiolm_jax import continuation

    cfg = _durations_config(str(tmp_path / "run"), steps=30, learning_rate=1e-2, log_every=1)
    cfg = dataclasses.replace(cfg, sample=dataclasses.replace(cfg.sample, seconds=1.0, griffin_lim_iters=2,
                                                              monotonic=0, max_dwell=0))
    data = data_lib.prepare(cfg)
    result = train.train(cfg, data)
    history = result.history
    assert np.mean([h["loss"] for h in history[-5:]]) < 0.8 * np.mean([h["loss"] for h in history[:3]])
    assert np.mean([h["text_prior_mse"] for h in history[-5:]]) < np.mean([h["text_prior_mse"] for h in history[:3]])
    assert {"text_prior_mse", "duration_error", "total_duration_error"} <= set(result.eval_metrics)
    assert float(result.state.params["text_prior"]["log_duration_offset"]) != 0.0  # trained on the totals
    params, stats = result.state.ema_params, data.stats

    prompt = tts.speech_prompt(cfg, stats, "blue sky")
    drawn = continuation.draw_frames(cfg, params, stats, prompt, jax.random.key(0), None)
    conditions = continuation.prompt_conditions(cfg, prompt, 1, None, 200, None)
    track, new_frames = continuation.synthesis_track(cfg, params, prompt, conditions, None, 1)
    start = continuation.audio_start_frame(cfg, prompt)
    assert int(drawn.ends[0]) == start + new_frames  # the text's end, known before decoding
    spoken = np.rint(track[0, :, 0]).astype(int)
    assert (spoken[start : start + new_frames] > 0).all() and (np.diff(spoken[start : start + new_frames]) >= 0).all()
    assert set(spoken[spoken > 0]) == set(range(1, len("blue sky") + 1))  # every character, in order
    alignments = drawn.alignments[0]
    assert alignments.shape[1] == len("blue sky") and (np.argmax(alignments[alignments.sum(1) > 0], 1)[1:] >= 0).all()

    frames = stats.normalise(drawn.log_mel_db)
    noise = np.random.default_rng(0).standard_normal(frames.shape).astype(np.float32)
    conditions["aligned_text"] = next_group_rolls(jnp.asarray(track[:, : frames.shape[1]]), cfg.model.frames_per_step)
    inputs = np.asarray(noise).reshape(1, -1, cfg.model.frames_per_step * cfg.audio.n_mels)[:, :-1]
    told = {k: v for k, v in conditions.items() if k in ("text", "text_mask", "aligned_text")}
    forced = np.asarray(continuation._teacher_forced_means(cfg.model, cfg.audio.n_mels, params, inputs, told))
    low, high = stats.normalised_bounds()
    forced = np.clip(forced.reshape(1, -1, cfg.audio.n_mels), low, high)
    end = int(drawn.ends[0])
    np.testing.assert_allclose(forced[:, : end - 2], frames[:, 2:end], atol=1e-3)
    found = continuation.text_alignments(cfg, params, frames, {k: told[k] for k in ("text", "text_mask")},
                                         np.array([frames.shape[1]]))[0]  # frames given: the search's alignment
    focus = np.argmax(found[found.sum(1) > 0], axis=1)
    assert found.shape[1] == len("blue sky") and (np.diff(focus) >= 0).all() and focus[0] == 0
    other = continuation.draw_frames(cfg, params, stats, tts.speech_prompt(cfg, stats, "red green"),
                                     jax.random.key(0), None)
    shortest = min(other.log_mel_db.shape[1], drawn.log_mel_db.shape[1])
    assert np.abs(other.log_mel_db[0, 2:shortest] - drawn.log_mel_db[0, 2:shortest]).max() > 0.1

    told_rate = tts.speech_prompt(cfg, stats, "blue sky", rate=4.0)  # 8 characters at 4 per second: 2 s
    _, told_frames = continuation.synthesis_track(cfg, params, told_rate, conditions, None, 1)
    assert told_frames == pytest.approx(2.0 * cfg.audio.frames_per_second, rel=0.15)

    from audiolm_jax.data import voices

    voice = ("v", voices.speak("red", 3, sample_rate=8000))
    cloned = tts.speech_prompt(cfg, stats, "blue sky", voice, "red")
    prompt_frames = stats.normalise(cloned.log_mel_db)
    clone_conditions = continuation.prompt_conditions(cfg, cloned, 1, None, 200, prompt_frames[None])
    clone_track, clone_new = continuation.synthesis_track(cfg, params, cloned, clone_conditions, prompt_frames, 1)
    prompt_start = continuation.audio_start_frame(cfg, cloned)
    heard = np.rint(clone_track[0, prompt_start : prompt_start + len(prompt_frames), 0]).astype(int)
    assert heard[0] == 1 and (heard > 0).all() and (np.diff(heard) >= 0).all()  # the prompt speaks its first characters
    assert clone_new > 0


def test_searched_conditions_carry_the_encoded_text_so_a_pass_skips_the_encoder_and_agrees():
    """`searched_conditions` hands the prior pass's encoded context on: the decoder pass that
    reads it predicts what re-encoding the text would, and its gradient is the same."""
    from audiolm_jax.model import ENCODED_CONTEXT, MelTransformer, group_frames, searched_conditions

    cfg = _durations_config().model
    model, params = MelTransformer(cfg, 16), init_params(cfg, 16, jax.random.key(2))
    conditions = conditioning.condition_arrays(cfg.condition, texts=["the quiet river", "four mountains"])
    mel = jnp.asarray(np.random.default_rng(3).standard_normal((2, 24, 16)), jnp.float32)
    inputs = group_frames(mel, cfg.frames_per_step)[:, :-1]

    def loss(p, reuse):
        fed = searched_conditions(model, p, mel, conditions, 4)[0]
        assert set(ENCODED_CONTEXT) <= set(fed)
        if not reuse:
            fed = {k: v for k, v in fed.items() if k not in ENCODED_CONTEXT}
        return jnp.sum(model.apply({"params": p}, inputs, conditions=fed)[0]["mean"] ** 2)

    reused, encoded = (jax.value_and_grad(loss)(params, flag) for flag in (True, False))
    np.testing.assert_allclose(reused[0], encoded[0], rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(reused[1]), jax.tree_util.tree_leaves(encoded[1])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert np.abs(jax.tree_util.tree_leaves(reused[1]["conditioner"])[0]).max() > 0
