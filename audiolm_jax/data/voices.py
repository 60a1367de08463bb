"""The embedded speech set: sentences read aloud by a small formant synthesiser, several voices.

Each letter is a phone with a target (formant frequencies and amplitude for voiced sounds,
a noise band for fricatives and bursts, a duration); a sentence is its letters' targets in
sequence, smoothed into one another over ~20 ms (coarticulation), then rendered: voiced
sound as a harmonic series on a falling pitch contour, each harmonic weighted by three
formant resonances; unvoiced sound as band-passed noise. A voice is a pitch, a vocal-tract
length (all formants scaled), a speaking rate and a spectral tilt, so voices differ the
ways speakers do. It is not English — a letter always sounds the same — but it has what a
text-to-speech model must learn from speech: characters that map in order onto stretches
of audio of varying length, silences at word boundaries, and a voice that a few seconds of
audio identify. Utterance `i` of a split depends only on (split seed, i): identical on
every machine, no download, no Debian package. Validation and test sentences never occur
in training (`sentences`).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

WORDS = ("the a one two three four five six seven eight nine ten red green blue black white small large quick "
         "slow happy quiet bright dark warm cold river mountain garden window kitchen market station teacher "
         "doctor farmer sailor painter writer child mother father sister brother friend walks runs reads writes "
         "sings paints builds opens closes carries watches finds keeps brings morning evening winter summer "
         "today always never often slowly gently loudly under over near behind across through before after with "
         "and but because while").split()

# (speaker f0 in Hz, formant scale, duration scale, spectral tilt exponent) per voice.
VOICES = ((110.0, 1.00, 1.00, 0.9), (210.0, 1.16, 0.92, 1.1), (95.0, 0.92, 1.12, 0.8), (175.0, 1.10, 1.05, 1.3),
          (130.0, 1.04, 0.85, 1.0), (235.0, 1.20, 1.10, 1.2), (85.0, 0.88, 0.95, 0.7), (160.0, 1.08, 1.18, 1.0))

_VOWELS = {"a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (300, 2290, 3010), "o": (570, 840, 2410),
           "u": (320, 870, 2240), "y": (440, 1020, 2240)}
_SONORANTS = {"m": ((250, 1000, 2200), 0.35), "n": ((250, 1500, 2500), 0.35), "l": ((360, 1300, 2700), 0.55),
              "r": ((420, 1300, 1600), 0.55), "w": ((300, 610, 2150), 0.45), "j": ((280, 2200, 3000), 0.45),
              "b": ((250, 800, 2200), 0.25), "d": ((250, 1700, 2600), 0.25), "g": ((250, 2000, 2500), 0.25),
              "v": ((250, 1200, 2400), 0.3), "z": ((250, 1600, 2500), 0.3)}
# unvoiced: (noise band low Hz, high Hz, amplitude, seconds)
_NOISES = {"s": (4500, 7500, 0.35, 0.09), "f": (1500, 6500, 0.15, 0.09), "h": (500, 3000, 0.12, 0.06),
           "p": (300, 5000, 0.3, 0.04), "t": (3000, 6500, 0.35, 0.04), "k": (1500, 3200, 0.35, 0.05),
           "c": (1500, 3200, 0.35, 0.05), "q": (1200, 2800, 0.35, 0.05), "x": (3500, 7000, 0.35, 0.08),
           "v": (1000, 3500, 0.08, 0.0), "z": (4000, 7000, 0.12, 0.0)}
_PAUSES = {" ": 0.05, ",": 0.15, ".": 0.2, ";": 0.15, ":": 0.15, "?": 0.2, "!": 0.2, "-": 0.08, "'": 0.0}
_BANDWIDTHS = (90.0, 120.0, 180.0)  # Hz: formant resonance widths


def split_seed(split: str) -> int:
    """The seed of a split's utterances (train, validation and test draw from different ones)."""
    return {"train": 11, "validation": 12, "test": 13}[split]


