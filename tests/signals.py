"""Realistic test signals the tests make themselves: speech-like and piano-like audio."""

from __future__ import annotations

import numpy as np


def speech_like(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A voiced/unvoiced source-filter signal: a glottal pulse train with a drifting pitch
    through three moving formant resonators, with noisy fricative bursts and pauses."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t) + 10 * rng.standard_normal() * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    source = np.sign(np.sin(phase)) * (np.abs(np.sin(phase)) ** 8)
    out = np.zeros(n)
    for formant, bw in ((700, 110), (1200, 120), (2600, 160)):
        drift = formant * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.2) * t))
        r = np.exp(-np.pi * bw / sample_rate)
        y1 = y2 = 0.0
        theta = 2 * np.pi * drift / sample_rate
        res = np.empty(n)
        for i in range(n):
            y = source[i] + 2 * r * np.cos(theta[i]) * y1 - r * r * y2
            res[i], y2, y1 = y, y1, y
        out += res / np.max(np.abs(res) + 1e-9)
    syllables = (np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)) > -0.3).astype(float)
    noise = rng.standard_normal(n) * 0.2 * (np.sin(2 * np.pi * 2.3 * t) > 0.8)
    signal = out * syllables + noise
    return (0.7 * signal / np.max(np.abs(signal))).astype(np.float32)


def piano_like(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Decaying inharmonic notes at random onsets and pitches (a few at once)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    out = 1e-4 * rng.standard_normal(n)
    for _ in range(max(1, int(seconds * 3))):
        onset = rng.uniform(0, seconds * 0.9)
        f0 = 440 * 2 ** ((rng.integers(36, 84) - 69) / 12)
        local = np.clip(t - onset, 0, None)
        env = (t >= onset) * np.minimum(local / 0.005, 1) * np.exp(-local * (1 + f0 / 400))
        for h in range(1, 9):
            fh = f0 * h * np.sqrt(1 + 1e-4 * h * h)
            if fh < 0.45 * sample_rate:
                out += env * np.sin(2 * np.pi * fh * t) / h**1.2
    return (0.8 * out / np.max(np.abs(out))).astype(np.float32)
