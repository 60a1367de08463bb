"""Augmentation: each transform measured on known signals; off by default; deterministic."""

import numpy as np
import soundfile as sf

from audiolm_jax.data import augment, prepare
from tests.helpers import tiny_config
from tests.signals import piano_like
from tests.test_data import file_config


def sine(freq, seconds=1.0, rate=8000):
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def peak_hz(wave, rate=8000):
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.argmax(spectrum) * rate / len(wave)


def test_gain_stays_within_its_range_in_db():
    wave = sine(440)
    gains = [20 * np.log10(np.abs(augment.random_gain(wave, 6.0, np.random.default_rng(i))).max() / 0.5)
             for i in range(50)]
    assert -6.0 <= min(gains) < -3.0 and 3.0 < max(gains) <= 6.0


def test_noise_is_added_at_the_requested_snr():
    wave = sine(440)
    for snr in (0.0, 10.0, 30.0):
        noisy = augment.add_noise(wave, snr, np.random.default_rng(0))
        measured = 10 * np.log10(np.mean(wave.astype(np.float64) ** 2) / np.mean((noisy - wave).astype(np.float64) ** 2))
        assert abs(measured - snr) < 0.3
    silent = np.zeros(800, np.float32)
    np.testing.assert_array_equal(augment.add_noise(silent, 10.0, np.random.default_rng(0)), silent)


def test_pitch_shift_moves_a_sine_by_the_drawn_semitones_and_keeps_length():
    wave = sine(440)
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    shifted = augment.random_pitch_shift(wave, 2.0, 8000, rng_a)
    steps = rng_b.uniform(-2.0, 2.0)
    assert len(shifted) == len(wave) and abs(steps) > 0.3
    assert abs(peak_hz(shifted) / (440 * 2 ** (steps / 12)) - 1) < 0.01


def test_augmentation_is_off_by_default_and_deterministic_when_on(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(4):
        sf.write(folder / f"{i}.wav", piano_like(1.0, 8000, seed=i), 8000)
    assert not tiny_config(str(tmp_path)).data.augments
    plain = prepare(file_config(tmp_path, "folder", folder))
    on = dict(augment_gain_db=6.0, augment_snr_db=20.0, augment_pitch_semitones=1.0)
    augmented = prepare(file_config(tmp_path, "folder", folder, **on), stats=plain.stats)
    a = plain.train_batch(2, seed=0, batch_size=4, length=32)
    b = augmented.train_batch(2, seed=0, batch_size=4, length=32)
    c = augmented.train_batch(2, seed=0, batch_size=4, length=32)
    np.testing.assert_array_equal(b["mel"], c["mel"])  # a pure function of (seed, step, row)
    assert np.abs(a["mel"] - b["mel"]).mean() > 0.1
    np.testing.assert_array_equal(a["mask"], b["mask"])
    evals = [d.eval_batches(4, 32, 4)[0]["mel"] for d in (plain, augmented)]
    np.testing.assert_array_equal(*evals)  # evaluation is never augmented
