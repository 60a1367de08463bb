"""The embedded labelled sound set: ten kinds of everyday sound synthesised with numpy.

Each clip is one class with its own randomly drawn parameters (intensity, rate, pitch,
distance ...) and a caption built from those parameters ("heavy rain", "a two-tone siren,
far away"), so a label names the kind and a caption says more. Clip `i` of a split
depends only on (split seed, class, i): the set is identical on every machine and needs no
download. Sounds are made from filtered noise, decaying partials and impulse trains — the
ingredients of procedural sound design (Farnell, "Designing Sound").
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import signal


CLASSES = ("rain", "wind", "engine", "siren", "bell", "footsteps", "knocking", "applause", "dripping", "thunder")


def _bandpass(x: np.ndarray, low: float, high: float, sample_rate: int, order: int = 2) -> np.ndarray:
    sos = signal.butter(order, [low, min(high, 0.45 * sample_rate)], btype="bandpass", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def _lowpass(x: np.ndarray, cutoff: float, sample_rate: int, order: int = 2) -> np.ndarray:
    sos = signal.butter(order, min(cutoff, 0.45 * sample_rate), btype="lowpass", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def _impulses(total: int, times: np.ndarray, kernel: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """`kernel` `[k]` added at each sample index in `times` with its gain."""
    out = np.zeros(total + len(kernel))
    for t, g in zip(times.astype(int), gains):
        if 0 <= t < total:
            out[t : t + len(kernel)] += g * kernel
    return out[:total]


def _decay(length: int, seconds: float, sample_rate: int) -> np.ndarray:
    return np.exp(-np.arange(length) / (seconds * sample_rate))


def rain(rng, n, sr):
    heavy = rng.uniform()
    x = _bandpass(rng.standard_normal(n), 400 + 600 * rng.uniform(), 6000, sr) * (0.3 + 0.7 * heavy)
    rate = 20 + 200 * heavy  # drops per second
    times = np.cumsum(rng.exponential(sr / rate, size=int(rate * n / sr * 1.5) + 1))
    drop = _bandpass(rng.standard_normal(int(0.004 * sr)), 2000, 7000, sr) * _decay(int(0.004 * sr), 0.001, sr)
    x = x + 3 * _impulses(n, times, drop, rng.uniform(0.2, 1.0, len(times)))
    return x, ("heavy rain" if heavy > 0.6 else "light rain" if heavy < 0.3 else "steady rain")


def wind(rng, n, sr):
    strong = rng.uniform()
    t = np.arange(n) / sr
    gust = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.6) * t + rng.uniform(0, 6)) ** 2
    centre = 300 + 500 * strong + 200 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t)
    noise = rng.standard_normal(n)
    x = np.zeros(n)
    for start in range(0, n, 1024):  # a band-pass whose centre moves, block by block
        c = float(centre[start])
        block = x[start : start + 1024]
        block[:] = _bandpass(noise[max(start - 2048, 0) : start + 1024], 0.6 * c, 1.6 * c, sr)[-len(block):]
    x *= gust ** (1 + 2 * strong)
    return x, ("strong gusty wind" if strong > 0.5 else "gentle wind")


def engine(rng, n, sr):
    revving = rng.uniform() > 0.5
    t = np.arange(n) / sr
    rpm = rng.uniform(25, 45) * (1 + (0.8 * np.clip(t / (n / sr), 0, 1) if revving else 0.03 * np.sin(2 * np.pi * 0.5 * t)))
    phase = 2 * np.pi * np.cumsum(rpm) / sr
    x = sum(np.sin(k * phase) / k ** 0.7 for k in range(1, 25))
    x = _lowpass(x + 0.3 * rng.standard_normal(n), 1500, sr)
    return x, ("an engine revving up" if revving else "an idling engine")


def siren(rng, n, sr):
    two_tone = rng.uniform() > 0.5
    t = np.arange(n) / sr
    low, high = rng.uniform(500, 700), rng.uniform(900, 1400)
    if two_tone:
        f = np.where((t * rng.uniform(1.0, 2.0)) % 1 < 0.5, low, high)
    else:
        f = low + (high - low) * 0.5 * (1 - np.cos(2 * np.pi * rng.uniform(0.2, 0.5) * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = np.sin(phase) + 0.3 * np.sin(3 * phase) + 0.15 * np.sin(5 * phase)
    far = rng.uniform() > 0.5
    if far:
        x = _lowpass(x, 1500, sr) * 0.4 + 0.05 * _lowpass(rng.standard_normal(n), 500, sr)
    return x, ("a two-tone siren" if two_tone else "a wailing siren") + (", far away" if far else "")


def bell(rng, n, sr):
    f0 = rng.uniform(200, 700)
    strikes = rng.integers(1, 4)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.74, 3.0, 4.1])
    ring = np.zeros(n)
    length = n
    t = np.arange(length) / sr
    tone = sum(np.sin(2 * np.pi * f0 * r * t + rng.uniform(0, 6)) * np.exp(-t * (0.8 + r)) / (1 + 0.3 * i)
               for i, r in enumerate(ratios))
    for s in range(strikes):
        start = int(s * n / strikes) + rng.integers(0, sr // 20)
        ring[start:] += tone[: n - start]
    return ring, ("a bell ringing once" if strikes == 1 else f"a bell tolling {strikes} times")


def footsteps(rng, n, sr):
    rate = rng.uniform(1.2, 3.0)
    beats = np.arange(rng.uniform(0, 0.3), n / sr, 1 / rate)  # seconds
    times = (beats + rng.normal(0, 0.01, len(beats))) * sr
    k = int(0.06 * sr)
    step = (_lowpass(rng.standard_normal(k), 800, sr) + np.sin(2 * np.pi * 90 * np.arange(k) / sr)) * _decay(k, 0.015, sr)
    x = _impulses(n, times, step, rng.uniform(0.6, 1.0, len(times)))
    return x + 0.01 * rng.standard_normal(n), ("fast footsteps" if rate > 2.0 else "slow footsteps")


def knocking(rng, n, sr):
    groups = rng.integers(1, 3)
    knocks = rng.integers(2, 5)
    resonance = rng.uniform(150, 400)
    k = int(0.05 * sr)
    tk = np.arange(k) / sr
    knock = (np.sin(2 * np.pi * resonance * tk) + 0.5 * _bandpass(rng.standard_normal(k), 1000, 4000, sr)) * _decay(k, 0.008, sr)
    times = []
    for g in range(groups):
        start = (0.2 + g * 1.3) * sr
        times += [start + i * rng.uniform(0.15, 0.25) * sr for i in range(knocks)]
    x = _impulses(n, np.array(times), knock, rng.uniform(0.7, 1.0, len(times)))
    return x + 0.005 * rng.standard_normal(n), f"knocking on a door, {knocks} knocks"


def applause(rng, n, sr):
    dense = rng.uniform()
    rate = 30 + 300 * dense
    times = np.cumsum(rng.exponential(sr / rate, size=int(rate * n / sr * 1.5) + 1))
    k = int(0.01 * sr)
    clap = _bandpass(rng.standard_normal(k), 800, 5000, sr) * _decay(k, 0.003, sr)
    x = _impulses(n, times, clap, rng.uniform(0.3, 1.0, len(times)))
    return x, ("loud applause" if dense > 0.5 else "scattered clapping")


def dripping(rng, n, sr):
    rate = rng.uniform(1.5, 5.0)
    times = np.cumsum(rng.exponential(sr / rate, size=int(rate * n / sr * 2) + 1))
    k = int(0.05 * sr)
    tk = np.arange(k) / sr
    f = rng.uniform(700, 1500)
    plop = np.sin(2 * np.pi * np.cumsum(f * (1 + 3 * tk / 0.05)) / sr) * _decay(k, 0.01, sr)
    x = _impulses(n, times, plop, rng.uniform(0.5, 1.0, len(times)))
    return x + 0.003 * rng.standard_normal(n), ("water dripping quickly" if rate > 3 else "water dripping slowly")


def thunder(rng, n, sr):
    close = rng.uniform() > 0.5
    t = np.arange(n) / sr
    onset = rng.uniform(0.0, 0.5)
    env = np.where(t < onset, 0.0, np.exp(-(t - onset) / rng.uniform(0.8, 2.0)) * (1 - np.exp(-(t - onset) / 0.05)))
    rumble = _lowpass(rng.standard_normal(n), rng.uniform(120, 300), sr, order=4)
    rumble *= 1 + 0.6 * np.sin(2 * np.pi * rng.uniform(2, 6) * t)
    x = 6 * rumble * env
    if close:
        crack = _bandpass(rng.standard_normal(n), 300, 4000, sr) * np.where(t < onset, 0.0, np.exp(-(t - onset) / 0.12))
        x = x + 0.8 * crack
    return x, ("a close thunder crack" if close else "distant rolling thunder")


GENERATORS: dict[str, Callable] = {name: globals()[name] for name in CLASSES}


def synthesize_sound(label: str, seed: int, index: int, seconds: float, sample_rate: int) -> tuple[np.ndarray, str]:
    """Clip `index` of class `label` in the split with `seed`: mono float32 `[samples]` in
    [-1, 1] (peak 0.3-0.9, a little room noise) and its caption."""
    rng = np.random.default_rng([seed, CLASSES.index(label), index])
    n = int(round(seconds * sample_rate))
    wave, caption = GENERATORS[label](rng, n, sample_rate)
    wave = np.asarray(wave, np.float64) + 1e-4 * rng.standard_normal(n)
    peak = rng.uniform(0.3, 0.9)
    return (peak * wave / max(np.max(np.abs(wave)), 1e-9)).astype(np.float32), caption
