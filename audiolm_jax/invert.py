"""Inversion: log-mel (dB) → linear STFT magnitude → waveform by Griffin-Lim, and metrics.

Two backends behind `mel_to_audio`:
- `librosa`: `librosa.feature.inverse.mel_to_audio` (NNLS by L-BFGS-B, then Griffin-Lim),
  the numpy reference.
- `jax`: a projected-gradient (FISTA) NNLS started from the pseudo-inverse, then a batched
  Griffin-Lim with librosa's momentum (0.99) as one `lax.scan` over iterations, jit-compiled.

Shapes: log-mel `[batch, frames, n_mels]` in dB (ref 1.0); magnitudes
`[batch, frames, n_fft // 2 + 1]`; waveforms `[batch, samples]`. This module never imports
the model.
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import librosa
import numpy as np

from audiolm_jax import audio, decibels
from audiolm_jax.config import AudioConfig

Backend = Literal["jax", "librosa"]


def default_length(num_frames: int, config: AudioConfig) -> int:
    """Samples a centred STFT of `num_frames` frames covers: `(frames - 1) * hop_length`."""
    return (num_frames - 1) * config.hop_length


# ---------------------------------------------------------------------------------------
# mel → linear magnitude


def mel_to_magnitude_jax(log_mel_db: jax.Array, config: AudioConfig, iters: int = 20) -> jax.Array:
    """Non-negative least squares mel → |STFT| `[batch, frames, n_fft // 2 + 1]`.

    Solves min_P ||P Bᵀ - M||² s.t. P ≥ 0 for the power spectrum P (B the mel filterbank,
    M the mel power) by FISTA from the clipped pseudo-inverse, then returns P^(1/power).
    """
    return _mel_to_magnitude(jnp.asarray(log_mel_db, jnp.float32), config, iters)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _mel_to_magnitude(log_mel_db: jax.Array, config: AudioConfig, iters: int) -> jax.Array:
    basis64 = audio.mel_filterbank(config).astype(np.float64)  # [n_mels, bins]
    lipschitz = float(np.linalg.norm(basis64, ord=2) ** 2)
    pinv = np.linalg.pinv(basis64).T.astype(np.float32)  # [n_mels, bins]
    basis = basis64.astype(np.float32)
    mel_power = decibels.db_to_power(log_mel_db)  # [batch, frames, n_mels]

    def step(carry, _):
        x, y, t = carry
        # gradient of ½‖y Bᵀ − M‖² through the thin basis: (y Bᵀ − M) B, two skinny matmuls
        grad = (y @ basis.T - mel_power) @ basis
        x_next = jnp.maximum(y - grad / lipschitz, 0.0)
        t_next = (1.0 + jnp.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y_next = x_next + ((t - 1.0) / t_next) * (x_next - x)
        return (x_next, y_next, t_next), None

    x0 = jnp.maximum(mel_power @ pinv, 0.0)
    (x, _, _), _ = jax.lax.scan(step, (x0, x0, jnp.float32(1.0)), None, length=iters)
    return x ** (1.0 / config.power)


def mel_to_magnitude_librosa(log_mel_db: np.ndarray, config: AudioConfig) -> np.ndarray:
    """librosa's NNLS mel → |STFT| `[batch, frames, bins]` (the reference)."""
    mel_power = decibels.db_to_power(np.asarray(log_mel_db, np.float32))
    stft = librosa.feature.inverse.mel_to_stft(
        np.swapaxes(mel_power, -1, -2), sr=config.sample_rate, n_fft=config.n_fft,
        power=config.power, fmin=config.fmin, fmax=config.fmax, htk=config.htk, norm=config.mel_norm)
    return np.swapaxes(stft, -1, -2)


# ---------------------------------------------------------------------------------------
# Griffin-Lim


def _overlap_add(frames: jax.Array, hop: int) -> jax.Array:
    """Sums `[batch, frames, n_fft]` windowed frames at stride `hop` → `[batch, samples]`."""
    batch, count, n_fft = frames.shape
    if n_fft % hop == 0:
        k = n_fft // hop
        blocks = frames.reshape(batch, count, k, hop)
        out = jnp.zeros((batch, count + k - 1, hop), frames.dtype)
        for j in range(k):
            out = out.at[:, j : j + count].add(blocks[:, :, j])
        return out.reshape(batch, -1)
    index = (np.arange(count)[:, None] * hop + np.arange(n_fft)[None, :]).reshape(-1)
    total = (count - 1) * hop + n_fft
    return jax.vmap(lambda f: jax.ops.segment_sum(f.reshape(-1), index, num_segments=total))(frames)


def istft_jax(stft: jax.Array, config: AudioConfig, length: int) -> jax.Array:
    """Inverse of `audio.stft_jax`, as `librosa.istft`: `[batch, frames, bins]` → `[batch, length]`."""
    count = stft.shape[1]
    window = audio.stft_window(config)
    frames = jnp.fft.irfft(stft, n=config.n_fft, axis=-1) * window
    signal = _overlap_add(frames, config.hop_length)
    wss = librosa.filters.window_sumsquare(
        window=config.window, n_frames=count, hop_length=config.hop_length,
        win_length=config.win_length, n_fft=config.n_fft, dtype=np.float32)
    tiny = np.finfo(np.float32).tiny
    signal = signal / np.where(wss > tiny, wss, 1.0)
    start = config.n_fft // 2 if config.center else 0
    signal = signal[:, start : start + length]
    return jnp.pad(signal, ((0, 0), (0, length - signal.shape[1])))


