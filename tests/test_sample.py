"""The continuation path (waveform in, waveform out) and its report."""

import dataclasses
import os

import jax
import numpy as np
import pytest
import soundfile as sf

from audiolm_jax import audio, continuation, report
from audiolm_jax.data import NormStats
from audiolm_jax.model import init_params
from tests.helpers import html_links, tiny_config, with_postnet_residual
from tests.signals import piano_like

STATS = NormStats(np.full(16, -40.0, np.float32), np.full(16, 15.0, np.float32))


def test_prompt_frames_are_whole_window_frames_at_sample_zero(tmp_path):
    """r = 2 and a prompt of an odd frame count: frames were dropped at the start while the
    splice assumed frame 0 at sample 0, and the last frame saw the zero-padded edge."""
    cfg = tiny_config(str(tmp_path), audio={"top_db": None})  # 8 kHz, n_fft 256, hop 128, r = 2; no per-clip floor
    t = np.arange(8000) / 8000
    long = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)).astype(np.float32)
    cut = long[:1950]  # 1 + 1950 // 128 = 16 frames centred; frames 0..14 have whole windows
    prompt = continuation.prompt_from_waveform("p", cut, cfg)
    reference = np.asarray(audio.log_mel_jax(long[None], cfg.audio))[0]
    assert prompt.log_mel_db.shape == (14, 16)  # 15 whole-window frames, cut to whole groups at the end
    np.testing.assert_allclose(prompt.log_mel_db, reference[:14], atol=1e-3)  # the last frame too
    edge = np.asarray(audio.log_mel_jax(cut[None], cfg.audio))[0]
    assert np.max(np.abs(edge[15] - reference[15])) > 0.5  # what the old path fed the model last
    assert len(prompt.waveform) == 14 * 128  # frame 14, the first generated, is centred here
    np.testing.assert_array_equal(prompt.waveform, cut[: 14 * 128])
    with pytest.raises(ValueError, match="at least"):
        continuation.prompt_from_waveform("short", cut[:200], cfg)


def test_unconditional_start_is_a_training_frame_not_digital_silence(tmp_path):
    cfg = tiny_config(str(tmp_path))
    start = continuation.unconditional_prompt(cfg, STATS)
    assert start.log_mel_db.shape == (2, 16) and len(start.waveform) == 0
    np.testing.assert_array_equal(STATS.normalise(start.log_mel_db), 0.0)  # the training mean
    silence = np.asarray(audio.log_mel_jax(np.zeros((1, 255), np.float32), cfg.audio))[0]
    assert np.all(STATS.normalise(silence) < -3.5)  # -100 dB: far outside every training crop


def test_continue_prompts_counts_its_prompts_on_a_labelled_bar(tmp_path, capsys):
    cfg = tiny_config(str(tmp_path), sample={"num_samples": 1, "seconds": 0.25, "griffin_lim_iters": 2})
    params = init_params(cfg.model, 16, jax.random.key(0))
    prompts = [continuation.prompt_from_waveform(name, piano_like(0.25, 8000, seed=seed), cfg)
               for name, seed in (("a", 1), ("b", 2))]
    labelled = continuation.continue_prompts(cfg, params, STATS, prompts, jax.random.key(0), progress="continue two")
    shown = capsys.readouterr().err
    assert "continue two: 100%" in shown and "2/2" in shown
    quiet = continuation.continue_prompts(cfg, params, STATS, prompts, jax.random.key(0))
    assert capsys.readouterr().err == ""  # no label, no bar
    for a, b in zip(labelled, quiet):  # the bar changes nothing drawn
        np.testing.assert_array_equal(a.full_log_mel[0], b.full_log_mel[0])


def test_continuations_splice_at_the_first_generated_frame(tmp_path):
    cfg = tiny_config(str(tmp_path), sample={"num_samples": 2, "seconds": 0.5, "griffin_lim_iters": 4})
    params = init_params(cfg.model, 16, jax.random.key(0))
    conts = continuation.continue_waveforms(cfg, params, STATS, [("a", piano_like(0.25, 8000, seed=1))],
                                            jax.random.key(0))
    (cont,) = conts
    assert cont.prompt_frames == 14 and len(cont.prompt) == 14 * 128
    assert cont.prompt_seconds == 14 * 128 / 8000
    for wave, log_mel in zip(cont.full, cont.full_log_mel):
        assert len(wave) == 14 * 128 + 4000
        assert log_mel.shape[0] == 14 + 32  # 0.5 s = 31.25 frames → whole groups
        np.testing.assert_array_equal(wave[: 14 * 128 - 512], cont.prompt[: 14 * 128 - 512])  # before the fade
        np.testing.assert_allclose(log_mel[:14], continuation.prompt_from_waveform(
            "a", piano_like(0.25, 8000, seed=1), cfg).log_mel_db, atol=1e-4)


