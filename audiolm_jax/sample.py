"""Sampling: prompted continuation with a KV cache, and restoring params for it.

`generate` prefills the cache with the prompt's groups of normalised log-mel frames, then
decodes one group per step inside a single jit-compiled `lax.scan` (no Python loop per
frame). When the continuation is longer than the model's context (`max_frames`), it slides
the window: it re-prefills with the most recent half of the context and carries on.
`generate_by_recompute` is the slow reference (a full forward pass per step) for tests.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from audiolm_jax import checkpoint
from audiolm_jax.config import ExperimentConfig, ModelConfig
from audiolm_jax.data.pipeline import NormStats
from audiolm_jax.model import MelTransformer, group_frames, init_cache, ungroup_frames


@dataclasses.dataclass(frozen=True)
class Sampler:
    """A trained model ready to sample: its config, params and normalisation statistics."""

    config: ExperimentConfig
    params: Any
    stats: NormStats
    step: int


def restore_sampler(workdir: str, use_ema: bool = True, step: Optional[int] = None) -> Sampler:
    """Params (EMA by default), config and stats from the latest (or given) checkpoint.

    Restores onto the default device, whatever number of devices trained it.
    Raises FileNotFoundError naming the workdir when it holds no checkpoint.
    """
    from audiolm_jax import train  # local: train imports the data pipeline, sampling need not

    step = checkpoint.latest_step(workdir) if step is None else step
    if step is None:
        raise FileNotFoundError(f"'{checkpoint.checkpoint_dir(workdir)}': no complete checkpoint "
                                "(train first, or pass the workdir of a training run)")
    mngr = checkpoint.manager(workdir, read_only=True)
    try:
        config, stats = checkpoint.restore_metadata(mngr, step)
        mesh = train.make_mesh(jax.devices()[:1])
        abstract = train.abstract_state(config, train.optimizer(config.train), mesh)
        state = checkpoint.restore_state(mngr, step, abstract)
    finally:
        mngr.close()
    return Sampler(config, state.ema_params if use_ema else state.params, stats, step)


# ---------------------------------------------------------------------------------------
# Decoding


# Generated frames are kept within this many training standard deviations of the per-bin
# mean: free-running generation fed its own outputs must not run away to infinite power.
MAX_ABS_NORMALISED = 8.0


def _draw(outputs: dict[str, jax.Array], key: jax.Array, temperature: float) -> jax.Array:
    """The next group from head outputs: the mean, plus scaled noise for the gaussian head."""
    x = outputs["mean"]
    if "log_scale" in outputs and temperature > 0:
        x = x + temperature * jnp.exp(outputs["log_scale"]) * jax.random.normal(key, x.shape)
    return jnp.clip(x, -MAX_ABS_NORMALISED, MAX_ABS_NORMALISED)


@functools.partial(jax.jit, static_argnames=("model_config", "n_mels", "temperature", "prenet_dropout"))
def _prefill(model_config: ModelConfig, n_mels: int, params: Any, context: jax.Array, key: jax.Array,
             temperature: float, prenet_dropout: bool) -> tuple[jax.Array, list]:
    """Runs `context` `[B, C, r*M]` into a fresh cache; returns the next group `[B, 1, r*M]`."""
    model = MelTransformer(model_config, n_mels)
    cache = init_cache(model.config, context.shape[0])
    outputs, cache = model.apply({"params": params}, context, cache=cache, start=0,
                                 prenet_deterministic=not prenet_dropout,
                                 rngs={"dropout": jax.random.fold_in(key, 0)})
    last = {k: v[:, -1:] for k, v in outputs.items()}
    return _draw(last, jax.random.fold_in(key, 1), temperature), cache


@functools.partial(jax.jit, static_argnames=("model_config", "n_mels", "num_steps", "temperature",
                                             "prenet_dropout"))
def _decode(model_config: ModelConfig, n_mels: int, params: Any, cache: list, start: jax.Array,
            first: jax.Array, key: jax.Array, num_steps: int, temperature: float,
            prenet_dropout: bool) -> jax.Array:
    """Feeds `first` `[B, 1, r*M]` at position `start` and each prediction after it, `num_steps`
    times; returns the `num_steps` predicted groups `[B, num_steps, r*M]`."""
    model = MelTransformer(model_config, n_mels)

    def step(carry, i):
        cache, current = carry
        step_key = jax.random.fold_in(key, start + i)
        dropout_key, noise_key = jax.random.split(step_key)
        outputs, cache = model.apply({"params": params}, current, cache=cache, start=start + i,
                                     prenet_deterministic=not prenet_dropout,
                                     rngs={"dropout": dropout_key})
        nxt = _draw(outputs, noise_key, temperature)
        return (cache, nxt), nxt[:, 0]

    _, groups = jax.lax.scan(step, (cache, first), jnp.arange(num_steps))
    return jnp.swapaxes(groups, 0, 1)


def _prompt_groups(prompt: np.ndarray, frames_per_step: int) -> tuple[jax.Array, int]:
    """`[B, frames, M]` → groups `[B, frames // r, r*M]` of its last whole groups, and M."""
    prompt = np.asarray(prompt, np.float32)
    usable = prompt.shape[1] - prompt.shape[1] % frames_per_step
    if usable == 0:
        raise ValueError(f"generate: the prompt has {prompt.shape[1]} frames; at least "
                         f"frames_per_step={frames_per_step} are needed")
    return jnp.asarray(group_frames(prompt[:, prompt.shape[1] - usable :], frames_per_step)), prompt.shape[-1]


def generate(model_config: ModelConfig, params: Any, prompt: np.ndarray, num_frames: int,
             key: jax.Array, temperature: float = 1.0, prenet_dropout: bool = False) -> np.ndarray:
    """Continues `prompt` `[batch, frames, n_mels]` (normalised) by `num_frames` frames.

    Returns `[batch, prompt_frames' + num_frames', n_mels]`: the prompt trimmed at its start to
    a multiple of `frames_per_step`, then the continuation rounded up to whole groups.
    """
    r = model_config.frames_per_step
    groups, n_mels = _prompt_groups(prompt, r)
    window = model_config.max_frames // r  # positions the cache holds
    keep = max(window // 2, 1)  # context kept when the window slides
    remaining = math.ceil(num_frames / r)
    chunk_index = 0
    while remaining > 0:
        context = groups[:, -min(groups.shape[1], window - 1 if chunk_index == 0 else keep):]
        chunk_key = jax.random.fold_in(key, chunk_index)
        first, cache = _prefill(model_config, n_mels, params, context, chunk_key, float(temperature), bool(prenet_dropout))
        new = [first]
        steps = min(window - context.shape[1], remaining - 1)
        if steps > 0:
            new.append(_decode(model_config, n_mels, params, cache, jnp.int32(context.shape[1]), first, chunk_key,
                               steps, float(temperature), bool(prenet_dropout)))
        new_groups = jnp.concatenate(new, axis=1)
        groups = jnp.concatenate([groups, new_groups], axis=1)
        remaining -= new_groups.shape[1]
        chunk_index += 1
    return np.asarray(ungroup_frames(groups, n_mels))


def generate_by_recompute(model_config: ModelConfig, params: Any, prompt: np.ndarray,
                          num_frames: int) -> np.ndarray:
    """Reference: deterministic continuation by a full forward pass per new group (slow).

    Each step runs the model over the most recent `max_frames // frames_per_step` groups,
    padded at the end to that fixed length (causal attention ignores the padding), so one
    compilation serves every step.
    """
    r = model_config.frames_per_step
    groups, n_mels = _prompt_groups(prompt, r)
    model = MelTransformer(model_config, n_mels)
    window = model_config.max_frames // r

    @jax.jit
    def next_group(p, padded, last):
        mean = model.apply({"params": p}, padded)[0]["mean"]
        return _draw({"mean": jax.lax.dynamic_slice_in_dim(mean, last, 1, axis=1)}, jax.random.key(0), 0.0)

    for _ in range(math.ceil(num_frames / r)):
        context = groups[:, -window:]
        padded = jnp.pad(context, ((0, 0), (0, window - context.shape[1]), (0, 0)))
        groups = jnp.concatenate([groups, next_group(params, padded, context.shape[1] - 1)], axis=1)
    return np.asarray(ungroup_frames(groups, n_mels))


# ---------------------------------------------------------------------------------------
# Waveform in, waveform out


@dataclasses.dataclass(frozen=True)
class Continuation:
    """One prompt's continuations: waveforms `[samples]`, log-mels in dB `[frames, n_mels]`."""

    name: str
    prompt: np.ndarray
    full: list[np.ndarray]  # prompt audio followed by the continuation, per sample
    full_log_mel: list[np.ndarray]  # the model's log-mel (prompt + generated), per sample
    prompt_seconds: float


