"""Resynthesis: wav → log-mel → wav, to hear what the mel representation and inversion keep.

    python -m audiolm_jax.resynth IN OUT [--backend jax|librosa] [--iters 32] [--config experiments.demo]

Prints the spectral convergence (dB, lower is better) of OUT against IN's STFT magnitude and
the seconds each stage took. Audio settings come from the experiment's `AudioConfig`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

import numpy as np


def _audio_config(module_name: str):
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        raise SystemExit(f"error: --config {module_name!r}: no such module (expected e.g. experiments.demo)")
    if not hasattr(module, "config"):
        raise SystemExit(f"error: --config {module_name!r}: the module defines no config()")
    return module.config().audio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiolm_jax.resynth", description=__doc__.splitlines()[0])
    parser.add_argument("input", help="audio file to analyse (wav/flac/ogg/mp3)")
    parser.add_argument("output", help="wav file to write")
    parser.add_argument("--backend", choices=("jax", "librosa"), default="jax")
    parser.add_argument("--iters", type=int, default=32, help="Griffin-Lim iterations")
    parser.add_argument("--config", default="experiments.demo", help="experiment module whose audio settings to use")
    args = parser.parse_args(argv)
    if args.iters <= 0:
        parser.error(f"--iters {args.iters}: expected a positive number of iterations")

    from audiolm_jax import audio, invert

    cfg = _audio_config(args.config)
    timings = {}
    start = time.perf_counter()
    try:
        wave = audio.load(args.input, cfg.sample_rate)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    log_mel = np.asarray(audio.log_mel_jax(wave[None], cfg))
    timings["log-mel"] = time.perf_counter() - start

    start = time.perf_counter()
    rebuilt = invert.mel_to_audio(log_mel, cfg, args.backend, args.iters, seed=0, length=len(wave))
    timings[f"invert ({args.backend}, {args.iters} it)"] = time.perf_counter() - start

    start = time.perf_counter()
    audio.save(args.output, rebuilt[0], cfg.sample_rate)
    timings["save"] = time.perf_counter() - start

    target = np.asarray(audio.stft_magnitude_jax(wave[None], cfg))
    sc = float(invert.spectral_convergence_db(rebuilt, target, cfg)[0])
    print(f"spectral convergence: {sc:.2f} dB  ({len(wave) / cfg.sample_rate:.2f} s at {cfg.sample_rate} Hz)")
    for stage, seconds in timings.items():
        print(f"  {stage:<24} {seconds:7.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
