import json

import numpy as np
import pytest

from audiolm_jax import evaluate, train
from audiolm_jax.metrics import continuation_metrics, gated_level_db
from audiolm_jax.data import prepare
from tests.helpers import tiny_config


FPS = 100.0  # frames per second of the constructed log-mels


def test_collapse_detectors_on_constructed_continuations():
    rng = np.random.default_rng(0)
    prompt = -30 + 5 * rng.standard_normal((40, 16))
    frozen = np.repeat(prompt[-1:], 30, axis=0)
    m = continuation_metrics(prompt, frozen, FPS)
    assert m["frozen_fraction"] == 1.0 and m["spectral_flux_ratio"] == 0.0 and m["silent_fraction"] == 0.0
    louder = prompt + 6.0
    m = continuation_metrics(prompt, louder, FPS)
    assert m["energy_drift_db"] == pytest.approx(6.0, abs=1e-6)
    assert m["loudness_drift_db"] == pytest.approx(6.0, abs=1e-4)
    assert m["spectral_flux_ratio"] == pytest.approx(1.0, abs=1e-6) and m["frozen_fraction"] == 0.0
    assert m["timbre_distance_db"] == pytest.approx(0.0, abs=1e-4)  # a level change keeps the timbre
    tilted = prompt + np.linspace(-10, 10, 16)  # brighter: the long-term spectrum tilts by 20 dB
    assert continuation_metrics(prompt, tilted, FPS)["timbre_distance_db"] > 5.0
    silent = np.full((30, 16), -120.0)
    assert continuation_metrics(prompt, silent, FPS)["silent_fraction"] == 1.0
    # a few bins held on the edge of the training range: stripes the frame-level detectors miss
    low, high = np.full(16, -60.0), np.full(16, 10.0)
    striped = prompt[-30:].copy()
    striped[:, :3], striped[10:, 15] = -60.0, 10.0
    m = continuation_metrics(prompt, striped, FPS, (low, high))
    assert m["pinned_fraction"] == pytest.approx((30 * 3 + 20) / (30 * 16))
    assert m["frozen_fraction"] == 0.0 and m["silent_fraction"] == 0.0
    assert continuation_metrics(prompt, prompt[-30:], FPS, (low, high))["pinned_fraction"] == 0.0
    assert "pinned_fraction" not in continuation_metrics(prompt, striped, FPS)  # no range known: not measured


def test_gated_level_leaves_out_silences_whose_depth_the_frame_mean_counts():
    """A prompt that opens with 0.5 s of near-silence (-90 dB per bin) before 1 s of sound at a
    steady level, continued by 3 s of the same sound: the mean of frame dB calls that over 20 dB
    louder; the gated level (ITU-R BS.1770's relative gate) sees the same level within a
    dB, as a listener hears it. Pauses over 30% of the continuation lower its gated level by their
    share of the power (10 log10 0.7 = -1.55 dB), its frame mean by over 10 dB; a
    continuation 6 dB louder is 6 dB louder either way; one fallen silent is far quieter."""
    rng = np.random.default_rng(1)
    sound = lambda frames: -20 + rng.standard_normal((frames, 16))  # noqa: E731 (per-bin dB around -20)
    prompt = np.concatenate([np.full((50, 16), -90.0), sound(100)])  # 100 frames per second
    steady = sound(300)
    m = continuation_metrics(prompt, steady, FPS)
    assert m["energy_drift_db"] > 20.0
    assert m["loudness_drift_db"] == pytest.approx(0.0, abs=1.0)  # blocks straddling the lead-in's end count it in part
    paused = steady.copy()
    for start in (60, 160, 260):  # three 0.3 s pauses, 30% of the continuation
        paused[start:start + 30] = -90.0
    assert gated_level_db(paused, FPS) - gated_level_db(steady, FPS) == pytest.approx(10 * np.log10(0.7), abs=0.3)
    assert m["energy_drift_db"] - continuation_metrics(prompt, paused, FPS)["energy_drift_db"] > 10.0  # the frame mean
    assert continuation_metrics(prompt, steady + 6.0, FPS)["loudness_drift_db"] == pytest.approx(
        m["loudness_drift_db"] + 6.0, abs=1e-4)
    assert continuation_metrics(prompt, np.full((300, 16), -90.0), FPS)["loudness_drift_db"] < -60.0
    # a constant sound's gated level is its frame energy; a stretch shorter than a block is one block
    frame = np.full((1, 16), -20.0)
    energy = 10 * np.log10(16 * 10 ** -2.0)
    assert gated_level_db(np.repeat(frame, 200, axis=0), FPS) == pytest.approx(energy, abs=1e-4)
    assert gated_level_db(np.repeat(frame, 10, axis=0), FPS) == pytest.approx(energy, abs=1e-4)


