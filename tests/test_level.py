"""The audio's level as a condition (`model.condition.level`): each example's own louder-half
mean in training, the prompt's at sampling, a learned null without one."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiolm_jax import conditioning, config as C, continuation, decode, train
from audiolm_jax.cli import apply_overrides
from audiolm_jax.data import NormStats
from audiolm_jax.model import MelTransformer, init_params
from tests.helpers import tiny_config


def _level_config(workdir="/tmp/unused", **train_fields):
    cfg = tiny_config(workdir, train={"steps": 4, "checkpoint_every": 4, "eval_every": 4, **train_fields})
    return apply_overrides(cfg, ["--model.condition.level=true"])


def test_audio_levels_average_the_louder_half_of_each_rows_frames():
    frame_levels = np.array([[-6.0, 1.0, 2.0, 3.0, -6.0], [0.5, -1.0, 4.0, 9.0, 9.0]], np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.float32)
    mel = np.repeat(frame_levels[..., None], 4, axis=-1) + np.array([-1.0, 1.0, -0.5, 0.5], np.float32)
    levels = np.asarray(conditioning.audio_levels(mel, mask))
    # row 0: 5 frames, the louder 3 are 3, 2, 1 (the quiet ones left out); row 1: the valid
    # frames 0.5, -1, 4, louder 2 of them 4 and 0.5 (the masked 9s never counted)
    np.testing.assert_allclose(levels, [2.0, 2.25], rtol=1e-6)
    assert np.asarray(conditioning.audio_levels(mel, np.zeros_like(mask))).tolist() == [0.0, 0.0]


def test_a_level_takes_conditions_without_a_conditioner_and_its_dropout_is_checked():
    cfg = _level_config()
    assert cfg.model.condition.level and cfg.model.condition.takes_conditions and not cfg.model.condition.active
    C.validate(apply_overrides(cfg, ["--sample.guidance=2"]))  # the null level is something to guide against
    with pytest.raises(C.ConfigError, match="model.condition.level_dropout"):
        apply_overrides(cfg, ["--model.condition.level_dropout=1"])
    with pytest.raises(C.ConfigError, match="sample.guidance"):
        apply_overrides(tiny_config("/tmp/unused"), ["--sample.guidance=2"])


def test_the_level_changes_the_prediction_and_a_dropped_one_is_the_null():
    cfg = _level_config().model
    model, params = MelTransformer(cfg, 16), init_params(cfg, 16, jax.random.key(0))
    groups = jnp.asarray(np.random.default_rng(0).standard_normal((1, 6, 32)), jnp.float32)
    groups = jnp.concatenate([groups, groups])  # the same frames in both rows
    predict = lambda c: np.asarray(model.apply({"params": params}, groups, conditions=c)[0]["mean"])
    told = predict({"level": np.array([-1.0, 1.5], np.float32)})
    assert np.abs(told[0] - told[1]).max() > 1e-3  # only the level differs
    absent = predict({})
    np.testing.assert_allclose(absent[0], absent[1])
    for drop in ("drop", "drop_level"):
        dropped = predict({"level": np.array([-1.0, 1.5], np.float32), drop: np.array([True, False])})
        np.testing.assert_allclose(dropped[0], absent[0], atol=1e-6)
        np.testing.assert_allclose(dropped[1], told[1], atol=1e-6)


def test_training_batches_carry_the_level_of_their_own_clean_frames():
    cfg = _level_config()
    rng = np.random.default_rng(1)
    batch = {"mel": rng.standard_normal((2, 20, 16)).astype(np.float32), "mask": np.ones((2, 20), np.float32)}
    batch["mel"][1] += 2.0
    batch["mask"][0, 12:] = 0.0
    conditions = train.batch_conditions(batch, cfg.model)
    assert set(conditions) == {"level"}
    np.testing.assert_allclose(conditions["level"], conditioning.audio_levels(batch["mel"], batch["mask"]))
    assert conditions["level"][1] > conditions["level"][0] + 1.5
    assert train.batch_conditions(batch, tiny_config("/tmp/unused").model) is None
    drops = train.condition_drops(jax.random.key(0), cfg.model.condition, jnp.arange(4096))
    assert 0.07 < float(np.mean(drops["drop_level"])) < 0.13  # level_dropout 0.1, beside `drop`
    assert np.mean(drops["drop_level"] != drops["drop"]) > 0.1  # an independent draw


def test_cached_decoding_keeps_each_rows_level_across_windows():
    """The cached decoder (the level kept in the cache after the prefill) draws what the
    full-pass reference draws past two window slides; another level draws otherwise."""
    cfg = _level_config().model
    params = init_params(cfg, 16, jax.random.key(2))
    prompt = np.random.default_rng(1).standard_normal((2, 4, 16)).astype(np.float32)
    conditions = {"level": np.array([-0.5, 1.0], np.float32)}
    run = lambda f, c: f(cfg, params, prompt, 40, jax.random.key(3), window=8, conditions=c).frames
    fast = run(decode.generate, conditions)
    np.testing.assert_allclose(fast, run(decode.generate_by_recompute, conditions), atol=1e-4)
    assert np.abs(fast[:, 4:] - run(decode.generate, {"level": conditions["level"] + 2.0})[:, 4:]).max() > 1e-3
    guided = decode.generate(cfg, params, prompt, 40, jax.random.key(3), window=8, conditions=conditions,
                             guidance=2.0).frames  # against the null level
    assert np.abs(guided[:, 4:] - fast[:, 4:]).max() > 1e-3
    with pytest.raises(ValueError, match="pass `conditions`"):
        decode.generate(cfg, params, prompt, 4, jax.random.key(3), window=8)


def test_a_continuation_is_told_its_prompts_level_and_generation_from_nothing_the_null():
    cfg = _level_config()
    stats = NormStats(np.full(16, -40.0, np.float32), np.full(16, 10.0, np.float32))
    t = np.arange(int(0.5 * cfg.audio.sample_rate)) / cfg.audio.sample_rate
    prompt = continuation.prompt_from_waveform("tone", 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32), cfg)
    frames = np.repeat(stats.normalise(prompt.log_mel_db)[None], 2, axis=0)
    given = continuation.prompt_conditions(cfg, prompt, 2, None, prompt_frames=frames)
    np.testing.assert_allclose(given["level"], conditioning.audio_levels(frames, np.ones(frames.shape[:2])))
    quiet = continuation.prompt_from_waveform("quiet", 0.01 * np.sin(2 * np.pi * 440 * t).astype(np.float32), cfg)
    quiet_frames = np.repeat(stats.normalise(quiet.log_mel_db)[None], 2, axis=0)
    quieter = continuation.prompt_conditions(cfg, quiet, 2, None, prompt_frames=quiet_frames)["level"]
    assert np.all(quieter < given["level"] - 2.0)  # 30 dB quieter: 3 standard deviations here
    nothing = continuation.unconditional_prompt(cfg, stats)
    assert continuation.prompt_conditions(cfg, nothing, 2, None) == {}
    with pytest.raises(ValueError, match="prompt's frames"):
        continuation.prompt_conditions(cfg, prompt, 2, None)


def test_a_level_model_trains_evaluates_and_continues_through_the_one_path(tmp_path):
    from audiolm_jax.run import run

    cfg = _level_config(str(tmp_path / "run"))
    metrics = run(cfg)  # trains (level dropout drawn), evaluates teacher-forced and continues held-out prompts
    assert metrics["steps"] == 4 and np.isfinite(metrics["val_mse"])
    wavs = sorted(p for p in (tmp_path / "run" / "samples").iterdir() if p.suffix == ".wav")
    assert len(wavs) >= cfg.sample.num_prompts
    restored = C.load_json(str(tmp_path / "run" / "config.json"))
    assert dataclasses.asdict(restored.model.condition)["level"] is True
