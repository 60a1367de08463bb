"""Speech from text, and voice cloning: the `tts` command.

    python -m audiolm_jax.tts --workdir RUN --text "the quiet river" --out DIR
    python -m audiolm_jax.tts --workdir RUN --text "the quiet river" \\
        --voice prompt.wav --voice-text "what the prompt says" --out DIR

Without `--voice` the model speaks the text from no audio (the go frames), in a voice of
its choosing. With `--voice`, as AudioLM and VALL-E do it: the recording's frames are the
decoder's prefix and its transcript comes before the new text, so the model continues the
recording with the new text in that voice (the page's sample is the recording followed by
the new speech, the boundary marked). Synthesis ends where the
end-of-audio gate fires (`--seconds` is the maximum). Writes wavs, a spectrogram with the
attention alignment beside it, and index.html. `--seconds` and `--num-samples` are
shorthands for `--sample.seconds` and `--sample.num_samples`; any other
`--sample.<field>=value` overrides the checkpoint's sampling settings. Decoding goes
through the one continuation path (`continuation.continue_prompts`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Optional, Sequence

import numpy as np

from audiolm_jax import audio, cli, conditioning, config as config_lib, continuation, generate, sample


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audiolm_jax.tts",
        description="Synthesise speech from text with a text-conditioned checkpoint, optionally in the voice of a "
                    "recording, and write a listening report. Any --sample.<field>=value overrides the "
                    "checkpoint's sampling settings.")
    parser.add_argument("--workdir", required=True, help="workdir of a text-conditioned (TTS) training run")
    parser.add_argument("--text", required=True, help="the text to speak")
    parser.add_argument("--voice", default=None, help="a recording whose voice to speak in (wav, flac, ...)")
    parser.add_argument("--voice-text", default=None, help="what the --voice recording says (its transcript)")
    parser.add_argument("--rate", type=float, default=None,
                        help="speaking rate in characters per second, or phonemes for a phoneme model (a model trained with "
                             "model.condition.speaking_rate or duration; default: the --voice recording's, "
                             "else the model's guess)")
    parser.add_argument("--seconds", type=float, default=None, help="most seconds of new speech (--sample.seconds)")
    parser.add_argument("--num-samples", type=int, default=None, help="renditions (--sample.num_samples)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--out", required=True, help="folder for wavs, PNGs and index.html")
    return parser


def check_tts_run(config: config_lib.ExperimentConfig, workdir: str) -> None:
    """A text-conditioned run is needed; ValueError naming the workdir otherwise."""
    if not config.model.condition.text:
        raise ValueError(f"'{workdir}' is not a text-conditioned run (model.condition.text is off): "
                         "train one, e.g. python -m experiments.tts_demo")


def recording_rate(config: config_lib.ExperimentConfig, text: str, wave: np.ndarray) -> float:
    """The speaking rate of a recording `wave` `[samples]` of `text` as training measures it
    (`data.records`): symbols (characters or phonemes, `model.condition.text_units`) per
    second over the seconds of its whole-window frames."""
    frames = audio.whole_window_frames(len(wave), config.audio)
    c = config.model.condition
    return float(conditioning.speaking_rates([text], [frames / config.audio.frames_per_second],
                                             c.max_text_chars, c.text_units, c.phoneme_language)[0])


def speech_prompt(config: config_lib.ExperimentConfig, stats, text: str, voice: Optional[tuple[str, object]] = None,
                  voice_text: Optional[str] = None, rate: Optional[float] = None) -> continuation.Prompt:
    """The prompt that speaks `text`: from no audio, or continuing `voice` (name, mono
    `[samples]` at `audio.sample_rate`) whose transcript `voice_text` comes before `text`.
    A model with a speaking-rate or duration conditioner (`model.condition.speaking_rate`,
    `duration`) speaks at `rate` characters per second (the duration: the text's characters
    over it, F5-TTS's estimate from a voice), by default the voice's own
    (`recording_rate`), without a voice at a rate it guesses; a model reading by durations
    (`model.condition.text_alignment`) scales its predicted durations of the new text to
    `rate`, by default to a voice's tempo (`continuation.synthesis_track`); a rate for a model without one, or not
    positive, is a ValueError. A voice must leave room in the trained window for the new
    speech: ValueError otherwise; a text longer than `model.condition.max_text_chars` is a
    ConditionError."""
    max_chars = config.model.condition.max_text_chars
    if rate is not None and not config.model.condition.paced:
        raise ValueError("a speaking rate needs a model trained with one (model.condition.speaking_rate "
                         "or model.condition.duration) or reading by durations (model.condition.text_alignment)")
    if rate is not None and not rate > 0:
        raise ValueError(f"the speaking rate must be positive {config.model.condition.text_units} per second, got {rate}")
    name = generate.prompt_name(None, text)
    if voice is None:
        full_text = conditioning.normalise_text(text)
        prompt = continuation.unconditional_prompt(config, stats, name, text=full_text)
    else:
        voice_name, wave = voice
        segment = config.data.segment_seconds
        heard = len(wave) / config.audio.sample_rate
        if heard > 0.75 * segment:
            raise ValueError(f"--voice '{voice_name}' is {heard:.2f} s; at most {0.75 * segment:.2f} s fits before "
                             f"the new speech in the model's {segment:g} s window (data.segment_seconds)")
        trained_on_pairs = config.data.paired_utterances > 0  # the break mark is known only to a model trained on pairs
        full_text = conditioning.join_transcripts(voice_text, text, marked=trained_on_pairs)
        if rate is None and config.model.condition.takes_rate:
            rate = recording_rate(config, voice_text, wave)
        prompt = dataclasses.replace(continuation.prompt_from_waveform(f"{name}_as_{voice_name}", wave, config),
                                     text=full_text)
    units = config.model.condition.text_units
    read = conditioning.read_as(full_text, units, config.model.condition.phoneme_language)
    if len(read) > max_chars:
        raise conditioning.ConditionError(f"the text is {len(read)} {units} (with the voice's transcript); "
                                          f"this model reads at most {max_chars} (model.condition.max_text_chars)")
    return dataclasses.replace(prompt, rate=rate)


def new_speech(cont: continuation.Continuation) -> list:
    """Each sample's new speech alone `[samples]`: the sample after its prompt audio."""
    start = len(cont.prompt)
    return [wave[start:] for wave in cont.full]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The TTS CLI; returns the exit status (2 for bad input, with a one-line error)."""
    cli.configure_logging()
    parser = _parser()
    args, overrides = cli.split_overrides(parser, argv, sections=("sample",))
    if (args.voice is None) != (args.voice_text is None):
        parser.error("--voice and --voice-text go together (the recording and what it says)")

    def action() -> str:
        sampler = sample.restore_sampler(args.workdir, overrides + cli.sample_shorthands(args, ("seconds", "num_samples")),
                                         step=args.step)
        check_tts_run(sampler.config, args.workdir)
        voice = None
        if args.voice is not None:
            voice = (os.path.splitext(os.path.basename(args.voice))[0],
                     audio.load(args.voice, sampler.config.audio.sample_rate))
        prompt = speech_prompt(sampler.config, sampler.stats, args.text, voice, args.voice_text, args.rate)
        return sample.write_report(sampler, [prompt], args.out)

    return cli.report_command(action)


if __name__ == "__main__":
    raise SystemExit(main())
