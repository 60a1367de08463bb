import numpy as np
import soundfile as sf

from audiolm_jax import resynth
from tests.signals import piano_like


def test_resynth_writes_audio_and_reports_convergence(tmp_path, capsys):
    src = tmp_path / "in.wav"
    sf.write(src, piano_like(1.0, 44100, seed=5), 44100)  # another rate: resampled to 16 kHz
    out = tmp_path / "out.wav"
    assert resynth.main([str(src), str(out), "--iters", "16"]) == 0
    data, rate = sf.read(out)
    assert rate == 16000 and len(data) == 16000
    assert np.sqrt(np.mean(data**2)) > 1e-3
    text = capsys.readouterr().out
    sc = float(text.split("spectral convergence:")[1].split("dB")[0])
    assert "invert (jax, 16 it)" in text
    # 64 mel bins bound the quality (~-4.5 dB here); the librosa backend is the reference
    assert resynth.main([str(src), str(tmp_path / "ref.wav"), "--iters", "16", "--backend", "librosa"]) == 0
    ref = float(capsys.readouterr().out.split("spectral convergence:")[1].split("dB")[0])
    assert sc < -3.0 and sc <= ref + 1.0


def test_resynth_names_a_bad_input(tmp_path, capsys):
    bad = tmp_path / "broken.wav"
    bad.write_text("not audio")
    assert resynth.main([str(bad), str(tmp_path / "o.wav")]) == 2
    assert "broken.wav" in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists()
