import dataclasses
import os

import jax
import numpy as np
import pytest
import soundfile as sf

from audiolm_jax import report, sample
from audiolm_jax.config import ModelConfig
from audiolm_jax.data import NormStats
from audiolm_jax.model import init_params
from tests.helpers import html_links, tiny_config
from tests.signals import piano_like

CFG = ModelConfig(num_layers=2, d_model=32, num_heads=2, prenet_dim=32, frames_per_step=2, max_frames=32)


@pytest.fixture(scope="module")
def params():
    return init_params(CFG, 16, jax.random.key(0))


def prompt(seed, frames=10):
    return np.random.default_rng(seed).standard_normal((1, frames, 16)).astype(np.float32)


def test_cached_generation_equals_full_recompute(params):
    cached = sample.generate(CFG, params, prompt(0), 12, jax.random.key(1), prenet_dropout=False)
    slow = sample.generate_by_recompute(CFG, params, prompt(0), 12)
    assert cached.shape == slow.shape == (1, 22, 16)
    np.testing.assert_allclose(cached, slow, atol=1e-5)


def test_prompts_and_seeds(params):
    a = sample.generate(CFG, params, prompt(0), 8, jax.random.key(1), prenet_dropout=True)
    b = sample.generate(CFG, params, prompt(1), 8, jax.random.key(1), prenet_dropout=True)
    again = sample.generate(CFG, params, prompt(0), 8, jax.random.key(1), prenet_dropout=True)
    other_seed = sample.generate(CFG, params, prompt(0), 8, jax.random.key(2), prenet_dropout=True)
    np.testing.assert_array_equal(a, again)
    assert not np.allclose(a[:, 10:], b[:, 10:])
    assert not np.allclose(a[:, 10:], other_seed[:, 10:])
    np.testing.assert_array_equal(a[:, :10], prompt(0))  # the prompt is kept as given


def test_gaussian_head_temperature(params):
    cfg = dataclasses.replace(CFG, head="gaussian")
    p = init_params(cfg, 16, jax.random.key(0))
    cold = sample.generate(cfg, p, prompt(0), 6, jax.random.key(1), temperature=0.0)
    cold2 = sample.generate(cfg, p, prompt(0), 6, jax.random.key(7), temperature=0.0)
    warm = sample.generate(cfg, p, prompt(0), 6, jax.random.key(1), temperature=1.0)
    np.testing.assert_array_equal(cold, cold2)
    assert not np.allclose(cold, warm)


def test_generation_longer_than_the_context_slides_the_window(params):
    out = sample.generate(CFG, params, prompt(0, frames=30), 50, jax.random.key(1))
    assert out.shape == (1, 80, 16)  # context is 32 frames; 30 + 50 frames generated
    assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= sample.MAX_ABS_NORMALISED)


def test_prompt_shorter_than_a_group_is_an_error(params):
    with pytest.raises(ValueError, match="frames_per_step"):
        sample.generate(CFG, params, prompt(0, frames=1), 4, jax.random.key(0))


def test_report_links_resolve_and_names_are_escaped(tmp_path, params):
    cfg = tiny_config(str(tmp_path))
    stats = NormStats(np.full(16, -40.0, np.float32), np.full(16, 15.0, np.float32))
    sampler = sample.Sampler(cfg, init_params(cfg.model, 16, jax.random.key(0)), stats, step=0)
    prompts = [("a<b>&c", piano_like(0.25, 8000, seed=1)), ("plain", piano_like(0.25, 8000, seed=2))]
    conts = sample.continue_waveforms(sampler, prompts, 0.5, 2, jax.random.key(0), 1.0, True, "jax", 4)
    index = report.write_continuation_report(str(tmp_path / "out"), conts, cfg.audio, "t<1>")
    page = open(index).read()
    assert "a&lt;b&gt;&amp;c" in page and "a<b>" not in page and "t&lt;1&gt;" in page
    links = html_links(page)
    assert len(links) == 2 * (1 + 2 * 3)  # prompt, then (wav, png link, png img) per sample
    for link in links:
        assert os.path.exists(os.path.join(tmp_path / "out", link)), link
    for cont in conts:
        assert len(cont.full) == 2
        for wave in cont.full:
            assert len(wave) == len(cont.prompt) + 4000  # 0.5 s at 8 kHz after the prompt
    wav = [l for l in links if l.endswith("sample0.wav")][0]
    data, rate = sf.read(os.path.join(tmp_path / "out", wav))
    assert rate == 8000 and np.max(np.abs(data)) > 0.01
