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
    code = sample.main(["--workdir", workdir, "--prompt", str(a), str(b), "--sample.prompt_seconds=0.45",
                        "--sample.seconds", "0.75", "--sample.num_samples=2", "--sample.griffin_lim_iters=4",
                        "--out", str(out)])
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
        # 0.45 s prompt: its 28 whole-window frames (3584 samples), then 0.75 s at 8 kHz
        assert rate == 8000 and len(data) == 3584 + 6000
    s0, _ = sf.read(out / "stereo_sample0.wav")
    s1, _ = sf.read(out / "stereo_sample1.wav")
    assert not np.allclose(s0[3584:], s1[3584:])  # different seeds per sample (prenet dropout/noise)


def test_short_prompt_is_used_whole_with_a_warning(workdir, tmp_path, caplog):
    short = tmp_path / "short.wav"
    sf.write(short, piano_like(0.3, 8000), 8000)
    with caplog.at_level(logging.WARNING):
        code = sample.main(["--workdir", workdir, "--prompt", str(short), "--sample.prompt_seconds=0.45",
                            "--sample.seconds=0.25", "--sample.griffin_lim_iters=2", "--out", str(tmp_path / "o")])
    assert code == 0
    assert "shorter than sample.prompt_seconds" in caplog.text
    data, _ = sf.read(tmp_path / "o" / "short_sample0.wav")
    assert len(data) == 2304 + 2000  # 18 whole-window frames of 0.3 s, then 0.25 s


def test_settings_are_the_checkpoints_unless_overridden(workdir, tmp_path, capsys):
    """The CLI's own defaults (3 s prompt, 8 s out) used to ignore the checkpoint's SampleConfig."""
    wave = tmp_path / "p.wav"
    sf.write(wave, piano_like(1.0, 8000, seed=4), 8000)
    assert sample.main(["--workdir", workdir, "--prompt", str(wave), "--out", str(tmp_path / "d")]) == 0
    data, _ = sf.read(tmp_path / "d" / "p_sample0.wav")
    assert len(data) == 1792 + 4000  # tiny_config: 0.25 s prompt (14 whole frames), 0.5 s out
    with pytest.raises(SystemExit):
        sample.main(["--workdir", workdir, "--prompt", str(wave), "--model.d_model=8", "--out", str(tmp_path / "e")])
    assert "--sample.<field>=value" in capsys.readouterr().err
    assert sample.main(["--workdir", workdir, "--prompt", str(wave), "--sample.seconds=-1",
                        "--out", str(tmp_path / "e")]) == 2
    assert "sample.seconds" in capsys.readouterr().err


def test_empty_workdir_and_bad_prompt_are_one_line_errors(workdir, tmp_path, capsys):
    assert sample.main(["--workdir", str(tmp_path / "nothing"), "--prompt", "x.wav", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no complete checkpoint" in err
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.1, np.nan, 0.2] * 100, np.float32), 8000, subtype="FLOAT")
    assert sample.main(["--workdir", workdir, "--prompt", str(nan), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nan.wav" in err and "non-finite" in err


def test_unconditional_generation_starts_from_the_mean_frame(workdir, tmp_path):
    out = tmp_path / "u"
    assert sample.main(["--workdir", workdir, "--unconditional", "--sample.seconds=0.5", "--sample.num_samples=2",
                        "--sample.griffin_lim_iters=2", "--out", str(out)]) == 0
    data, rate = sf.read(out / "unconditional_sample0.wav")
    assert rate == 8000 and len(data) == 4000  # 0.5 s: the group of the mean frame it starts from is dropped
    assert np.all(np.isfinite(data))
    with pytest.raises(SystemExit):
        sample.main(["--workdir", workdir, "--out", str(out)])  # neither prompts nor --unconditional


@pytest.mark.parametrize("command", ["sample", "evaluate", "render_midi", "tts", "generate"])
def test_every_commands_help_says_whole_sentences(command, capsys):
    """`--help` opens with what the command does in whole sentences, then the override rule
    (evaluate's used to cut its docstring's first line off mid-sentence: "baseline, and Any ...")."""
    import importlib
    module = importlib.import_module(f"audiolm_jax.{command}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "overrides the checkpoint's" in text
    assert ". Any --sample.<field>=value" in text, text[:600]