def test_report_links_resolve_and_names_are_escaped(tmp_path):
    cfg = tiny_config(str(tmp_path), sample={"num_samples": 2, "seconds": 0.5, "griffin_lim_iters": 4},
                      model={"prenet_dropout": 0.5})
    params = init_params(cfg.model, 16, jax.random.key(0))
    prompts = [("a<b>&c", piano_like(0.25, 8000, seed=1)), ("plain", piano_like(0.25, 8000, seed=2))]
    conts = continuation.continue_waveforms(cfg, params, STATS, prompts, jax.random.key(0))
    conts[1] = dataclasses.replace(conts[1], text="say <this> & that")  # a spoken row shows its text
    index = report.write_continuation_report(str(tmp_path / "out"), conts, cfg.audio, "t<1>")
    page = open(index).read()
    assert "a&lt;b&gt;&amp;c" in page and "a<b>" not in page and "t&lt;1&gt;" in page
    assert page.count('<q class="text">') == 1 and "<q class=\"text\">say &lt;this&gt; &amp; that</q>" in page
    links = html_links(page)
    for link in links:
        assert os.path.exists(os.path.join(tmp_path / "out", link)), link
    wav = [l for l in links if l.endswith("sample0.wav")][0]
    data, rate = sf.read(os.path.join(tmp_path / "out", wav))
    assert rate == 8000 and np.max(np.abs(data)) > 0.01


@pytest.mark.parametrize("gate_bias, new_frames", [(10.0, 2), (-10.0, 32)])
def test_stop_at_gate_ends_each_sample_where_its_gate_fires(tmp_path, gate_bias, new_frames):
    cfg = tiny_config(str(tmp_path), model={"gate": True},
                      sample={"num_samples": 2, "seconds": 0.5, "griffin_lim_iters": 2, "stop_at_gate": True})
    params = init_params(cfg.model, 16, jax.random.key(0))
    params = {**params, "gate": {**params["gate"], "bias": np.full(1, gate_bias, np.float32)}}
    (cont,) = continuation.continue_waveforms(cfg, params, STATS, [("a", piano_like(0.25, 8000, seed=1))],
                                              jax.random.key(0))
    for wave, log_mel in zip(cont.full, cont.full_log_mel):  # a gate that always fires keeps one group
        assert log_mel.shape[0] == 14 + new_frames
        assert len(wave) == min((14 + new_frames) * 128, 14 * 128 + 4000)


def test_a_postnet_refines_the_drawn_frames_and_keeps_the_prompts(tmp_path):
    cfg = tiny_config(str(tmp_path), model={"postnet_layers": 2, "postnet_channels": 8},
                      sample={"seconds": 0.5, "temperature": 0.0, "griffin_lim_iters": 2})
    untrained = init_params(cfg.model, 16, jax.random.key(0))  # its post-net's last convolution is zero
    trained = with_postnet_residual(untrained, jax.random.key(1))
    prompt = [("a", piano_like(0.25, 8000, seed=1))]
    (plain,), (refined,) = (continuation.continue_waveforms(cfg, p, STATS, prompt, jax.random.key(0))
                            for p in (untrained, trained))
    before, after = plain.full_log_mel[0], refined.full_log_mel[0]
    np.testing.assert_array_equal(after[:14], before[:14])  # the prompt's frames as they were
    assert np.mean(np.abs(after[14:] - before[14:])) > 0.5  # dB: the drawn frames refined
    drawn = STATS.normalise(before)[None]  # what the decoder drew is what was refined (clipped to the bounds)
    expected = continuation.refined_draws(cfg, trained, np.concatenate([np.zeros((1, 2, 16)), drawn], 1), 16, None)
    np.testing.assert_allclose(STATS.normalise(after), expected[0, 2:], atol=1e-4)