def sentences(split: str, count: int) -> list[str]:
    """`count` sentences of 3-7 words for `split`; validation and test ones never occur in training
    (nor in each other)."""
    def draw(seed: int, n: int) -> list[str]:
        rng = np.random.default_rng(seed)
        return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 8)))) for _ in range(n)]

    if split == "train":
        return draw(split_seed("train"), count)
    taken = set(draw(split_seed("train"), 4096))
    if split == "test":
        taken |= set(draw(split_seed("validation"), 4096))
    candidates = [s for s in draw(split_seed(split), 4 * count + 64) if s not in taken]
    return candidates[:count]


def _targets(text: str, rate: float, sample_rate: int) -> dict[str, np.ndarray]:
    """Per-sample targets of `text`: voiced amplitude, formants `[3, n]` (Hz, before the
    voice's scaling), and noise segments (start, end, low Hz, high Hz, amplitude)."""
    voiced, formants, noises = [], [], []
    position = int(0.05 * sample_rate)
    voiced.append(np.zeros(position))
    formants.append(np.tile(np.array(_VOWELS["y"], float)[:, None], (1, position)))
    for char in text.lower():
        seconds, amplitude, shape = 0.0, 0.0, _VOWELS["y"]
        if char in _VOWELS:
            seconds, amplitude, shape = 0.1, 1.0, _VOWELS[char]
        elif char in _SONORANTS:
            shape, amplitude = _SONORANTS[char]
            seconds = 0.07
        elif char in _PAUSES:
            seconds = _PAUSES[char]
        if char in _NOISES:
            low, high, level, noise_seconds = _NOISES[char]
            seconds = max(seconds, noise_seconds)
            length = int(seconds * rate * sample_rate)
            noises.append((position, position + length, low, high, level))
        length = int(seconds * rate * sample_rate)
        voiced.append(np.full(length, amplitude))
        formants.append(np.tile(np.array(shape, float)[:, None], (1, length)))
        position += length
    tail = int(0.1 * sample_rate)
    voiced.append(np.zeros(tail))
    formants.append(np.tile(np.array(_VOWELS["y"], float)[:, None], (1, tail)))
    return {"voiced": np.concatenate(voiced), "formants": np.concatenate(formants, axis=1), "noises": noises}


def _smooth(x: np.ndarray, samples: int) -> np.ndarray:
    """Moving average of `x` `[..., n]` over `samples` along the last axis (coarticulation)."""
    kernel = np.ones(samples) / samples
    pad = samples // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, samples - pad - 1)], mode="edge")
    return np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="valid"), -1, padded)


def speak(text: str, voice: int, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """`text` read by voice `voice` (an index into VOICES), float32 `[samples]` at `sample_rate`
    Hz, peak 0.5; `seed` draws the small random variation of each reading."""
    f0, scale, rate, tilt = VOICES[voice % len(VOICES)]
    rng = np.random.default_rng(seed)
    rate *= rng.uniform(0.93, 1.07)
    targets = _targets(text, rate, sample_rate)
    n = len(targets["voiced"])
    smooth = int(0.02 * sample_rate)
    voiced = _smooth(targets["voiced"][None], smooth)[0]
    formants = _smooth(targets["formants"], smooth) * scale
    t = np.arange(n) / sample_rate
    pitch = f0 * rng.uniform(0.95, 1.05) * np.linspace(1.1, 0.88, n) * (1 + 0.02 * np.sin(2 * np.pi * 5.0 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    wave = np.zeros(n)
    for k in range(1, int(0.45 * sample_rate / f0)):
        frequency = k * pitch
        gain = sum(np.exp(-0.5 * ((frequency - formants[i]) / _BANDWIDTHS[i]) ** 2) * (1.0, 0.7, 0.4)[i]
                   for i in range(3))
        wave += (gain / k**tilt) * np.sin(k * phase) * (frequency < 0.45 * sample_rate)
    wave *= voiced
    for start, end, low, high, level in targets["noises"]:
        length = end - start
        if length <= 8:
            continue
        top = min(high * scale, 0.45 * sample_rate)  # below Nyquist at any rate
        band = signal.butter(2, [min(low * scale, 0.5 * top), top], btype="bandpass", fs=sample_rate, output="sos")
        burst = signal.sosfilt(band, rng.standard_normal(length)) * np.hanning(length)
        wave[start:end] += level * 4.0 * burst
    return (0.5 * wave / max(np.abs(wave).max(), 1e-6)).astype(np.float32)
