"""The audio's level as a condition (`model.condition.level`): the loudness of the louder half
of each example's own crop in training, of the prompt at sampling, a learned null without one."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiolm_jax import conditioning, config as C, continuation, decibels, decode, train
from audiolm_jax.cli import apply_overrides
from audiolm_jax.data import Dataset, NormStats
from audiolm_jax.model import MelTransformer, init_params
from tests.helpers import random_walk_mels, tiny_config


def _level_config(workdir="/tmp/unused", **train_fields):
    cfg = tiny_config(workdir, train={"steps": 4, "checkpoint_every": 4, "eval_every": 4, **train_fields})
    return apply_overrides(cfg, ["--model.condition.level=true"])


def test_audio_levels_average_the_louder_half_of_each_rows_loudness_in_tens_of_db():
    # frames whose bins hold equal power are as loud as one bin; -inf dB bins add no power
    frame_db = np.array([[-60.0, -10.0, -20.0, -30.0, -60.0], [-5.0, -40.0, 0.0, 20.0, 20.0]], np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.float32)
    mel_db = np.repeat(frame_db[..., None], 4, axis=-1)
    np.testing.assert_allclose(decibels.frame_loudness_db(mel_db), frame_db, atol=1e-4)
    # row 0: 5 frames, the louder 3 are -10, -20, -30 dB (the quiet ones left out); row 1:
    # its valid frames -5, -40, 0 dB, the louder 2 are 0 and -5 (the masked +20s never count)
    np.testing.assert_allclose(conditioning.audio_levels(mel_db, mask), [-2.0, -0.25], rtol=1e-5)
    assert conditioning.audio_levels(mel_db, np.zeros_like(mask)).tolist() == [0.0, 0.0]
    one_loud_bin = np.full((1, 1, 4), -100.0, np.float32)
    one_loud_bin[0, 0, 0] = 0.0  # a quarter of the power of all four bins at 0 dB: -6 dB
    np.testing.assert_allclose(decibels.frame_loudness_db(one_loud_bin), [[-6.0206]], atol=1e-3)


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


def test_training_batches_carry_the_level_of_their_own_crops_dB_frames():
    cfg = _level_config()
    train_mels, eval_mels = random_walk_mels(clips=4, frames=48)
    train_mels = [m + offset for m, offset in zip(train_mels, (-3.0, -1.0, 1.0, 3.0))]  # clips 20 dB apart
    stats = NormStats(np.full(16, -30.0, np.float32), np.full(16, 10.0, np.float32))
    db = lambda mels: [stats.denormalise(m) for m in mels]
    dataset = Dataset.from_log_mels(db(train_mels), db(eval_mels), stats, C.AudioConfig(n_mels=16),
                                    C.DataConfig(segment_seconds=0.4), cfg.model.condition)
    batch = dataset.train_batch(0, 0, 8, 24)
    expected = conditioning.audio_levels(stats.denormalise(batch["mel"]), batch["mask"])
    np.testing.assert_allclose(batch["level"], expected, rtol=1e-6)
    assert np.ptp(batch["level"]) > 2.5  # the clips' 60 dB of spread, seen through the crops
    conditions = train.batch_conditions(batch, cfg.model)
    assert set(conditions) == {"level"} and conditions["level"] is batch["level"]
    with pytest.raises(ValueError, match="lack level"):
        train.batch_conditions({"mel": batch["mel"], "mask": batch["mask"]}, cfg.model)
    assert train.batch_conditions(batch, tiny_config("/tmp/unused").model) is None
    assert "level" not in Dataset.from_log_mels(db(train_mels), db(eval_mels), stats, C.AudioConfig(n_mels=16),
                                                C.DataConfig(segment_seconds=0.4)).train_batch(0, 0, 8, 24)
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
    tone = lambda amplitude: continuation.prompt_from_waveform(
        "tone", amplitude * np.sin(2 * np.pi * 440 * t).astype(np.float32), cfg)
    loud, quiet = tone(0.3), tone(0.3 / 10**1.5)  # 30 dB apart
    given = continuation.prompt_conditions(cfg, loud, 2, None)
    np.testing.assert_allclose(given["level"], [conditioning.audio_levels(
        loud.log_mel_db[None], np.ones((1, len(loud.log_mel_db))))[0]] * 2)
    quieter = continuation.prompt_conditions(cfg, quiet, 2, None)["level"]
    np.testing.assert_allclose(given["level"] - quieter, 3.0, atol=0.05)  # tens of dB
    nothing = continuation.unconditional_prompt(cfg, stats)
    assert continuation.prompt_conditions(cfg, nothing, 2, None) == {}


def test_a_level_model_trains_evaluates_and_continues_through_the_one_path(tmp_path):
    from audiolm_jax.run import run

    cfg = _level_config(str(tmp_path / "run"))
    metrics = run(cfg)  # trains (level dropout drawn), evaluates teacher-forced and continues held-out prompts
    assert metrics["steps"] == 4 and np.isfinite(metrics["val_mse"])
    wavs = sorted(p for p in (tmp_path / "run" / "samples").iterdir() if p.suffix == ".wav")
    assert len(wavs) >= cfg.sample.num_prompts
    restored = C.load_json(str(tmp_path / "run" / "config.json"))
    assert dataclasses.asdict(restored.model.condition)["level"] is True
