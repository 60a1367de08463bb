"""Sound from a label or a description: the `generate` command.

    python -m audiolm_jax.generate --workdir RUN --label thunder [--text "distant rolling thunder"] \\
        [--seconds 5] [--num-samples 4] [--guidance 3] --out DIR

The model generates from no audio (one group of the training set's mean frame) given the
label and/or text it was trained on, `--num-samples` variations at once, with
classifier-free guidance. `--seconds`, `--num-samples` and `--guidance` are shorthands for
`--sample.seconds`, `--sample.num_samples` and `--sample.guidance`; any other
`--sample.<field>=value` overrides the checkpoint's sampling settings. Decoding goes
through the one continuation path (`continuation.continue_prompts`); this module only
turns the command line into a prompt and writes the report.
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from audiolm_jax import cli, continuation, sample


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audiolm_jax.generate",
        description="Generate sounds of a label or a description with a conditioned checkpoint and write a "
                    "listening report. Any --sample.<field>=value overrides the checkpoint's sampling settings.")
    parser.add_argument("--workdir", required=True, help="workdir of a conditioned training run")
    parser.add_argument("--label", default=None, help="a label of the run's label set (see <workdir>/labels.json)")
    parser.add_argument("--text", default=None, help="a description, for a text-conditioned run")
    parser.add_argument("--seconds", type=float, default=None, help="seconds to generate (--sample.seconds)")
    parser.add_argument("--num-samples", type=int, default=None, help="variations (--sample.num_samples)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance scale (--sample.guidance)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--out", required=True, help="folder for wavs, PNGs and index.html")
    return parser


def prompt_name(label: Optional[str], text: Optional[str]) -> str:
    """A file-name-safe name for the generated set."""
    import re

    words = " ".join(w for w in (label, text) if w)
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")[:60] or "generated"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The generation CLI; returns the exit status (2 for bad input, with a one-line error)."""
    cli.configure_logging()
    parser = _parser()
    args, overrides = cli.split_overrides(parser, argv, sections=("sample",))
    if args.label is None and args.text is None:
        parser.error("give --label NAME and/or --text \"...\"")

    def action() -> str:
        sampler = sample.restore_sampler(args.workdir, overrides + cli.sample_shorthands(args, ("seconds", "num_samples", "guidance")), step=args.step)
        if not sampler.config.model.condition.active:
            raise ValueError(f"'{args.workdir}' is not a conditioned run (model.condition has no label or text): "
                             "use python -m audiolm_jax.sample")
        prompt = continuation.unconditional_prompt(sampler.config, sampler.stats, prompt_name(args.label, args.text),
                                                   label=args.label, text=args.text)
        return sample.write_report(sampler, [prompt], args.out)

    return cli.report_command(action)


if __name__ == "__main__":
    raise SystemExit(main())
