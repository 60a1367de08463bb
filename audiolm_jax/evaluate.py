"""Evaluation of a checkpoint: teacher-forced loss against the copy-last-frame baseline, and
collapse detectors for free-running continuations.

    python -m audiolm_jax.evaluate --workdir RUN [--split validation] [--prompts 8]

Prints the metrics and writes `<workdir>/eval.json` atomically:
- `val_loss`, `val_mse`, `baseline_mse`, `baseline_ratio`: teacher-forced, on the split's
  deterministic evaluation crops (the model sees the true past; < 1 beats copying).
- For continuations of `sample.seconds` after `sample.prompt_seconds` of each prompt:
  `energy_drift_db` (mean frame energy of the continuation minus the prompt's),
  `spectral_flux_ratio` (frame-to-frame change of the continuation over the prompt's; near
  0 means frozen, ≫ 1 noisy), `silent_fraction` (frames 60 dB below the prompt's peak) and
  `frozen_fraction` (frames changing by < 0.1 dB RMS from the previous one).
- `resynthesis_sc_db`: spectral convergence of the inversion of the prompts' true log-mels.
- With the `eval` extra (`speechmos`, whose DNSMOS ONNX models ship inside the package and
  run offline) and speech (`librispeech` source, or `--dnsmos on`): `dnsmos_prompt_ovrl`,
  `dnsmos_continuation_ovrl` (and `_p808`), mean opinion scores of the real prompts and of
  the inverted continuations.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

import jax
import numpy as np

from audiolm_jax import atomic, audio, invert, sample, train
from audiolm_jax.config import ConfigError

log = logging.getLogger(__name__)


def frame_energy_db(log_mel_db: np.ndarray) -> np.ndarray:
    """Energy per frame in dB `[frames]` of a log-mel `[frames, n_mels]` in dB."""
    return 10.0 * np.log10(np.sum(audio.db_to_power(log_mel_db), axis=-1) + 1e-10)


def frame_flux_db(log_mel_db: np.ndarray) -> np.ndarray:
    """RMS over bins of the dB change from the previous frame, `[frames - 1]`."""
    return np.sqrt(np.mean(np.diff(log_mel_db, axis=0) ** 2, axis=-1))


def continuation_metrics(prompt_db: np.ndarray, continuation_db: np.ndarray) -> dict[str, float]:
    """Collapse detectors comparing a continuation `[frames, n_mels]` with its prompt (dB)."""
    prompt_energy, cont_energy = frame_energy_db(prompt_db), frame_energy_db(continuation_db)
    prompt_flux = float(np.mean(frame_flux_db(prompt_db)))
    cont_flux = frame_flux_db(continuation_db)
    return {
        "energy_drift_db": float(np.mean(cont_energy) - np.mean(prompt_energy)),
        "spectral_flux_ratio": float(np.mean(cont_flux) / max(prompt_flux, 1e-6)),
        "silent_fraction": float(np.mean(cont_energy < np.max(prompt_energy) - 60.0)),
        "frozen_fraction": float(np.mean(cont_flux < 0.1)),
    }


def dnsmos_scores(waveform: np.ndarray, sample_rate: int) -> dict[str, float]:
    """DNSMOS overall and P.808 scores of mono `[samples]` audio (resampled to 16 kHz)."""
    import librosa
    from speechmos import dnsmos

    wave = librosa.resample(waveform, orig_sr=sample_rate, target_sr=16000) if sample_rate != 16000 else waveform
    scores = dnsmos.run(np.clip(np.asarray(wave, np.float32), -1.0, 1.0), 16000, return_df=False)
    return {"ovrl": float(scores["ovrl_mos"]), "p808": float(scores["p808_mos"])}


def dnsmos_available() -> bool:
    """Whether the optional `eval` extra (speechmos + onnxruntime) is installed."""
    try:
        import speechmos.dnsmos  # noqa: F401
    except ImportError:
        return False
    return True


def evaluate_checkpoint(workdir: str, split: str | None = None, num_prompts: int = 8,
                        dnsmos: str = "auto") -> dict[str, float]:
    """All metrics of the latest checkpoint in `workdir` (see the module docstring).

    `dnsmos`: 'on', 'off', or 'auto' (on for speech data when the `eval` extra is installed).
    """
    from audiolm_jax import data as data_lib
    from audiolm_jax.model import MelTransformer

    sampler = sample.restore_sampler(workdir)
    cfg = sampler.config
    if split is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, eval_split=split))
    data = data_lib.prepare(cfg, stats=sampler.stats)
    mesh = train.make_mesh(jax.devices()[:1])
    length = data_lib.segment_frames(cfg.data.segment_seconds, cfg.audio, cfg.model.frames_per_step)
    batches = data.eval_batches(cfg.train.batch_size, length, cfg.train.eval_batches)
    teacher = train.evaluate(train.make_eval_step(MelTransformer(cfg.model, cfg.audio.n_mels), cfg, mesh),
                             sampler.params, batches, mesh)
    metrics = {"step": sampler.step, "split": cfg.data.eval_split, "val_loss": teacher["loss"],
               "val_mse": teacher["mse"], "baseline_mse": teacher["baseline_mse"],
               "baseline_ratio": teacher["baseline_ratio"]}

    prompt_samples = int(round(cfg.sample.prompt_seconds * cfg.audio.sample_rate))
    prompts = [w[:prompt_samples] for w in data.eval_waveforms[:num_prompts]]
    prompts = [p for p in prompts if len(p) >= cfg.audio.hop_length * cfg.model.frames_per_step]
    use_dnsmos = dnsmos == "on" or (dnsmos == "auto" and cfg.data.source == "librispeech")
    if use_dnsmos and not dnsmos_available():
        if dnsmos == "on":
            raise ValueError("--dnsmos on needs the eval extra: pip install -e '.[eval]'")
        log.warning("DNSMOS skipped: install the eval extra (speechmos) to score speech")
        use_dnsmos = False
    per_prompt, sc, mos = [], [], []
    for i, wave in enumerate(prompts):
        prompt_db = np.asarray(audio.log_mel_jax(wave[None], cfg.audio))
        generated = sample.generate(cfg.model, sampler.params, sampler.stats.normalise(prompt_db),
                                    int(round(cfg.sample.seconds * cfg.audio.frames_per_second)),
                                    jax.random.PRNGKey(cfg.sample.seed + i), cfg.sample.temperature,
                                    cfg.model.prenet_dropout_at_sampling)
        generated_db = sampler.stats.denormalise(generated)[0]
        used = generated_db.shape[0] - int(round(cfg.sample.seconds * cfg.audio.frames_per_second))
        per_prompt.append(continuation_metrics(generated_db[:used], generated_db[used:]))
        if use_dnsmos:
            full = invert.mel_to_audio(generated_db[None], cfg.audio, cfg.sample.inversion,
                                       cfg.sample.griffin_lim_iters, seed=i)[0]
            continuation = full[len(wave):]
            prompt_mos, cont_mos = dnsmos_scores(wave, cfg.audio.sample_rate), dnsmos_scores(continuation, cfg.audio.sample_rate)
            mos.append({"dnsmos_prompt_ovrl": prompt_mos["ovrl"], "dnsmos_prompt_p808": prompt_mos["p808"],
                        "dnsmos_continuation_ovrl": cont_mos["ovrl"], "dnsmos_continuation_p808": cont_mos["p808"]})
        rebuilt = invert.mel_to_audio(prompt_db, cfg.audio, cfg.sample.inversion, cfg.sample.griffin_lim_iters,
                                      seed=i, length=len(wave))
        target = np.asarray(audio.stft_magnitude_jax(wave[None], cfg.audio))
        sc.append(float(invert.spectral_convergence_db(rebuilt, target, cfg.audio)[0]))
    for key in ("energy_drift_db", "spectral_flux_ratio", "silent_fraction", "frozen_fraction"):
        metrics[key] = float(np.mean([m[key] for m in per_prompt])) if per_prompt else float("nan")
    metrics["resynthesis_sc_db"] = float(np.mean(sc)) if sc else float("nan")
    for key in (mos[0] if mos else {}):
        metrics[key] = float(np.mean([m[key] for m in mos]))
    metrics["num_prompts"] = len(per_prompt)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiolm_jax.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="workdir of a training run")
    parser.add_argument("--split", default=None, help="evaluation split (default: the config's data.eval_split)")
    parser.add_argument("--prompts", type=int, default=8, help="validation prompts to continue")
    parser.add_argument("--dnsmos", choices=("auto", "on", "off"), default="auto",
                        help="DNSMOS of prompts and continuations (auto: for speech, if the eval extra is installed)")
    args = parser.parse_args(argv)
    from audiolm_jax.cli import configure_logging

    configure_logging()
    try:
        metrics = evaluate_checkpoint(args.workdir, args.split, args.prompts, args.dnsmos)
    except (FileNotFoundError, ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    atomic.write_json(os.path.join(args.workdir, "eval.json"), metrics)
    for key, value in metrics.items():
        print(f"{key:>20}: {value:.4f}" if isinstance(value, float) else f"{key:>20}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
