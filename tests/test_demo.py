"""The embedded demo end to end, shortened by command-line overrides (a few seconds of training)."""

import json
import os
import subprocess
import sys

import numpy as np
import soundfile as sf

from audiolm_jax import config as C
from audiolm_jax.audio import whole_window_frames
from tests.helpers import html_links

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_writes_checkpoints_metrics_tensorboard_and_a_report(tmp_path):
    workdir = tmp_path / "demo"
    args = ["--train.steps=12", "--train.eval_every=6", "--train.checkpoint_every=6", "--train.log_every=3",
            "--data.synthetic_train_clips=16", "--data.synthetic_eval_clips=2", "--sample.num_prompts=2",
            "--sample.seconds=1.0", "--sample.griffin_lim_iters=8", f"--workdir={workdir}"]
    proc = subprocess.run([sys.executable, "-m", "experiments.demo", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "baseline_ratio=" in proc.stdout

    cfg = C.load_json(str(workdir / "config.json"))
    assert cfg.train.steps == 12 and cfg.workdir == str(workdir)
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert {"val_mse", "baseline_mse", "baseline_ratio"} <= set(metrics)
    assert metrics["baseline_ratio"] == metrics["val_mse"] / metrics["baseline_mse"]
    assert sorted(os.listdir(workdir / "checkpoints")) == ["12", "6"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(workdir / "tensorboard"), size_guidance={"audio": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/learning_rate", "train/grad_norm", "train/frames_per_second",
            "eval/loss", "eval/baseline_ratio"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("eval/baseline_ratio")] == [6, 12]
    assert "reconstruction/0" in tags["audio"] and len(tags["images"]) == 2

    index = workdir / "samples" / "index.html"
    links = html_links(index.read_text())
    wavs = [l for l in links if l.endswith(".wav")]
    pngs = [l for l in links if l.endswith(".png")]
    assert len(wavs) == 2 * (1 + cfg.sample.num_samples) and len(pngs) >= 2  # 2 prompts: prompt + samples
    for link in links:
        assert not os.path.isabs(link) and (workdir / "samples" / link).exists(), link
    for wav in wavs:
        data, rate = sf.read(workdir / "samples" / wav)
        assert rate == cfg.audio.sample_rate
        assert np.sqrt(np.mean(data**2)) > 1e-3  # not silent
    full = [w for w in wavs if "sample" in w][0]
    data, _ = sf.read(workdir / "samples" / full)
    prompt_frames = whole_window_frames(round(cfg.sample.prompt_seconds * cfg.audio.sample_rate), cfg.audio)
    prompt_frames -= prompt_frames % cfg.model.frames_per_step
    assert len(data) == prompt_frames * cfg.audio.hop_length + round(cfg.sample.seconds * cfg.audio.sample_rate)
