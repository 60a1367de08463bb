"""Decoding against its reference: the same chunks and keys, cached vs a full pass per group."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiolm_jax import decode
from audiolm_jax.config import ModelConfig
from audiolm_jax.model import init_params
from tests.helpers import tiny_config

CFG = ModelConfig(num_layers=2, d_model=32, num_heads=2, prenet_dim=32, frames_per_step=2, max_frames=32,
                  prenet_dropout=0.5)
WINDOW = 12  # positions: several slides over 12 prompt + 40 new frames


@pytest.fixture(scope="module")
def params():
    return init_params(CFG, 16, jax.random.key(0))


def prompt(seed, frames=12):
    return np.random.default_rng(seed).standard_normal((2, frames, 16)).astype(np.float32)


def test_chunk_plan_slides_half_a_window_and_never_feeds_past_it():
    plan = decode.chunk_plan(prompt_groups=20, new_groups=30, window=12)
    assert plan[0] == (11, 2)  # the prompt fills the window but one position
    assert all(context == 6 for context, _ in plan[1:])
    assert sum(new for _, new in plan) == 30
    assert all(context + new - 1 <= 12 for context, new in plan)  # last input at position window - 1
    assert decode.chunk_plan(3, 4, 12) == [(3, 4)]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("dropout", [False, True])
def test_cached_generation_equals_the_reference_past_several_slides(params, dtype, dropout):
    cfg = dataclasses.replace(CFG, dtype=dtype)
    new_frames = 40  # 20 groups: chunks (6, 7), (6, 7), (6, 6) over a 12-position window
    assert len(decode.chunk_plan(6, 20, WINDOW)) == 3
    cached = decode.generate(cfg, params, prompt(0), new_frames, jax.random.key(1), window=WINDOW,
                             prenet_dropout=dropout).frames
    slow = decode.generate_by_recompute(cfg, params, prompt(0), new_frames, jax.random.key(1), window=WINDOW,
                                        prenet_dropout=dropout).frames
    assert cached.shape == slow.shape == (2, 52, 16)
    tolerance = 1e-4 if dtype == "float32" else 0.05
    np.testing.assert_allclose(cached, slow, atol=tolerance)
    if dropout:  # the masks matter: without them the continuation is another one
        plain = decode.generate(cfg, params, prompt(0), new_frames, jax.random.key(1), window=WINDOW).frames
        assert np.max(np.abs(plain[:, 12:] - cached[:, 12:])) > 10 * tolerance


def test_a_clean_prompt_skips_prenet_dropout_on_its_frames_only(params):
    """`clean_prompt`: the prompt's groups pass the prenet undropped, generated ones dropped,
    in the cached path and the reference alike, also where a slid window still holds part
    of the prompt (a 20-group prompt: chunks (11, 2) then (6, 7) starting at group 16)."""
    long_prompt = prompt(0, frames=40)
    run = lambda fn, **kw: fn(CFG, params, long_prompt, 30, jax.random.key(1), window=WINDOW, **kw).frames
    clean = run(decode.generate, prenet_dropout=True, clean_prompt=True)
    np.testing.assert_allclose(clean, run(decode.generate_by_recompute, prenet_dropout=True, clean_prompt=True),
                               atol=1e-4)
    plain = run(decode.generate, prenet_dropout=False)
    dropped = run(decode.generate, prenet_dropout=True)
    first = slice(40, 42)  # the first new group is read from prompt positions only
    np.testing.assert_allclose(clean[:, first], plain[:, first], atol=1e-5)
    assert np.max(np.abs(clean[:, first] - dropped[:, first])) > 1e-3
    assert np.max(np.abs(clean[:, 42:] - plain[:, 42:])) > 1e-3  # generated groups are still dropped


@pytest.mark.parametrize("head", ["gaussian", "mixture"])
def test_sampled_heads_draw_the_same_in_both(params, head):
    cfg = dataclasses.replace(CFG, head=head, mixture_components=4)
    p = init_params(cfg, 16, jax.random.key(0))
    cached = decode.generate(cfg, p, prompt(0), 30, jax.random.key(3), window=WINDOW, temperature=1.0).frames
    slow = decode.generate_by_recompute(cfg, p, prompt(0), 30, jax.random.key(3), window=WINDOW,
                                        temperature=1.0).frames
    np.testing.assert_allclose(cached, slow, atol=1e-4)
    cold = decode.generate(cfg, p, prompt(0), 30, jax.random.key(3), window=WINDOW, temperature=0.0).frames
    assert not np.allclose(cold, cached)


def test_component_temperature_draws_rare_components_more_often():
    """Two components, weights 0.9 and 0.1 (means 0 and 1): at component temperature τ the
    rare one is drawn with probability 0.1^(1/τ) / (0.9^(1/τ) + 0.1^(1/τ)): 0.1 at τ = 1,
    0.25 at τ = 2, 0.012 at τ = 0.5; the cached and recompute paths draw alike at τ ≠ 1."""
    n = 20000
    outputs = {"mean": jnp.zeros((n, 1, 1)), "mixture_logits": jnp.log(jnp.array([0.9, 0.1]))[None, None].repeat(n, 0),
               "component_means": jnp.array([0.0, 1.0]).reshape(1, 1, 2, 1).repeat(n, 0),
               "component_log_scales": jnp.zeros((n, 1, 2, 1))}
    bounds = jnp.array([[-5.0], [5.0]])
    rare = lambda tau: float(jnp.mean(decode.draw_group(outputs, jax.random.key(0), 0.0, bounds, tau)[0]))
    for tau in (1.0, 2.0, 0.5):
        expected = 0.1 ** (1 / tau) / (0.9 ** (1 / tau) + 0.1 ** (1 / tau))
        assert rare(tau) == pytest.approx(expected, abs=4 * (expected / n) ** 0.5 + 1e-3)
    cfg = dataclasses.replace(CFG, head="mixture", mixture_components=4)
    p = init_params(cfg, 16, jax.random.key(0))
    run = lambda fn, tau: fn(cfg, p, prompt(0), 30, jax.random.key(3), window=WINDOW, temperature=0.5,
                             component_temperature=tau).frames
    hot = run(decode.generate, 3.0)
    np.testing.assert_allclose(hot, run(decode.generate_by_recompute, 3.0), atol=1e-4)
    assert not np.allclose(hot, run(decode.generate, 1.0))


def test_prompts_and_seeds(params):
    gen = lambda x, key: decode.generate(CFG, params, x, 8, jax.random.key(key), window=WINDOW,
                                         prenet_dropout=True).frames
    a, again, b, other_seed = gen(prompt(0), 1), gen(prompt(0), 1), gen(prompt(1), 1), gen(prompt(0), 2)
    np.testing.assert_array_equal(a, again)
    assert not np.allclose(a[:, 12:], b[:, 12:])
    assert not np.allclose(a[:, 12:], other_seed[:, 12:])
    np.testing.assert_array_equal(a[:, :12], prompt(0))  # the prompt is kept as given


def test_the_window_is_the_trained_context_not_max_frames(params, tmp_path):
    """The demo trained on 188-frame crops with max_frames 256: sampling with a window of
    max_frames ran attention at positions never trained. The window comes from the crop, so
    a larger max_frames (a capacity, no parameter depends on it) changes nothing."""
    cfg = tiny_config(str(tmp_path), model={"max_frames": 64}, data={"segment_seconds": 0.3})
    # 0.3 s at 8 kHz, hop 128: 1 + 2400 // 128 = 19 frames, 18 in whole groups of 2 = 9 groups;
    # training feeds the first 8 and predicts the last 8.
    assert decode.trained_window(cfg) == 8
    big = dataclasses.replace(cfg.model, max_frames=256)
    p = init_params(cfg.model, 16, jax.random.key(0))
    x = prompt(0, frames=8)
    window = decode.trained_window(cfg)
    small_cap = decode.generate(cfg.model, p, x, 40, jax.random.key(0), window=window).frames
    large_cap = decode.generate(big, p, x, 40, jax.random.key(0), window=window).frames
    np.testing.assert_array_equal(small_cap, large_cap)
    with pytest.raises(ValueError, match="max_frames"):
        decode.generate(cfg.model, p, x, 4, jax.random.key(0), window=33)


def test_prompt_not_in_whole_groups_is_an_error(params):
    with pytest.raises(ValueError, match="frames_per_step"):
        decode.generate(CFG, params, prompt(0, frames=7), 4, jax.random.key(0), window=WINDOW)


def test_generated_values_stay_inside_the_training_range(params):
    """Sampled tails once reached 8 training stds per bin (+100 dB frames): a generated frame
    now never leaves the per-bin range the training statistics saw."""
    low, high = np.linspace(-0.5, -0.1, 16).astype(np.float32), np.linspace(0.1, 0.3, 16).astype(np.float32)
    cfg = dataclasses.replace(CFG, head="gaussian")
    p = init_params(cfg, 16, jax.random.key(0))
    out = decode.generate(cfg, p, prompt(0), 30, jax.random.key(3), window=WINDOW, temperature=3.0,
                          bounds=(low, high)).frames
    new = out[:, 12:]
    assert np.all(new >= low - 1e-6) and np.all(new <= high + 1e-6)
    assert np.any(np.isclose(new, high)) and np.any(np.isclose(new, low))  # the bounds were needed
    np.testing.assert_array_equal(out[:, :12], prompt(0))


def test_norm_stats_record_the_training_range():
    from audiolm_jax.data import compute_norm_stats
    from audiolm_jax.stats import NormStats

    mels = [np.array([[-80.0, -20.0], [-60.0, -10.0]]), np.array([[-70.0, -30.0]])]
    stats = compute_norm_stats(mels, max_clips=2)
    np.testing.assert_array_equal(stats.low, [-80.0, -30.0])
    np.testing.assert_array_equal(stats.high, [-60.0, -10.0])
    again = NormStats.from_dict(stats.to_dict())
    np.testing.assert_array_equal(again.high, stats.high)
    low, high = again.normalised_bounds()
    np.testing.assert_allclose(stats.denormalise(high), [-60.0, -10.0], atol=1e-4)
    assert NormStats.from_dict({"mean": [0.0], "std": [1.0]}).normalised_bounds() is None  # older statistics


def no_feedback_params(cfg):
    """Parameters of a `model.feedback` false model with a random (not zero) unheard input."""
    params = init_params(cfg, 16, jax.random.key(0))
    return {**params, "unheard": jax.random.normal(jax.random.key(5), params["unheard"].shape)}


def test_without_feedback_decoding_hears_only_the_prompt_across_slides():
    """A model without feedback decodes the same cached and by recomputation, across window
    slides; what it continues depends on the heard prompt, never on its own draws: with
    nothing heard the prompt's frames change nothing."""
    cfg = dataclasses.replace(CFG, feedback=False, predict_residual=False)
    params = no_feedback_params(cfg)
    run = lambda fn, p, heard: fn(cfg, params, p, 40, jax.random.key(1), window=WINDOW,
                                  prenet_dropout=True, heard_groups=heard).frames
    cached = run(decode.generate, prompt(0, 20), 10)
    assert decode.chunk_plan(10, 20, WINDOW)[:2] == [(10, 3), (6, 7)]  # chunk 2 starts at group 7: 3 heard
    np.testing.assert_allclose(cached, run(decode.generate_by_recompute, prompt(0, 20), 10), atol=1e-4)
    other = prompt(3, 20)
    assert np.max(np.abs(run(decode.generate, other, 10)[:, 20:] - cached[:, 20:])) > 1e-3  # it hears the prompt
    deaf = run(decode.generate, prompt(0, 20), 0)[:, 20:]
    np.testing.assert_allclose(run(decode.generate, other, 0)[:, 20:], deaf, atol=1e-5)  # nothing heard


