"""Hostile inputs get a clear one-line error or a documented fallback, never a deep traceback."""

import numpy as np
import pytest
import soundfile as sf

from audiolm_jax import config as C, sample, train
from audiolm_jax.audio import whole_window_frames
from audiolm_jax.data import prepare
from tests.helpers import random_walk_data, tiny_config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("hostile"))
    train.train(tiny_config(path, train={"steps": 3, "checkpoint_every": 3}), random_walk_data())
    return path


@pytest.mark.parametrize("name, make, rate", [
    ("silent", lambda: np.zeros(4000, np.float32), 8000),
    ("clipped", lambda: np.clip(3 * np.sin(np.arange(4000) / 3.0), -1, 1).astype(np.float32), 8000),
    ("ten_ms", lambda: (0.3 * np.sin(np.arange(80) / 3.0)).astype(np.float32), 8000),
    ("six_channels", lambda: np.tile((0.2 * np.sin(np.arange(4000) / 5.0))[:, None], (1, 6)).astype(np.float32), 8000),
    ("eight_k_at_44k", lambda: (0.3 * np.sin(np.arange(22050) / 7.0)).astype(np.float32), 44100),
])
def test_odd_prompts_still_give_finite_audio_of_the_asked_length(workdir, tmp_path, name, make, rate):
    path = tmp_path / f"{name}.wav"
    sf.write(path, make(), rate)
    out = tmp_path / "out"
    code = sample.main(["--workdir", workdir, "--prompt", str(path), "--sample.prompt_seconds=0.45",
                        "--sample.seconds=0.25", "--sample.num_samples=1", "--sample.griffin_lim_iters=2",
                        "--out", str(out)])
    if name == "ten_ms":  # 80 samples: not one whole-window frame, let alone frames_per_step (2): one line
        assert code == 2
        return
    assert code == 0
    data, sr = sf.read(out / f"{name}_sample0.wav")
    assert sr == 8000 and np.all(np.isfinite(data))
    used = whole_window_frames(min(len(make()) * 8000 // rate, 3600), tiny_config(str(tmp_path)).audio)
    assert len(data) == (used - used % 2) * 128 + 2000  # whole groups of whole-window frames, then 0.25 s


def test_resuming_with_another_n_mels_is_a_config_error(workdir):
    cfg = tiny_config(workdir, audio=C.AudioConfig(sample_rate=8000, n_fft=256, win_length=256, hop_length=128,
                                                   n_mels=24), train={"steps": 6, "checkpoint_every": 3})
    with pytest.raises(C.ConfigError, match=r"audio\.n_mels.*16.*checkpoints"):
        train.train(cfg, prepare(cfg))


def test_nothing_on_the_load_path_uses_pickle():
    import pathlib
    sources = pathlib.Path(__file__).parents[1].joinpath("audiolm_jax").rglob("*.py")
    for path in sources:
        text = path.read_text()
        assert "import pickle" not in text and "allow_pickle=True" not in text, path


def test_workdir_statistics_are_reused_and_checked(tmp_path):
    from audiolm_jax.data import NormStats
    from audiolm_jax.run import workdir_stats

    cfg = tiny_config(str(tmp_path))
    assert workdir_stats(cfg) is None
    NormStats(np.arange(16, dtype=np.float32), np.ones(16, np.float32)).save(str(tmp_path / "norm_stats.json"))
    np.testing.assert_array_equal(workdir_stats(cfg).mean, np.arange(16))  # computed once, then reused
    wider = tiny_config(str(tmp_path), audio=C.AudioConfig(sample_rate=8000, n_fft=256, win_length=256,
                                                           hop_length=128, n_mels=24))
    with pytest.raises(C.ConfigError, match=r"audio\.n_mels.*16.*norm_stats.json"):
        workdir_stats(wider)
    (tmp_path / "norm_stats.json").write_text('{"mean": "oops"}')
    with pytest.raises(C.ConfigError, match="norm_stats.json"):
        workdir_stats(cfg)
