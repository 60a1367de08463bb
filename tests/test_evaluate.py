import json

import numpy as np
import pytest

from audiolm_jax import evaluate, train
from audiolm_jax.metrics import continuation_metrics
from audiolm_jax.data import prepare
from tests.helpers import tiny_config


def test_collapse_detectors_on_constructed_continuations():
    rng = np.random.default_rng(0)
    prompt = -30 + 5 * rng.standard_normal((40, 16))
    frozen = np.repeat(prompt[-1:], 30, axis=0)
    m = continuation_metrics(prompt, frozen)
    assert m["frozen_fraction"] == 1.0 and m["spectral_flux_ratio"] == 0.0 and m["silent_fraction"] == 0.0
    louder = prompt + 6.0
    m = continuation_metrics(prompt, louder)
    assert m["energy_drift_db"] == pytest.approx(6.0, abs=1e-6)
    assert m["spectral_flux_ratio"] == pytest.approx(1.0, abs=1e-6) and m["frozen_fraction"] == 0.0
    assert m["timbre_distance_db"] == pytest.approx(0.0, abs=1e-4)  # a level change keeps the timbre
    tilted = prompt + np.linspace(-10, 10, 16)  # brighter: the long-term spectrum tilts by 20 dB
    assert continuation_metrics(prompt, tilted)["timbre_distance_db"] > 5.0
    silent = np.full((30, 16), -120.0)
    assert continuation_metrics(prompt, silent)["silent_fraction"] == 1.0
    # a few bins held on the edge of the training range: stripes the frame-level detectors miss
    low, high = np.full(16, -60.0), np.full(16, 10.0)
    striped = prompt[-30:].copy()
    striped[:, :3], striped[10:, 15] = -60.0, 10.0
    m = continuation_metrics(prompt, striped, (low, high))
    assert m["pinned_fraction"] == pytest.approx((30 * 3 + 20) / (30 * 16))
    assert m["frozen_fraction"] == 0.0 and m["silent_fraction"] == 0.0
    assert continuation_metrics(prompt, prompt[-30:], (low, high))["pinned_fraction"] == 0.0
    assert "pinned_fraction" not in continuation_metrics(prompt, striped)  # no range known: not measured


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
    assert evaluate.compared_with_real(model, [None, None, None]) == {}


def test_evaluate_cli_writes_eval_json(tmp_path, capsys):
    cfg = tiny_config(str(tmp_path / "run"), train={"steps": 6, "checkpoint_every": 6, "eval_every": 6})
    train.train(cfg, prepare(cfg))
    assert evaluate.main(["--workdir", cfg.workdir, "--prompts", "2"]) == 0
    metrics = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert metrics["step"] == 6 and metrics["num_prompts"] == 2 and metrics["split"] == "validation"
    assert metrics["baseline_ratio"] == pytest.approx(metrics["val_mse"] / metrics["baseline_mse"])
    for key in ("energy_drift_db", "abs_energy_drift_db", "spectral_flux_ratio", "silent_fraction",
                "frozen_fraction", "timbre_distance_db", "resynthesis_sc_db", "real_energy_drift_db",
                "drift_vs_real_db", "pinned_fraction", "real_pinned_fraction", "real_abs_energy_drift_db"):
        assert np.isfinite(metrics[key]), key
    assert 0.0 <= metrics["pinned_fraction"] <= 1.0 and metrics["real_pinned_fraction"] < 0.05
    assert metrics["resynthesis_sc_db"] < -3.0
    assert "baseline_ratio" in capsys.readouterr().out
    assert evaluate.main(["--workdir", str(tmp_path / "empty")]) == 2
    assert "no complete checkpoint" in capsys.readouterr().err


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