def griffin_lim_jax(magnitude: jax.Array, config: AudioConfig, n_iter: int, key: jax.Array,
                    length: int | None = None, momentum: float = 0.99) -> jax.Array:
    """Fast Griffin-Lim (librosa's algorithm): `[batch, frames, bins]` → `[batch, samples]`.

    Phases start uniformly random from `key`; `length` defaults to `(frames - 1) * hop`.
    """
    magnitude = jnp.asarray(magnitude, jnp.float32)
    # Iterate at the length the frames cover (so re-analysis gives the same frame count),
    # then trim or zero-pad the result to the length asked for.
    wave = _griffin_lim(magnitude, config, n_iter, key, default_length(magnitude.shape[1], config), momentum)
    return wave if length is None else fit_length(wave, length)


def fit_length(waveform, length: int):
    """Trims or zero-pads `[batch, samples]` (numpy or JAX) to `length` samples."""
    xp = jnp if isinstance(waveform, jax.Array) else np
    waveform = waveform[:, :length]
    return xp.pad(waveform, ((0, 0), (0, length - waveform.shape[1])))


@functools.partial(jax.jit, static_argnums=(1, 2, 4, 5))
def _griffin_lim(magnitude, config, n_iter, key, length, momentum):
    # One key per batch item: an item's phases do not depend on the rest of the batch.
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(magnitude.shape[0]))
    phase = jax.vmap(lambda k: jax.random.uniform(k, magnitude.shape[1:]))(keys) * (2 * np.pi)
    angles = jnp.exp(1j * phase).astype(jnp.complex64)
    eps = np.finfo(np.float32).tiny

    def step(carry, _):
        angles, previous = carry
        rebuilt = audio.stft_jax(istft_jax(magnitude * angles, config, length), config)
        angles = rebuilt - (momentum / (1.0 + momentum)) * previous
        angles = angles / (jnp.abs(angles) + eps)
        return (angles, rebuilt), None

    (angles, _), _ = jax.lax.scan(step, (angles, jnp.zeros_like(angles)), None, length=n_iter)
    return istft_jax(magnitude * angles, config, length)


def griffin_lim_librosa(magnitude: np.ndarray, config: AudioConfig, n_iter: int, seed: int,
                        length: int | None = None, momentum: float = 0.99) -> np.ndarray:
    """`librosa.griffinlim` on `[batch, frames, bins]` → `[batch, samples]` (the reference)."""
    magnitude = np.asarray(magnitude, np.float32)
    wave = librosa.griffinlim(
        np.swapaxes(magnitude, -1, -2), n_iter=n_iter, hop_length=config.hop_length,
        win_length=config.win_length, n_fft=config.n_fft, window=config.window,
        center=config.center, pad_mode=config.pad_mode,
        length=default_length(magnitude.shape[1], config), momentum=momentum, random_state=seed)
    return wave if length is None else fit_length(wave, length)


# ---------------------------------------------------------------------------------------
# One entry point


def mel_to_audio(log_mel_db: np.ndarray, config: AudioConfig, backend: Backend = "jax",
                 n_iter: int = 32, seed: int = 0, length: int | None = None) -> np.ndarray:
    """Log-mel in dB `[batch, frames, n_mels]` → waveform `[batch, samples]` (numpy float32).

    `length` in samples defaults to `(frames - 1) * hop_length`; `seed` fixes the initial
    random phases.
    """
    log_mel_db = np.asarray(log_mel_db, np.float32)
    if log_mel_db.ndim != 3 or log_mel_db.shape[-1] != config.n_mels:
        raise ValueError(f"mel_to_audio: expected log-mel [batch, frames, {config.n_mels}], "
                         f"got shape {log_mel_db.shape}")
    if backend == "librosa":
        magnitude = mel_to_magnitude_librosa(log_mel_db, config)
        return griffin_lim_librosa(magnitude, config, n_iter, seed, length).astype(np.float32)
    if backend == "jax":
        magnitude = mel_to_magnitude_jax(log_mel_db, config)
        key = jax.random.key(seed)
        return np.asarray(griffin_lim_jax(magnitude, config, n_iter, key, length))
    raise ValueError(f"mel_to_audio: backend {backend!r}: expected 'jax' or 'librosa'")


# ---------------------------------------------------------------------------------------
# Metrics


def spectral_convergence_db(waveform: np.ndarray, target_magnitude: np.ndarray,
                            config: AudioConfig) -> np.ndarray:
    """20·log10(‖T − |STFT(y)|‖_F / ‖T‖_F) per batch item `[batch]`; lower is better."""
    rebuilt = np.asarray(audio.stft_magnitude_jax(waveform, config))
    frames = min(rebuilt.shape[1], target_magnitude.shape[1])
    rebuilt, target = rebuilt[:, :frames], np.asarray(target_magnitude)[:, :frames]
    num = np.linalg.norm((target - rebuilt).reshape(len(target), -1), axis=-1)
    den = np.linalg.norm(target.reshape(len(target), -1), axis=-1)
    return 20.0 * np.log10(num / np.maximum(den, 1e-12) + 1e-12)
