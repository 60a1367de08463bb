"""Sampling from a checkpoint: restoring what sampling needs, and the `sample` command.

    python -m audiolm_jax.sample --workdir RUN --prompt a.wav [b.flac ...] --out DIR [--sample.seconds=8 ...]
    python -m audiolm_jax.sample --workdir RUN --unconditional --out DIR

Settings are the checkpoint's `SampleConfig`; any `--sample.<field>=value` overrides one
(the same dotted convention as the experiments). Decoding is `decode.py`, waveform in and
out `continuation.py`: this module only restores and writes the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from typing import Any, Optional, Sequence

import jax

from audiolm_jax import checkpoint, cli, conditioning, continuation, metrics, report
from audiolm_jax.config import ExperimentConfig
from audiolm_jax.stats import NormStats

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Sampler:
    """A trained model ready to sample: its config, params, normalisation statistics and,
    for a label-conditioned model, its label set."""

    config: ExperimentConfig
    params: Any
    stats: NormStats
    step: int
    labels: Optional[conditioning.LabelSet] = None


def restore_sampler(workdir: str, overrides: Sequence[str] = (), step: Optional[int] = None) -> Sampler:
    """Config, stats and params of the latest (or given) checkpoint.

    `overrides` (`--sample.seconds=8`, ...) apply to the checkpoint's config and are
    validated; `sample.use_ema` then picks the EMA or the raw params. Restores onto the
    default device, whatever number of devices trained it. Raises FileNotFoundError
    naming the workdir when it holds no checkpoint.
    """
    step = checkpoint.latest_step(workdir) if step is None else step
    if step is None:
        raise FileNotFoundError(f"'{checkpoint.checkpoint_dir(workdir)}': no complete checkpoint "
                                "(train first, or pass the workdir of a training run)")
    mngr = checkpoint.manager(workdir, read_only=True)
    try:
        config, stats = checkpoint.restore_metadata(mngr, step)
        config = cli.apply_overrides(config, list(overrides))
        params = checkpoint.restore_params(mngr, step, config, config.sample.use_ema)
    finally:
        mngr.close()
    labels = conditioning.LabelSet.load(workdir) if config.model.condition.label else None
    return Sampler(config, params, stats, step, labels)


# ---------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audiolm_jax.sample",
        description="Continue audio prompts with a trained checkpoint and write a listening report. "
                    "Any --sample.<field>=value overrides the checkpoint's sampling settings.")
    parser.add_argument("--workdir", required=True, help="workdir of a training run (holds checkpoints/)")
    parser.add_argument("--prompt", nargs="+", default=[], help="prompt audio files (any rate, any channels)")
    parser.add_argument("--unconditional", action="store_true",
                        help="no prompt: start from one group of the training set's mean frame")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--out", required=True, help="folder for wavs, PNGs and index.html")
    return parser


def load_prompts(paths: Sequence[str], config: ExperimentConfig) -> list[continuation.Prompt]:
    """The first `sample.prompt_seconds` of each audio file, as prompts (a shorter file is used
    whole, with a warning)."""
    from audiolm_jax import audio

    rate, want = config.audio.sample_rate, int(round(config.sample.prompt_seconds * config.audio.sample_rate))
    prompts = []
    for path in paths:
        wave = audio.load(path, rate)
        if len(wave) < want:
            log.warning("'%s' is %.2f s, shorter than sample.prompt_seconds %.2f: using all of it",
                        path, len(wave) / rate, config.sample.prompt_seconds)
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            prompts.append(continuation.prompt_from_waveform(name, wave[:want], config))
        except ValueError as e:
            raise ValueError(f"'{path}': {e}") from None
    return prompts


def write_report(sampler: Sampler, prompts: list[continuation.Prompt], out_dir: str,
                 progress: str = "generate+invert") -> str:
    """Continues `prompts` with the sampler's settings (a progress bar labelled `progress`
    over them) and writes the report; returns index.html."""
    cfg, s = sampler.config, sampler.config.sample
    conts = continuation.continue_prompts(cfg, sampler.params, sampler.stats, prompts, jax.random.PRNGKey(s.seed),
                                          sampler.labels, progress)
    notes = [f"checkpoint step {sampler.step} of {os.path.abspath(cfg.workdir)}",
             f"{s.prompt_seconds:g} s prompt, {s.seconds:g} s continuation, temperature {s.temperature:g}, "
             + (f"component temperature {s.component_temperature:g}, " if s.component_temperature != 1 else "")
             + f"prenet dropout {'on' if continuation.prenet_dropout_at_sampling(cfg) else 'off'}, "
             + ("" if cfg.model.feedback else "no feedback (only a prompt of audio is heard), ")
             + f"{'EMA' if s.use_ema else 'raw'} params, {s.inversion} Griffin-Lim × {s.griffin_lim_iters}"
             + (f", guidance {s.guidance:g}" if cfg.model.condition.active else "")]
    summary, per_sample = metrics.continuation_summary(conts, cfg.audio.frames_per_second, sampler.stats.bounds_db())
    if any(c.prompt_frames for c in conts):  # generations from no audio have no prompt to compare with
        notes.append("metrics against each prompt: " + ", ".join(f"{k} {v:.3g}" for k, v in summary.items())
                     + " (mean over samples; see python -m audiolm_jax.evaluate)")
    return report.write_continuation_report(out_dir, conts, cfg.audio, f"{cfg.name}: prompted continuation", notes,
                                            per_sample)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The sampling CLI; returns the exit status (2 for bad input, with a one-line error)."""
    cli.configure_logging()
    parser = _parser()
    args, overrides = cli.split_overrides(parser, argv, sections=("sample",))
    if not args.prompt and not args.unconditional:
        parser.error("give --prompt FILE [FILE ...] or --unconditional")

    def action() -> str:
        sampler = restore_sampler(args.workdir, overrides, step=args.step)
        prompts = load_prompts(args.prompt, sampler.config)
        if args.unconditional:
            prompts.append(continuation.unconditional_prompt(sampler.config, sampler.stats))
        return write_report(sampler, prompts, args.out)

    return cli.report_command(action)


if __name__ == "__main__":
    raise SystemExit(main())
