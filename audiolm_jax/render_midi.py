"""Piano from MIDI: the `render_midi` command.

    python -m audiolm_jax.render_midi --workdir RUN --midi piece.mid [--start 0 --seconds 10] \\
        [--prompt recording.wav] [--num-samples 2] [--guidance 1] --out DIR

Renders `--seconds` of the MIDI file from `--start` (seconds) with a MIDI-conditioned
checkpoint (`model.condition.midi="frames"`). Without `--prompt` the model starts from no
audio (one group of the training set's mean frame). With `--prompt`, the recording is the
performance of the MIDI's first seconds (its first sample is MIDI time `--start`; at most
`sample.prompt_seconds` of it are used) and the model carries on playing the rest, in its
sound. Writes each rendering as wav, its spectrogram with the notes drawn over it, and
index.html. `--num-samples` and `--guidance` stand for `--sample.num_samples` and
`--sample.guidance`; any `--sample.<field>=value` overrides the checkpoint's sampling
settings. Decoding goes through the one continuation path (`continuation.continue_prompts`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Optional, Sequence

from audiolm_jax import cli, config as config_lib, continuation, midi, sample


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audiolm_jax.render_midi",
        description="Render a MIDI file with a MIDI-conditioned checkpoint (optionally continuing a recorded "
                    "prompt) and write a listening report. Any --sample.<field>=value overrides the "
                    "checkpoint's sampling settings.")
    parser.add_argument("--workdir", required=True, help="workdir of a MIDI-conditioned training run")
    parser.add_argument("--midi", required=True, help="a .mid/.midi file")
    parser.add_argument("--start", type=float, default=0.0, help="seconds into the MIDI file to start at")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of MIDI to render (prompt included)")
    parser.add_argument("--prompt", default=None, help="a recording of the MIDI's first seconds to continue")
    parser.add_argument("--num-samples", type=int, default=None, help="renderings (--sample.num_samples)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance scale (--sample.guidance)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--out", required=True, help="folder for wavs, PNGs and index.html")
    return parser


def midi_prompt(config: config_lib.ExperimentConfig, sampler: sample.Sampler, notes_path: str, start: float,
                seconds: float, prompt_path: Optional[str]) -> tuple[continuation.Prompt, float]:
    """The prompt that renders `seconds` of `notes_path` from `start`, and the seconds the
    model generates: all of them from no audio, or what follows the recording at `prompt_path`."""
    notes = midi.window_notes(midi.read_notes(notes_path), start, seconds)
    name = os.path.splitext(os.path.basename(notes_path))[0]
    if prompt_path is None:
        return continuation.unconditional_prompt(config, sampler.stats, name, notes=notes), seconds
    prompt = sample.load_prompts([prompt_path], config)[0]
    heard = len(prompt.waveform) / config.audio.sample_rate
    if heard >= seconds:
        raise ValueError(f"--prompt '{prompt_path}' is {heard:.2f} s (after sample.prompt_seconds), not shorter "
                         f"than --seconds {seconds:g}: nothing would be rendered")
    return dataclasses.replace(prompt, name=f"{name}_{prompt.name}", notes=notes), seconds - heard


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The MIDI-rendering CLI; returns the exit status (2 for bad input, with a one-line error)."""
    cli.configure_logging()
    parser = _parser()
    args, overrides = cli.split_overrides(parser, argv, sections=("sample",))
    if args.seconds <= 0 or args.start < 0:
        parser.error("--seconds must be positive and --start at least 0")
    shorthands = cli.sample_shorthands(args, ("num_samples", "guidance"))  # --seconds is the MIDI's, not sample's

    def action() -> str:
        sampler = sample.restore_sampler(args.workdir, overrides + shorthands, step=args.step)
        if sampler.config.model.condition.midi == "none":
            raise ValueError(f"'{args.workdir}' is not a MIDI-conditioned run (model.condition.midi is 'none'): "
                             "use python -m audiolm_jax.sample")
        prompt, generated = midi_prompt(sampler.config, sampler, args.midi, args.start, args.seconds, args.prompt)
        config = cli.apply_overrides(sampler.config, [f"--sample.seconds={generated}"])
        return sample.write_report(dataclasses.replace(sampler, config=config), [prompt], args.out)

    return cli.report_command(action)


if __name__ == "__main__":
    raise SystemExit(main())