def test_a_level_drift_is_told_from_energy_piled_into_a_few_bins():
    """Two continuations of one prompt, each about 4.5 dB louder by its gated level: one with
    every bin 4.5 dB up (a level change: the median bin moves 4.5 dB and none of the drift
    is the spectrum's shape), one with 2 of 16 bins 12 dB up and the rest where they were
    (the demo's failure: the typical bin holds its level, and the whole drift is owed to the
    shape: reshaped to the prompt's spectrum, it would not have moved)."""
    rng = np.random.default_rng(2)
    prompt = -30 + 3 * rng.standard_normal((200, 16))
    rest = -30 + 3 * rng.standard_normal((300, 16))
    level = continuation_metrics(prompt, rest + 4.5, FPS)
    piled = rest.copy()
    piled[:, 5:7] += 12.0
    shape = continuation_metrics(prompt, piled, FPS)
    assert level["loudness_drift_db"] == pytest.approx(4.5, abs=0.3)
    assert shape["loudness_drift_db"] == pytest.approx(4.5, abs=0.5)  # a power level follows its loudest bins
    assert level["median_bin_drift_db"] == pytest.approx(4.5, abs=0.3)
    assert level["shape_loudness_drift_db"] == pytest.approx(0.0, abs=0.3)
    assert shape["median_bin_drift_db"] == pytest.approx(0.0, abs=0.3)
    assert shape["shape_loudness_drift_db"] == pytest.approx(shape["loudness_drift_db"], abs=0.3)
    same = continuation_metrics(prompt, rest, FPS)  # the same sound: nothing to decompose
    assert abs(same["median_bin_drift_db"]) < 0.3 and abs(same["shape_loudness_drift_db"]) < 0.3


def test_real_continuations_are_summarised_beside_the_model():
    """Two prompts whose real continuations move +4 and -2 dB: their mean drift is +1, the
    mean of their magnitudes 3 (the scale |model drift| is read against); the model's two
    samples per prompt (+5, +7 and -2, 0) are 2 and 1 dB from them, 1.5 on average. A prompt
    without a real continuation (None) is left out."""
    real = [{"energy_drift_db": 4.0, "silent_fraction": 0.0}, None, {"energy_drift_db": -2.0, "silent_fraction": 0.5}]
    model = [[{"energy_drift_db": 5.0}, {"energy_drift_db": 7.0}], [{"energy_drift_db": 30.0}],
             [{"energy_drift_db": -2.0}, {"energy_drift_db": 0.0}]]
    out = evaluate.compared_with_real(model, real)
    assert out["real_energy_drift_db"] == pytest.approx(1.0)
    assert out["real_abs_energy_drift_db"] == pytest.approx(3.0)
    assert out["real_silent_fraction"] == pytest.approx(0.25)
    assert out["drift_vs_real_db"] == pytest.approx(1.5) and out["real_prompts"] == 2
    assert "loudness_drift_vs_real_db" not in out  # no gated level measured: not summarised
    for row in real[0], real[2]:
        row["loudness_drift_db"] = row["energy_drift_db"] / 2  # +2 and -1
    for row in model[0] + model[2]:
        row["loudness_drift_db"] = 1.0
    out = evaluate.compared_with_real(model, real)
    assert out["real_abs_loudness_drift_db"] == pytest.approx(1.5)
    assert out["loudness_drift_vs_real_db"] == pytest.approx((1.0 + 2.0) / 2)
    assert evaluate.compared_with_real(model, [None, None, None]) == {}


