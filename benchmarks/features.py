"""Log-mel of a batch of 16 × 10 s clips: the numpy/librosa path vs the JAX path (jit, CPU),
timed interleaved (ours, librosa, ours, ...) for 7 repeats after a warm-up: medians and spreads;
librosa in a process of its own (`common.ProcessSide`), idle while ours runs.

Target (issue 15): JAX ≥ 2× the numpy path, met only when the whole spread clears it. Both
compute identical numbers (tests check ≤ 0.01 dB); the numpy path loops over clips as
librosa users do.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from audiolm_jax import audio
from audiolm_jax.config import AudioConfig
from benchmarks.common import ProcessSide, emit_timed, interleaved_seconds
from tests.signals import piano_like

CONFIG = AudioConfig(sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256, n_mels=80)


def librosa_side(clips: np.ndarray):
    """The numpy/librosa path for `ProcessSide` (its own process): log-mel of each clip."""
    return lambda: [audio.log_mel_numpy(c, CONFIG) for c in clips], None


def main() -> None:
    clips = np.stack([piano_like(10.0, CONFIG.sample_rate, seed=s) for s in range(16)])
    jitted = jax.jit(audio.log_mel_jax, static_argnums=1)
    device_clips = jax.device_put(clips)
    reference = ProcessSide(functools.partial(librosa_side, clips))
    times = interleaved_seconds({"ours": lambda: jitted(device_clips, CONFIG), "librosa": reference}, repeats=7)
    reference.close()
    diff = float(np.max(np.abs(np.asarray(jitted(device_clips, CONFIG))[0] - audio.log_mel_numpy(clips[0], CONFIG))))
    emit_timed("features", "log-mel 16x10s @22.05kHz, JAX vs librosa", times["ours"], times["librosa"], target=2.0,
               max_abs_diff_db=diff, backend=jax.default_backend())

if __name__ == "__main__":
    main()
