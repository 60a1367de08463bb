"""The sampling CLI on a checkpoint trained here for a few steps."""

import logging
import os

import numpy as np
import pytest
import soundfile as sf

from audiolm_jax import sample, train
from tests.helpers import html_links, random_walk_data, tiny_config
from tests.signals import piano_like, speech_like


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    cfg = tiny_config(str(path), model={"prenet_dropout": 0.5}, train={"steps": 4, "checkpoint_every": 4})
    train.train(cfg, random_walk_data())
    return str(path)


def test_cli_continues_prompts_at_any_rate(workdir, tmp_path, capsys):
    a, b = tmp_path / "a&b.wav", tmp_path / "stereo.flac"
    sf.write(a, piano_like(0.6, 22050, seed=1), 22050)
    sf.write(b, np.stack([speech_like(0.6, 8000)] * 2, axis=1), 8000)
    out = tmp_path / "out"
    code = sample.main(["--workdir", workdir, "--prompt", str(a), str(b), "--prompt-seconds", "0.5",
                        "--seconds", "0.75", "--num-samples", "2", "--iters", "4", "--out", str(out)])
    assert code == 0
    page = (out / "index.html").read_text()
    assert "a&amp;b" in page
    links = html_links(page)
    for link in links:
        assert (out / link).exists(), link
    full = sorted(p for p in os.listdir(out) if "_sample" in p and p.endswith(".wav"))
    assert len(full) == 4
    for name in full:
        data, rate = sf.read(out / name)
        assert rate == 8000 and len(data) == 4000 + 6000  # 0.5 s prompt + 0.75 s at 8 kHz
    s0, _ = sf.read(out / "stereo_sample0.wav")
    s1, _ = sf.read(out / "stereo_sample1.wav")
    assert not np.allclose(s0[4000:], s1[4000:])  # different seeds per sample (prenet dropout/noise)


def test_short_prompt_is_used_whole_with_a_warning(workdir, tmp_path, caplog):
    short = tmp_path / "short.wav"
    sf.write(short, piano_like(0.3, 8000), 8000)
    with caplog.at_level(logging.WARNING):
        code = sample.main(["--workdir", workdir, "--prompt", str(short), "--prompt-seconds", "1.0",
                            "--seconds", "0.25", "--num-samples", "1", "--iters", "2", "--out", str(tmp_path / "o")])
    assert code == 0
    assert "shorter than --prompt-seconds" in caplog.text
    data, _ = sf.read(tmp_path / "o" / "short_sample0.wav")
    assert len(data) == 2400 + 2000


def test_empty_workdir_and_bad_prompt_are_one_line_errors(workdir, tmp_path, capsys):
    assert sample.main(["--workdir", str(tmp_path / "nothing"), "--prompt", "x.wav", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no complete checkpoint" in err
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.1, np.nan, 0.2] * 100, np.float32), 8000, subtype="FLOAT")
    assert sample.main(["--workdir", workdir, "--prompt", str(nan), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nan.wav" in err and "non-finite" in err


def test_unconditional_generation_starts_from_silence(workdir, tmp_path):
    out = tmp_path / "u"
    assert sample.main(["--workdir", workdir, "--unconditional", "--seconds", "0.5", "--num-samples", "2",
                        "--iters", "2", "--out", str(out)]) == 0
    data, rate = sf.read(out / "unconditional_sample0.wav")
    assert rate == 8000 and len(data) == 255 + 4000  # one group of silence (2 hops - 1), then 0.5 s
    assert np.all(np.isfinite(data))
    with pytest.raises(SystemExit):
        sample.main(["--workdir", workdir, "--out", str(out)])  # neither prompts nor --unconditional