def test_evaluate_cli_writes_eval_json(tmp_path, capsys):
    cfg = tiny_config(str(tmp_path / "run"), train={"steps": 6, "checkpoint_every": 6, "eval_every": 6})
    train.train(cfg, prepare(cfg))
    assert evaluate.main(["--workdir", cfg.workdir, "--prompts", "2"]) == 0
    metrics = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert metrics["step"] == 6 and metrics["num_prompts"] == 2 and metrics["split"] == "validation"
    assert metrics["baseline_ratio"] == pytest.approx(metrics["val_mse"] / metrics["baseline_mse"])
    for key in ("energy_drift_db", "abs_energy_drift_db", "loudness_drift_db", "abs_loudness_drift_db",
                "real_abs_loudness_drift_db", "loudness_drift_vs_real_db", "spectral_flux_ratio", "silent_fraction",
                "frozen_fraction", "timbre_distance_db", "resynthesis_sc_db", "real_energy_drift_db",
                "drift_vs_real_db", "pinned_fraction", "real_pinned_fraction", "real_abs_energy_drift_db"):
        assert np.isfinite(metrics[key]), key
    assert 0.0 <= metrics["pinned_fraction"] <= 1.0 and metrics["real_pinned_fraction"] < 0.05
    assert metrics["resynthesis_sc_db"] < -3.0
    shown = capsys.readouterr()
    assert "baseline_ratio" in shown.out
    assert "continue held-out prompts: 100%" in shown.err  # sampling shows its progress
    assert evaluate.main(["--workdir", str(tmp_path / "empty")]) == 2
    assert "no complete checkpoint" in capsys.readouterr().err
    assert evaluate.main(["--workdir", cfg.workdir, "--tts-draws", "0"]) == 2  # refused before any sampling
    assert "--tts-draws must be at least 1, got 0" in capsys.readouterr().err
    assert evaluate.main(["--workdir", cfg.workdir, "--tts-duration-utterances", "-1"]) == 2
    assert "--tts-duration-utterances must be at least 0, got -1" in capsys.readouterr().err
    assert evaluate.main(["--workdir", cfg.workdir, "--tts-utterances", "0"]) == 2
    assert "--tts-utterances must be at least 1" in capsys.readouterr().err


def test_dnsmos_scores_speech_offline(tmp_path):
    from tests.signals import speech_like
    pytest.importorskip("speechmos")  # installed with the dev and eval extras
    clean = evaluate.dnsmos_scores(speech_like(3.0, 16000, seed=1), 16000)
    rng = np.random.default_rng(0)
    noisy = evaluate.dnsmos_scores(0.7 * speech_like(3.0, 16000, seed=1) + 0.1 * rng.standard_normal(48000).astype(np.float32), 16000)
    assert 1.0 <= noisy["ovrl"] < clean["ovrl"] <= 5.0  # noise lowers the opinion score
    cfg = tiny_config(str(tmp_path / "run"), train={"steps": 2, "checkpoint_every": 2, "eval_every": 2})
    train.train(cfg, prepare(cfg))
    metrics = evaluate.evaluate_checkpoint(cfg.workdir, num_prompts=1, dnsmos="on")
    assert 1.0 <= metrics["dnsmos_prompt_resynth_ovrl"] <= 5.0 and 1.0 <= metrics["dnsmos_continuation_ovrl"] <= 5.0
    assert metrics["dnsmos_ratio"] == pytest.approx(metrics["dnsmos_continuation_ovrl"]
                                                    / metrics["dnsmos_prompt_resynth_ovrl"])
