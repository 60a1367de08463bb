import jax
import numpy as np
import pytest

from audiolm_jax import audio, decibels, invert
from audiolm_jax.config import AudioConfig
from tests.signals import piano_like, speech_like

CFG = AudioConfig(sample_rate=16000, n_fft=1024, win_length=1024, hop_length=256, n_mels=80)


def harmonic(seconds=1.0, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * 220 * h * t) / h for h in range(1, 6)) * np.exp(-t)
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def test_istft_inverts_stft():
    wave = speech_like(0.7, 16000)
    rebuilt = np.asarray(invert.istft_jax(audio.stft_jax(wave[None], CFG), CFG, len(wave)))[0]
    assert np.max(np.abs(rebuilt - wave)) < 1e-5


def test_griffin_lim_converges_on_a_harmonic_signal():
    wave = harmonic()
    target = np.asarray(audio.stft_magnitude_jax(wave[None], CFG))
    out = np.asarray(invert.griffin_lim_jax(target, CFG, 32, jax.random.key(0), len(wave)))
    sc = invert.spectral_convergence_db(out, target, CFG)[0]
    assert sc < -15.0
    worse = np.asarray(invert.griffin_lim_jax(target, CFG, 2, jax.random.key(0), len(wave)))
    assert invert.spectral_convergence_db(worse, target, CFG)[0] > sc + 3  # iterations matter


@pytest.mark.parametrize("make", [piano_like, speech_like])
def test_backends_agree_on_quality(make):
    wave = make(1.0, 16000, seed=2)
    log_mel = audio.log_mel_numpy(wave, CFG)[None]
    target = np.asarray(audio.stft_magnitude_jax(wave[None], CFG))
    ours = invert.mel_to_audio(log_mel, CFG, "jax", 32, seed=0, length=len(wave))
    ref = invert.mel_to_audio(log_mel, CFG, "librosa", 32, seed=0, length=len(wave))
    assert ours.shape == ref.shape == (1, len(wave))
    sc_ours = invert.spectral_convergence_db(ours, target, CFG)[0]
    sc_ref = invert.spectral_convergence_db(ref, target, CFG)[0]
    assert sc_ours < -5 and sc_ref < -5
    assert sc_ours <= sc_ref + 1.0


def test_jax_nnls_matches_librosa_magnitude():
    wave = piano_like(0.5, 16000, seed=4)
    log_mel = audio.log_mel_numpy(wave, CFG)[None]
    ours = np.asarray(invert.mel_to_magnitude_jax(log_mel, CFG))
    ref = invert.mel_to_magnitude_librosa(log_mel, CFG)
    assert ours.shape == ref.shape
    # both are least-squares fits of the same mel power: their mel projections agree
    basis = audio.mel_filterbank(CFG)
    mel_ours, mel_ref = (ours**2) @ basis.T, (ref**2) @ basis.T
    target = decibels.db_to_power(log_mel)
    err = lambda m: np.linalg.norm(m - target) / np.linalg.norm(target)
    assert err(mel_ours) <= err(mel_ref) + 0.02


def test_batch_items_are_inverted_independently():
    waves = np.stack([harmonic(0.5), piano_like(0.5, 16000, seed=9)])
    log_mel = np.asarray(audio.log_mel_jax(waves, CFG))
    both = invert.mel_to_audio(log_mel, CFG, "jax", 16, seed=0)
    first = invert.mel_to_audio(log_mel[:1], CFG, "jax", 16, seed=0)
    np.testing.assert_allclose(both[0], first[0], atol=1e-4)


def test_wrong_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\[batch, frames, 80\]"):
        invert.mel_to_audio(np.zeros((10, 80), np.float32), CFG)
    with pytest.raises(ValueError, match="backend"):
        invert.mel_to_audio(np.zeros((1, 10, 80), np.float32), CFG, backend="torch")  # type: ignore[arg-type]
