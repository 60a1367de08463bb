"""Mel → waveform for 10 s of 22.05 kHz audio: librosa's `mel_to_audio` vs ours, both 32
Griffin-Lim iterations, with the spectral convergence each reaches; and Griffin-Lim alone,
librosa vs JAX, at batch 1 and batch 16.

Targets (issue 3): ours mel→waveform ≥ 10× librosa at spectral convergence no worse than
librosa's + 0.5 dB; JAX Griffin-Lim ≥ 2× librosa at equal iterations. Both sides timed
interleaved (ours, librosa, ...) for 5 repeats after a warm-up; medians, spreads, and the
ratio at the spread's worst end, which must clear the target.
"""

from __future__ import annotations

import jax
import numpy as np

from audiolm_jax import audio, invert
from audiolm_jax.config import AudioConfig
from benchmarks.common import emit_timed, interleaved_seconds
from tests.signals import piano_like

CONFIG = AudioConfig(sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256, n_mels=80)
ITERS = 32


def main() -> None:
    wave = piano_like(10.0, CONFIG.sample_rate, seed=0)
    log_mel = audio.log_mel_numpy(wave, CONFIG)[None]
    target = np.asarray(audio.stft_magnitude_jax(wave[None], CONFIG))
    n = len(wave)

    times = interleaved_seconds({"ours": lambda: invert.mel_to_audio(log_mel, CONFIG, "jax", ITERS, 0, n),
                                 "librosa": lambda: invert.mel_to_audio(log_mel, CONFIG, "librosa", ITERS, 0, n)})
    sc_ref = float(invert.spectral_convergence_db(invert.mel_to_audio(log_mel, CONFIG, "librosa", ITERS, 0, n), target, CONFIG)[0])
    sc_ours = float(invert.spectral_convergence_db(invert.mel_to_audio(log_mel, CONFIG, "jax", ITERS, 0, n), target, CONFIG)[0])
    emit_timed("inversion", "mel->wave 10s, 32 it", times["ours"], times["librosa"], target=10.0,
               sc_ours_db=sc_ours, sc_librosa_db=sc_ref, quality_ok=sc_ours <= sc_ref + 0.5)

    for batch in (1, 16):
        mags = np.repeat(target, batch, axis=0)
        key = jax.random.key(0)
        times = interleaved_seconds({"ours": lambda: invert.griffin_lim_jax(mags, CONFIG, ITERS, key, n),
                                     "librosa": lambda: invert.griffin_lim_librosa(mags, CONFIG, ITERS, 0, n)})
        emit_timed("inversion", f"griffin-lim only, batch {batch}", times["ours"], times["librosa"], target=2.0)

if __name__ == "__main__":
    main()
