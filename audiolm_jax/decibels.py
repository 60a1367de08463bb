"""Decibel arithmetic on log-mels, with numpy and JAX only (no librosa, no soundfile), so the
model's path (model -> conditioning), the metrics and the Griffin-Lim inversion share one
formula and the GPU image, which has no librosa, can import it.

Log-mels are in dB of mel power with `ref=1.0` (`librosa.power_to_db`), `[..., frames, n_mels]`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def db_to_power(log_mel_db: np.ndarray | jax.Array) -> np.ndarray | jax.Array:
    """Inverse of `power_to_db` with ref=1.0: dB → mel power (same array type as given)."""
    xp = jnp if isinstance(log_mel_db, jax.Array) else np
    return xp.power(10.0, log_mel_db / 10.0)


def frame_energy_db(log_mel_db: np.ndarray) -> np.ndarray:
    """Energy per frame in dB `[..., frames]` of a log-mel `[..., frames, n_mels]` in dB: the
    dB of its power summed over mel bins."""
    return 10.0 * np.log10(np.sum(db_to_power(log_mel_db), axis=-1) + 1e-10)


def frame_loudness_db(mel_db: np.ndarray) -> np.ndarray:
    """The loudness of each log-mel frame of `mel_db` `[..., frames, n_mels]` (dB): the dB of
    its mean power over mel bins `[..., frames]` float32, so loud bins count as a listener
    hears them (a mean of dB would let quiet bins set it). `frame_energy_db` less
    10·log10(n_mels), computed in float64."""
    power = db_to_power(np.asarray(mel_db, np.float64))
    return (10.0 * np.log10(np.maximum(np.mean(power, axis=-1), 1e-30))).astype(np.float32)