def _splice(prompt: np.ndarray, generated: np.ndarray, fade_samples: int) -> np.ndarray:
    """The real prompt audio, then `generated` from the prompt's end, with a short crossfade."""
    n = len(prompt)
    fade = min(fade_samples, n, max(len(generated) - n, 0))
    out = np.concatenate([prompt, generated[n:]]).astype(np.float32)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        out[n - fade : n] = prompt[n - fade :] * (1 - ramp) + generated[n - fade : n] * ramp
    return out


def continue_waveforms(sampler: Sampler, prompts: list[tuple[str, np.ndarray]], seconds: float,
                       num_samples: int, key: jax.Array, temperature: float,
                       prenet_dropout: Optional[bool], inversion: str, iters: int,
                       progress: Any = None) -> list[Continuation]:
    """Continues each (name, `[samples]` waveform) prompt by `seconds`, `num_samples` times.

    Prompts are at `audio.sample_rate`; all samples of a prompt decode as one batch. The
    continuation is inverted by Griffin-Lim (`inversion` backend, `iters` iterations) from
    the whole generated log-mel and spliced after the real prompt audio.
    """
    from audiolm_jax import audio, invert  # local: keeps `generate` importable on its own

    cfg = sampler.config
    dropout = cfg.model.prenet_dropout_at_sampling if prenet_dropout is None else prenet_dropout
    new_frames = int(round(seconds * cfg.audio.frames_per_second))
    results = []
    for index, (name, wave) in enumerate(prompts):
        log_mel = np.asarray(audio.log_mel_jax(wave[None], cfg.audio))[0]
        normalised = np.repeat(sampler.stats.normalise(log_mel)[None], num_samples, axis=0)
        generated = generate(cfg.model, sampler.params, normalised, new_frames,
                             jax.random.fold_in(key, index), temperature, dropout)
        generated_db = sampler.stats.denormalise(generated)
        total = len(wave) + int(round(seconds * cfg.audio.sample_rate))
        waves = invert.mel_to_audio(generated_db, cfg.audio, inversion, iters, seed=index, length=total)
        full = [_splice(wave, w, cfg.audio.hop_length * 4)[:total] for w in waves]
        results.append(Continuation(name, wave, full, list(generated_db), len(wave) / cfg.audio.sample_rate))
        if progress is not None:
            progress.update(1)
    return results


