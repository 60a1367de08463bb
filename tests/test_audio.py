import numpy as np
import pytest
import soundfile as sf

from audiolm_jax import audio
from audiolm_jax.config import AudioConfig
from tests.signals import piano_like, speech_like

SPEECH = AudioConfig(sample_rate=16000, n_fft=1024, win_length=1024, hop_length=256, n_mels=80)
MUSIC = AudioConfig(sample_rate=22050, n_fft=2048, win_length=2048, hop_length=512, n_mels=128,
                    fmin=30.0, fmax=10000.0)
ODD_HOP = AudioConfig(sample_rate=16000, n_fft=800, win_length=640, hop_length=200, n_mels=64)


@pytest.mark.parametrize("cfg, make", [(SPEECH, speech_like), (MUSIC, piano_like), (ODD_HOP, speech_like)])
@pytest.mark.parametrize("seconds", [0.01, 0.05, 0.5, 1.37])
def test_jax_log_mel_matches_librosa(cfg, make, seconds):
    wave = make(seconds, cfg.sample_rate, seed=3)
    ref = audio.log_mel_numpy(wave, cfg)
    got = np.asarray(audio.log_mel_jax(wave[None], cfg))[0]
    assert got.shape == ref.shape == (audio.num_frames(len(wave), cfg), cfg.n_mels)
    assert np.max(np.abs(got - ref)) <= 0.01


def test_frame_counts_match_librosa_for_every_length():
    cfg = AudioConfig(sample_rate=8000, n_fft=256, win_length=256, hop_length=64, n_mels=32)
    rng = np.random.default_rng(0)
    for n in list(range(1, 300, 7)) + [255, 256, 257, 1000]:
        wave = rng.standard_normal(n).astype(np.float32) * 0.1
        assert np.asarray(audio.log_mel_jax(wave[None], cfg)).shape[1] == audio.log_mel_numpy(wave, cfg).shape[0]


def test_batched_equals_one_by_one():
    waves = np.stack([speech_like(0.4, 16000, seed=s) for s in range(3)])
    batched = np.asarray(audio.log_mel_jax(waves, SPEECH))
    for wave, row in zip(waves, batched):
        np.testing.assert_allclose(row, np.asarray(audio.log_mel_jax(wave[None], SPEECH))[0], atol=1e-4)
    assert not np.allclose(batched[0], batched[1])


def test_load_resamples_and_mixes_to_mono(tmp_path):
    wave = piano_like(0.5, 44100, seed=1)
    stereo = np.stack([wave, 0.5 * wave], axis=1)
    path = tmp_path / "stereo.flac"
    sf.write(path, stereo, 44100)
    loaded = audio.load(str(path), 16000)
    assert loaded.dtype == np.float32 and loaded.ndim == 1
    assert abs(len(loaded) - 8000) <= 1
    # mono mix is the mean of the channels: its level is 0.75 of the original
    assert np.max(np.abs(loaded)) == pytest.approx(0.75 * np.max(np.abs(wave)), rel=0.05)


def test_save_is_atomic_and_round_trips(tmp_path):
    wave = speech_like(0.3, 16000)
    path = tmp_path / "out.wav"
    audio.save(str(path), wave, 16000)
    back, rate = sf.read(path, dtype="float32")
    assert rate == 16000 and len(back) == len(wave)
    assert np.max(np.abs(back - wave)) < 1e-3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]
    with pytest.raises(ValueError, match="non-finite"):
        audio.save(str(tmp_path / "bad.wav"), np.array([0.0, np.nan], np.float32), 16000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def test_bad_files_raise_errors_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        audio.load(str(tmp_path / "missing.wav"), 16000)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.wav"):
        audio.load(str(empty), 16000)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    with pytest.raises(ValueError, match="notes.wav"):
        audio.load(str(text), 16000)
    nans = tmp_path / "nans.wav"
    sf.write(nans, np.array([0.1, np.nan, np.nan, np.inf, 0.2], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"'.*nans.wav': 3 non-finite samples"):
        audio.load(str(nans), 16000)
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match="zero.wav.*zero-length"):
        audio.load(str(zero), 16000)
    truncated = tmp_path / "cut.flac"
    sf.write(truncated, speech_like(0.5, 16000), 16000)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ValueError, match="cut.flac"):
        audio.load(str(truncated), 16000)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_every_supported_format_loads(tmp_path, ext):
    wave = piano_like(0.5, 16000, seed=7)
    path = tmp_path / f"clip.{ext}"
    sf.write(path, wave, 16000)
    loaded = audio.load(str(path), 16000)
    assert abs(len(loaded) - len(wave)) <= 1152  # mp3 frames pad the end
    n = min(len(loaded), len(wave))
    # lossy codecs shift phase slightly; the spectral envelope survives
    ref = audio.log_mel_numpy(wave[:n], SPEECH)
    got = audio.log_mel_numpy(loaded[:n], SPEECH)
    loud = ref > ref.max() - 40
    assert np.median(np.abs(ref[loud] - got[loud])) < 3.0