def test_without_feedback_free_running_is_one_teacher_forced_pass():
    """Nothing drawn is fed back: a continuation inside one window is the full pass's
    predictions over any frames after the heard prompt (here noise)."""
    from audiolm_jax.model import MelTransformer, group_frames, ungroup_frames

    cfg = dataclasses.replace(CFG, feedback=False, predict_residual=False, prenet_dropout=0.0)
    params = no_feedback_params(cfg)
    decoded = decode.generate(cfg, params, prompt(0, 8), 16, jax.random.key(1), window=16, heard_groups=4).frames
    noise = np.concatenate([prompt(0, 8), prompt(7, 16)], axis=1)
    outputs, _ = MelTransformer(cfg, 16).apply({"params": params}, group_frames(jnp.asarray(noise), 2),
                                               heard_before=jnp.array([4, 4]))
    predicted = np.asarray(ungroup_frames(outputs["mean"], 16))
    np.testing.assert_allclose(decoded[:, 8:], np.clip(predicted[:, 6:22], -8, 8), atol=1e-4)


def test_guidance_against_the_prompt_mixes_hearing_it_with_hearing_nothing():
    """`guidance_null="prompt"`: the null half keeps the conditions and hears no prompt, so
    the scale 0 continues as a deaf decode, 1 as the plain one, 2 as the extrapolation
    u + 2(c − u) of the two full passes; cached and recomputed agree across slides; a model
    with feedback refuses it."""
    from audiolm_jax.model import MelTransformer, group_frames, ungroup_frames

    cfg = dataclasses.replace(CFG, feedback=False, predict_residual=False, prenet_dropout=0.0)
    params = no_feedback_params(cfg)
    run = lambda fn, g, heard, frames=16, window=16: fn(
        cfg, params, prompt(0, 8), frames, jax.random.key(1), window=window, heard_groups=heard, guidance=g,
        guidance_null="prompt", temperature=0.0).frames
    plain, deaf = run(decode.generate, 1.0, 4), run(decode.generate, 1.0, 0)
    assert np.max(np.abs(plain[:, 8:] - deaf[:, 8:])) > 1e-3
    np.testing.assert_allclose(run(decode.generate, 0.0, 4), deaf, atol=1e-5)
    guided = run(decode.generate, 2.0, 4)
    model = MelTransformer(cfg, 16)
    passes = [np.asarray(ungroup_frames(model.apply({"params": params}, group_frames(jnp.asarray(guided), 2),
                                                     heard_before=jnp.array([h, h]))[0]["mean"], 16))
              for h in (4, 0)]
    extrapolated = np.clip(passes[1] + 2.0 * (passes[0] - passes[1]), -8, 8)[:, 6:22]
    np.testing.assert_allclose(guided[:, 8:], extrapolated, atol=1e-4)
    assert np.max(np.abs(guided[:, 8:] - plain[:, 8:])) > 1e-3
    np.testing.assert_allclose(run(decode.generate, 2.0, 4, 40, WINDOW),
                               run(decode.generate_by_recompute, 2.0, 4, 40, WINDOW), atol=1e-4)
    with pytest.raises(ValueError, match="model.feedback"):
        decode.generate(CFG, init_params(CFG, 16, jax.random.key(0)), prompt(0, 8), 4, jax.random.key(1),
                        window=16, guidance=2.0, guidance_null="prompt")
