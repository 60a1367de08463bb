"""The embedded dataset: deterministic piano-like music synthesised with numpy.

Each clip is a run of note events on a beat grid at its own tempo: single notes and chords
of harmonic, slightly inharmonic partials (as a piano string's), each with a short attack
and an exponential decay that is faster for higher pitches and higher partials. Clip `i`
of a split depends only on (split seed, i), so the set is identical on every machine and
needs no download.
"""

from __future__ import annotations

import numpy as np

from audiolm_jax.midi import pitch_hz

_SPLIT_SEEDS = {"train": 0, "validation": 1, "test": 2}
_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])  # major scale degrees (semitones)


def split_seed(split: str) -> int:
    """The seed of a split name; raises ValueError naming the allowed splits."""
    if split not in _SPLIT_SEEDS:
        raise ValueError(f"synthetic split {split!r}: expected one of {sorted(_SPLIT_SEEDS)}")
    return _SPLIT_SEEDS[split]


def _note(f0: float, velocity: float, duration_samples: int, sample_rate: int,
          rng: np.random.Generator) -> np.ndarray:
    """One piano-like note `[duration_samples]`: 8 inharmonic partials, attack, decay."""
    t = np.arange(duration_samples) / sample_rate  # seconds
    harmonics = np.arange(1, 9)
    inharmonicity = 1e-4 * rng.uniform(0.5, 2.0)
    freqs = f0 * harmonics * np.sqrt(1.0 + inharmonicity * harmonics**2)  # [8] Hz
    keep = freqs < 0.45 * sample_rate
    freqs, harmonics = freqs[keep], harmonics[keep]
    amps = velocity / harmonics**1.3 * rng.uniform(0.7, 1.0, size=len(harmonics))
    decay = (0.8 + f0 / 300.0) * (1.0 + 0.35 * (harmonics - 1))  # [partials] 1/s
    attack = np.minimum(t / 0.006, 1.0)
    phases = rng.uniform(0, 2 * np.pi, size=len(harmonics))
    partials = np.sin(2 * np.pi * freqs[:, None] * t[None, :] + phases[:, None])
    return attack * np.sum(amps[:, None] * np.exp(-decay[:, None] * t[None, :]) * partials, axis=0)


def synthesize_clip(seed: int, index: int, seconds: float, sample_rate: int) -> np.ndarray:
    """Clip `index` of the split with `seed`: mono float32 `[seconds * sample_rate]` in [-1, 1].

    A clip repeats a short motif (2-4 beats, each a note or chord of up to 3 notes from a
    major scale) at a tempo of 90-200 bpm, with small velocity variations: music's
    structure, which a model can learn from context and a frame-copying baseline cannot.
    """
    return synthesize_clip_with_notes(seed, index, seconds, sample_rate)[0]


def synthesize_clip_with_notes(seed: int, index: int, seconds: float, sample_rate: int
                               ) -> tuple[np.ndarray, np.ndarray]:
    """`synthesize_clip`'s audio `[samples]` and the notes it plays `[N, 4]` float32 (onset
    and offset in seconds, MIDI pitch, MIDI velocity 1-127), the clip's exact MIDI."""
    rng = np.random.default_rng([seed, index])
    total = int(round(seconds * sample_rate))
    out = np.zeros(total, np.float64)
    notes = []
    beat = int(60.0 / rng.uniform(90, 200) * sample_rate)  # samples per beat
    key = rng.integers(45, 60)  # MIDI root note
    polyphony = rng.integers(1, 4)  # most notes per chord in this clip
    motif = [rng.choice(len(_SCALE) * 3, size=rng.integers(1, polyphony + 1), replace=False)
             for _ in range(rng.integers(2, 5))]
    accents = rng.uniform(0.4, 1.0, size=len(motif))
    onset, position = int(rng.uniform(0, 1) * beat), 0
    while onset < total:
        end = min(onset + int(beat * rng.uniform(1.5, 3.0)), total)
        degrees = motif[position % len(motif)]
        velocity = accents[position % len(motif)] * rng.uniform(0.9, 1.1)
        for degree in degrees:
            midi = key + 12 * (degree // len(_SCALE)) + _SCALE[degree % len(_SCALE)]
            f0 = float(pitch_hz(midi))
            out[onset:end] += _note(f0, velocity / len(degrees) ** 0.5, end - onset, sample_rate, rng)
            notes.append((onset / sample_rate, end / sample_rate, midi, np.clip(round(127 * velocity), 1, 127)))
        onset += beat
        position += 1
    out += 1e-4 * rng.standard_normal(total)  # room noise: keeps the log-mel finite
    audio = (0.8 * out / max(np.max(np.abs(out)), 1e-6)).astype(np.float32)
    return audio, np.array(notes, np.float32).reshape(-1, 4)