# ---------------------------------------------------------------------------------------
# Command line


def _parse_args(argv):
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m audiolm_jax.sample",
        description="Continue audio prompts with a trained checkpoint and write a listening report.")
    parser.add_argument("--workdir", required=True, help="workdir of a training run (holds checkpoints/)")
    parser.add_argument("--prompt", nargs="+", default=[], help="prompt audio files (any rate, any channels)")
    parser.add_argument("--unconditional", action="store_true",
                        help="no prompt: start from silence (one group of silent frames)")
    parser.add_argument("--prompt-seconds", type=float, default=3.0, help="seconds of each prompt to use")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of audio to generate after the prompt")
    parser.add_argument("--num-samples", type=int, default=2, help="continuations per prompt")
    parser.add_argument("--temperature", type=float, default=None, help="gaussian head noise scale")
    parser.add_argument("--prenet-dropout", choices=("on", "off"), default=None,
                        help="prenet dropout while sampling (default: the model config's choice)")
    parser.add_argument("--inversion", choices=("jax", "librosa"), default=None)
    parser.add_argument("--iters", type=int, default=None, help="Griffin-Lim iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--raw-params", action="store_true", help="sample with the raw params, not the EMA")
    parser.add_argument("--out", required=True, help="folder for wavs, PNGs and index.html")
    args = parser.parse_args(argv)
    if not args.prompt and not args.unconditional:
        parser.error("give --prompt FILE [FILE ...] or --unconditional")
    for name in ("prompt_seconds", "seconds"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: expected a positive number of seconds")
    if args.num_samples <= 0:
        parser.error(f"--num-samples {args.num_samples}: expected a positive count")
    return args


def silent_prompt(config: ExperimentConfig) -> tuple[str, np.ndarray]:
    """Unconditional generation's start: the shortest silence that gives one whole group."""
    samples = config.audio.hop_length * config.model.frames_per_step - 1
    return ("unconditional", np.zeros(max(samples, 1), np.float32))


def _load_prompts(paths, seconds: float, sample_rate: int, log) -> list[tuple[str, np.ndarray]]:
    import os

    from audiolm_jax import audio

    prompts = []
    want = int(round(seconds * sample_rate))
    for path in paths:
        wave = audio.load(path, sample_rate)
        if len(wave) < want:
            log.warning("'%s' is %.2f s, shorter than --prompt-seconds %.2f: using all of it",
                        path, len(wave) / sample_rate, seconds)
        prompts.append((os.path.splitext(os.path.basename(path))[0], wave[:want]))
    return prompts


def main(argv=None) -> int:
    """The sampling CLI; returns the exit status (2 for bad input, with a one-line error)."""
    import logging
    import sys

    from tqdm.auto import tqdm

    from audiolm_jax import report

    from audiolm_jax.cli import configure_logging

    configure_logging()
    log = logging.getLogger("audiolm_jax.sample")
    args = _parse_args(argv)
    try:
        sampler = restore_sampler(args.workdir, use_ema=not args.raw_params, step=args.step)
        cfg = sampler.config
        prompts = _load_prompts(args.prompt, args.prompt_seconds, cfg.audio.sample_rate, log)
        if args.unconditional:
            prompts.append(silent_prompt(cfg))
        scfg = cfg.sample
        temperature = scfg.temperature if args.temperature is None else args.temperature
        dropout = None if args.prenet_dropout is None else args.prenet_dropout == "on"
        inversion = args.inversion or scfg.inversion
        iters = args.iters or scfg.griffin_lim_iters
        with tqdm(total=len(prompts), desc="generate+invert", dynamic_ncols=True) as bar:
            conts = continue_waveforms(sampler, prompts, args.seconds, args.num_samples,
                                       jax.random.PRNGKey(args.seed), temperature, dropout, inversion, iters, bar)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    notes = [f"checkpoint step {sampler.step} of {args.workdir}",
             f"{args.seconds:g} s continuation, {inversion} Griffin-Lim × {iters}"]
    index = report.write_continuation_report(args.out, conts, cfg.audio, f"{cfg.name}: prompted continuation", notes)
    print(f"wrote {index}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
