"""Waveform augmentation for training crops (off by default; `DataConfig.augment_*`).

Each function takes a mono float32 `[samples]` crop and an explicit numpy Generator and
returns a new `[samples]` array; `augment` applies the configured ones in a fixed order
(pitch, gain, noise) so a crop's augmentation is a pure function of its generator's seed.
"""

from __future__ import annotations

import librosa
import numpy as np

from audiolm_jax.config import DataConfig


def random_gain(waveform: np.ndarray, max_db: float, rng: np.random.Generator) -> np.ndarray:
    """`waveform` scaled by a gain drawn uniformly in [-max_db, +max_db] dB."""
    return waveform * np.float32(10.0 ** (rng.uniform(-max_db, max_db) / 20.0))


def add_noise(waveform: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """`waveform` plus white Gaussian noise whose power is the crop's power / 10^(snr_db/10)."""
    power = float(np.mean(np.square(waveform, dtype=np.float64)))
    if power == 0.0:
        return waveform
    noise = rng.standard_normal(len(waveform)) * np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return (waveform + noise).astype(np.float32)


def random_pitch_shift(waveform: np.ndarray, max_semitones: float, sample_rate: int,
                       rng: np.random.Generator) -> np.ndarray:
    """`waveform` shifted by a pitch drawn in [-max, +max] semitones, same duration
    (librosa: phase-vocoder time stretch, then soxr resampling)."""
    steps = rng.uniform(-max_semitones, max_semitones)
    shifted = librosa.effects.pitch_shift(waveform, sr=sample_rate, n_steps=steps, res_type="soxr_hq")
    return np.ascontiguousarray(shifted[: len(waveform)], dtype=np.float32)


def augment(waveform: np.ndarray, config: DataConfig, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """The augmentations `config` turns on, applied to one training crop `[samples]`."""
    if len(waveform) == 0:
        return waveform
    if config.augment_pitch_semitones:
        waveform = random_pitch_shift(waveform, config.augment_pitch_semitones, sample_rate, rng)
    if config.augment_gain_db:
        waveform = random_gain(waveform, config.augment_gain_db, rng)
    if config.augment_snr_db is not None:
        waveform = add_noise(waveform, config.augment_snr_db, rng)
    return waveform
