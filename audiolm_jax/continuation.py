"""Waveform in, waveform out: the one continuation path of `run`, `sample` and `evaluate`.

A prompt waveform becomes log-mel frames that look like training frames (`prompt_from_waveform`:
only frames whose analysis window lies wholly inside the audio, cut to whole groups at the
end so frame 0 stays at sample 0), `decode.generate` continues them, and Griffin-Lim inverts
the whole generated log-mel, spliced after the real prompt audio at the sample where the
first generated frame is centred. Every setting comes from the checkpoint's `SampleConfig`
(command lines override it with `--sample.field=value`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any, Optional

import jax
import numpy as np
from tqdm.auto import tqdm

from audiolm_jax import alignment, audio, conditioning, decode, invert, midi, runtime
from audiolm_jax.config import ExperimentConfig, ModelConfig
from audiolm_jax.model import (MelTransformer, group_frames, next_group_rolls, prior_outputs, refine_frames,
                               searched_track, ungroup_frames)
from audiolm_jax.stats import NormStats

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Prompt:
    """What a continuation follows: real audio `[samples]` (empty for unconditional generation)
    and its log-mel in dB `[frames, n_mels]`, frames a multiple of `frames_per_step`, frame
    t centred on sample t·hop_length; `waveform` ends where frame `frames` is centred.
    A conditioned model also takes the prompt's `label` (a name of the run's label set),
    `text` (a transcript or description), `notes` `[N, 4]` (`midi.py`: the MIDI to play,
    seconds from the prompt audio's first sample, or from the start of the generated audio
    when there is no prompt audio) and `rate`, the speaking rate in characters per second
    (`conditioning.speaking_rates`; None: the model's learned null, its own guess)."""

    name: str
    waveform: np.ndarray
    log_mel_db: np.ndarray
    label: Optional[str] = None
    text: Optional[str] = None
    notes: Optional[np.ndarray] = None
    rate: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class Continuation:
    """One prompt's continuations: waveforms `[samples]`, log-mels in dB `[frames, n_mels]`."""

    name: str
    prompt: np.ndarray  # the real prompt audio the continuations follow
    full: list[np.ndarray]  # prompt audio followed by the continuation, per sample
    full_log_mel: list[np.ndarray]  # the model's log-mel (prompt + generated), per sample
    prompt_frames: int  # frames of `full_log_mel` that are the prompt's
    prompt_seconds: float  # where the continuation starts in `full`
    notes: Optional[np.ndarray] = None  # the MIDI played `[N, 4]`, seconds from the start of `full`
    text: Optional[str] = None  # the text spoken (TTS: the prompt's transcript, then the new text)
    alignments: Optional[list[np.ndarray]] = None  # TTS: per sample, attention `[positions, characters]` (`text_alignments`)
    read: Optional[str] = None  # TTS: `text` as the encoder read it (characters or phonemes, cut): the alignments' rows


def read_text(config: ExperimentConfig, text: str) -> str:
    """`text` as the model's text encoder took it (`conditioning.encoder_text` with its
    `model.condition` units and `max_text_chars`)."""
    c = config.model.condition
    return conditioning.encoder_text(text, c.max_text_chars, c.text_units, c.phoneme_language)


def prompt_from_waveform(name: str, waveform: np.ndarray, config: ExperimentConfig) -> Prompt:
    """A prompt from mono `[samples]` audio at `audio.sample_rate`.

    Keeps the first K frames, K the largest multiple of `frames_per_step` whose last frame's
    window ends inside the audio (a frame computed on the zero-padded edge is 0.5-3 dB low,
    and `predict_residual` adds to exactly that frame); the audio kept is K·hop samples.
    """
    r, hop = config.model.frames_per_step, config.audio.hop_length
    frames = audio.whole_window_frames(len(waveform), config.audio)
    frames -= frames % r
    if frames < r:
        need = (r - 1) * hop + config.audio.n_fft // 2
        raise ValueError(f"prompt '{name}' is {len(waveform)} samples; at least {need} are needed for "
                         f"frames_per_step={r} whole frames")
    log_mel = np.asarray(audio.log_mel_jax(np.asarray(waveform, np.float32)[None], config.audio))[0]
    return Prompt(name, np.asarray(waveform[: frames * hop], np.float32), log_mel[:frames])


def held_out_prompts(config: ExperimentConfig, clips: list[np.ndarray], count: int,
                     metadata: Optional[list[dict]] = None) -> list[tuple[Prompt, np.ndarray]]:
    """The first `sample.prompt_seconds` of up to `count` evaluation clips `[samples]` as
    prompts, each with its whole clip and its `metadata` ({"label", "text", "notes"}, for a
    conditioned model); clips too short for one whole group are left out."""
    samples = int(round(config.sample.prompt_seconds * config.audio.sample_rate))
    prompts = []
    for i, clip in enumerate(clips[:count]):
        name = f"{config.data.source}_{config.data.eval_split}_{i:03d}"
        meta = metadata[i] if metadata is not None else {}
        try:
            prompt = prompt_from_waveform(name, clip[:samples], config)
            prompts.append((dataclasses.replace(prompt, label=meta.get("label"), text=meta.get("text"),
                                                notes=meta.get("notes")), clip))
        except ValueError:
            log.warning("evaluation clip %d is too short for a prompt; left out", i)
    return prompts


def unconditional_prompt(config: ExperimentConfig, stats: NormStats, name: str = "unconditional",
                         label: Optional[str] = None, text: Optional[str] = None,
                         notes: Optional[np.ndarray] = None) -> Prompt:
    """Generation without audio: one group of the training set's mean frame (per-bin mean in
    dB), a frame the model has seen, not digital silence far below every crop; with a
    conditioned model, the `label`, `text` or `notes` `[N, 4]` to generate from."""
    count = max(config.data.go_frames, config.model.frames_per_step)  # the trained start, with data.go_frames
    frames = np.repeat(np.asarray(stats.mean, np.float32)[None], count, axis=0)
    return Prompt(name, np.zeros(0, np.float32), frames, label, text, notes)


def go_frames_before(config: ExperimentConfig, prompt: Prompt) -> int:
    """Frames of the mean frame decoding puts before a prompt of real audio, as training put
    them before every crop (`data.go_frames`); none before `unconditional_prompt`, which is
    that start already."""
    return config.data.go_frames if len(prompt.waveform) else 0


def heard_groups(config: ExperimentConfig, prompt: Prompt) -> int:
    """Groups of the decoded sequence a model without `model.feedback` hears: a prompt of
    audio's go frames and frames, as training heard its prompts; none for text or a label
    alone (`unconditional_prompt`'s start frames are not audio)."""
    if not len(prompt.waveform):
        return 0
    return (go_frames_before(config, prompt) + len(prompt.log_mel_db)) // config.model.frames_per_step


def audio_start_frame(config: ExperimentConfig, prompt: Prompt) -> int:
    """The frame of the decoded sequence (go frames, prompt, continuation) at which the
    prompt's audio starts, its notes' time 0 and its duration's start: the prompt audio's
    first frame, or without audio the first generated frame."""
    return go_frames_before(config, prompt) + (0 if len(prompt.waveform) else len(prompt.log_mel_db))


def prompt_rolls(config: ExperimentConfig, prompt: Prompt, total_frames: int) -> Optional[np.ndarray]:
    """The piano roll `[total_frames, 3 * 88]` of the prompt's notes on the decoded
    sequence's frames (`audio_start_frame` is the notes' time 0), None without notes."""
    if prompt.notes is None:
        return None
    a = config.audio
    offset = audio_start_frame(config, prompt)
    roll = midi.piano_roll(prompt.notes, max(total_frames - offset, 0), a.sample_rate, a.hop_length)
    return np.concatenate([np.zeros((min(offset, total_frames), roll.shape[1]), np.float32), roll])


def prompt_conditions(config: ExperimentConfig, prompt: Prompt, rows: int,
                      labels: Optional[conditioning.LabelSet], total_frames: int = 0,
                      prompt_frames: Optional[np.ndarray] = None) -> Optional[dict[str, np.ndarray]]:
    """The prompt's conditions for `rows` samples, as `decode.generate` takes them (None for an
    unconditioned model); a MIDI-conditioned model's piano roll covers `total_frames` of
    the decoded sequence. A model with a voice conditioner takes the voice of the prompt's
    audio (`prompt_frames` `[rows, frames, n_mels]`, its log-mel normalised); a prompt
    without audio has none (the null); a speaking-rate conditioner the prompt's `rate`
    (none: the null), a duration conditioner the end its text has at that rate, counted
    from the audio's first frame (`audio_start_frame`; no rate: the null), a model told the
    level the `level` of the prompt's dB frames (no audio: the null). A conditioned
    model needs what it was trained on: ConditionError naming the missing label, text or
    notes."""
    condition = config.model.condition
    if not condition.takes_conditions:
        return None
    if condition.midi != "none" and prompt.notes is None:
        raise conditioning.ConditionError(f"prompt '{prompt.name}': the model is conditioned on MIDI "
                                          "(model.condition.midi): give notes (python -m audiolm_jax.render_midi)")
    if condition.midi == "tokens":  # the tokens are the window's (`prompt_window_conditions`)
        condition = dataclasses.replace(condition, midi="none")
        if not condition.takes_conditions:
            return None
    roll = prompt_rolls(config, prompt, total_frames)
    rolls = None if roll is None else np.repeat(roll[None], rows, axis=0)
    label_ids = None
    if condition.label and prompt.label is not None:
        if labels is None:
            raise conditioning.ConditionError("the model is conditioned on labels but no label set was given")
        label_ids = labels.ids([prompt.label] * rows)
    texts = None if prompt.text is None else [prompt.text] * rows
    voices = prompt_frames if condition.voice and len(prompt.waveform) else None
    if condition.voice and len(prompt.waveform) and prompt_frames is None:
        raise ValueError("prompt_conditions: a model with a voice conditioner needs the prompt's frames")
    rates = None if prompt.rate is None else np.full(rows, prompt.rate, np.float32)
    try:
        out = conditioning.condition_arrays(condition, label_ids, texts, rolls, voices=voices, rates=rates,
                                            frames_per_second=config.audio.frames_per_second,
                                            audio_start_frame=audio_start_frame(config, prompt))
    except conditioning.ConditionError as e:  # what is missing, said of this prompt
        known = f" (labels: {', '.join(labels.names)})" if condition.label and labels else ""
        raise conditioning.ConditionError(f"prompt '{prompt.name}': {e}{known}") from None
    if condition.level and len(prompt.waveform):  # the level to hold: the prompt's
        level = conditioning.audio_levels(prompt.log_mel_db[None], np.ones((1, len(prompt.log_mel_db))))
        out["level"] = np.repeat(level, rows)
    return out


def prompt_window_conditions(config: ExperimentConfig, prompt: Prompt, rows: int
                             ) -> Optional[decode.WindowConditions]:
    """For a model conditioned on note tokens (`model.condition.midi="tokens"`), the function
    `decode.generate` calls per chunk: (first group, groups) → the note tokens `[rows, S]` of
    the notes heard in that window, times from the window's start, as training cut them
    from each crop (a window of W positions covers (W + 1)·r frames). None otherwise."""
    condition = config.model.condition
    if condition.midi != "tokens" or prompt.notes is None:
        return None
    r, hop_seconds = config.model.frames_per_step, config.audio.hop_length / config.audio.sample_rate
    zero = audio_start_frame(config, prompt)
    tokens_only = dataclasses.replace(condition, label=False, text=False, voice=False)

    def window(first_group: int, groups: int) -> dict[str, np.ndarray]:
        start, seconds = (first_group * r - zero) * hop_seconds, (groups + 1) * r * hop_seconds
        tokens = midi.note_tokens(midi.window_notes(prompt.notes, start, seconds), seconds, condition.max_note_tokens)
        return conditioning.condition_arrays(tokens_only, note_tokens=np.repeat(tokens[None], rows, axis=0),
                                             frames_per_second=config.audio.frames_per_second)

    return window


def monotonic_characters(config: ExperimentConfig) -> int:
    """`sample.monotonic` for a model with guided text attention, else 0 (no constraint)."""
    return config.sample.monotonic if config.model.condition.guided_layers else 0


TEACHER_FORCED_CONDITIONS = ("text", "text_mask", "voice", "voice_mask", "rate", "end_frame")  # what a pass over audio reads


@functools.partial(jax.jit, static_argnames=("model_config", "n_mels"))
def _teacher_forced_means(model_config: ModelConfig, n_mels: int, params: Any, groups: jax.Array,
                          conditions: Optional[dict]) -> jax.Array:
    """The head's mean `[B, T, r*M]` in a teacher-forced pass over `groups` `[B, T, r*M]`:
    position t's prediction of group t + 1 (compiled once per model and shape)."""
    return MelTransformer(model_config, n_mels).apply({"params": params}, groups, conditions=conditions)[0]["mean"]


@functools.partial(jax.jit, static_argnames=("model_config", "n_mels", "go_frames"))
def _searched_track(model_config: ModelConfig, n_mels: int, params: Any, frames: jax.Array, conditions: dict,
                    go_frames: int) -> jax.Array:
    """The per-frame track `[B, F, 3]` a durations model's alignment search finds on real
    `frames` `[B, F, M]` (normalised, go frames first; `model.searched_track`)."""
    model = MelTransformer(model_config, n_mels)
    return searched_track(model, params, frames, jax.numpy.ones(frames.shape[:2]), conditions, go_frames)[0]


def teacher_forced_limit(config: ExperimentConfig) -> int:
    """The most frames `teacher_forced_frames` takes: one trained window of input groups plus
    the group they predict."""
    return (decode.trained_window(config) + 1) * config.model.frames_per_step


def teacher_forced_frames(config: ExperimentConfig, params: Any, frames: np.ndarray, conditions: Optional[dict],
                          bounds: Optional[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Each group of real normalised `frames` `[B, F, M]` (go frames included, F a multiple of
    `frames_per_step`, at most one trained window of inputs plus the group they predict)
    predicted from the real groups before it and `conditions`: the head's mean (after the
    post-net, if the model has one) clipped per bin to `bounds`, the sampler's range;
    the first group, which nothing predicts, is kept. `[B, F, M]`, what decoding would draw at
    every step if each step were given the real past: the model's frames without free
    running's compounding."""
    r, n_mels, window = config.model.frames_per_step, frames.shape[-1], decode.trained_window(config)
    limit = teacher_forced_limit(config)
    if frames.shape[1] % r or not r <= frames.shape[1] <= limit:
        raise ValueError(f"teacher-forced frames: {frames.shape[1]} frames, expected a multiple of {r} "
                         f"from {r} to {limit} (one trained window of {window} positions)")
    groups = np.asarray(group_frames(np.asarray(frames, np.float32), r))  # [B, G, r*M]
    inputs = np.zeros((groups.shape[0], window, r * n_mels), np.float32)  # one compiled shape: the causal
    inputs[:, : groups.shape[1] - 1] = groups[:, :-1]  # model's predictions do not see the padding after them
    text_only = None if conditions is None else {k: conditions[k] for k in TEACHER_FORCED_CONDITIONS
                                                 if k in conditions}
    if config.model.condition.text_alignment == "durations" and text_only is not None:
        track = next_group_rolls(_searched_track(config.model, n_mels, params, np.asarray(frames, np.float32),
                                                 text_only, config.data.go_frames), r)  # [B, G - 1, r * 3]
        text_only["aligned_text"] = np.pad(np.asarray(track), ((0, 0), (0, window - track.shape[1]), (0, 0)))
    means = np.asarray(_teacher_forced_means(config.model, n_mels, params, inputs, text_only))
    low, high = np.asarray(decode.group_bounds(bounds, n_mels, r))
    predicted = np.concatenate([groups[:, :1], np.clip(means[:, : groups.shape[1] - 1], low, high)], axis=1)
    frames_out = np.asarray(ungroup_frames(predicted, n_mels))
    return refined_draws(config, params, frames_out, r, bounds)


@functools.partial(jax.jit, static_argnames=("model_config", "n_mels"))
def _guided_attention(model_config: ModelConfig, n_mels: int, params: Any, groups: jax.Array,
                      conditions: dict, heard_before: jax.Array | int = 0) -> jax.Array:
    """The model's `alignment` `[B, T, 1 + S]` in a teacher-forced pass over `groups`, the
    first `heard_before` heard (`model.feedback` false; compiled once per model and shape,
    not once per call)."""
    return MelTransformer(model_config, n_mels).apply({"params": params}, groups, conditions=conditions,
                                                      heard_before=heard_before)[0]["alignment"]


def text_alignments(config: ExperimentConfig, params: Any, frames: np.ndarray, conditions: Optional[dict],
                    lengths: np.ndarray, heard_groups: int = 0) -> Optional[list[np.ndarray]]:
    """For a model with guided text attention (`model.condition.guided_layers`), the guided
    heads' attention over the characters in a teacher-forced pass over decoded `frames`
    `[B, frames, n_mels]` (normalised, go frames included): per row, `[positions,
    characters]` for its first `lengths[b]` frames' positions (at most the trained window)
    and its text's characters, the first `heard_groups` groups heard as decoding heard them
    (`model.feedback` false); for a durations model, the characters its track puts each
    position's predicted group in (`track_alignments`): the track decoding was given
    (`aligned_text`), or on real frames the one its alignment search finds. None for other
    models."""
    r = config.model.frames_per_step
    if conditions is not None and config.model.condition.text_alignment == "durations":
        track = conditions.get("aligned_text")
        if track is None:  # real frames: the alignment the model's search finds on them
            usable = min(frames.shape[1] // r, decode.trained_window(config) + 1) * r
            text_only = {k: conditions[k] for k in TEACHER_FORCED_CONDITIONS if k in conditions}
            track = _searched_track(config.model, frames.shape[-1], params, np.asarray(frames[:, :usable], np.float32),
                                    text_only, config.data.go_frames)
        return track_alignments(np.asarray(track), np.asarray(conditions["text_mask"]), lengths, r)
    if not config.model.condition.guided_layers or conditions is None:
        return None
    r, window = config.model.frames_per_step, decode.trained_window(config)
    usable = min(frames.shape[1] // r, window) * r
    groups = group_frames(np.asarray(frames[:, :usable], np.float32), r)
    text_only = {k: conditions[k] for k in TEACHER_FORCED_CONDITIONS if k in conditions}
    attention = np.asarray(_guided_attention(config.model, frames.shape[-1], params, groups, text_only,
                                             np.int32(heard_groups)))[:, :, 1:]
    chars = np.asarray(conditions["text_mask"]).sum(axis=1).astype(int)  # entry 0 (dropped) is the summary slot
    return [a[: max(int(n) // r, 1), :c] for a, n, c in zip(attention, lengths, chars)]


def track_alignments(track: np.ndarray, text_mask: np.ndarray, lengths: np.ndarray, frames_per_step: int
                     ) -> list[np.ndarray]:
    """Per row, `[positions, characters]`: 1 where position i's predicted group (frames from
    (i + 1)·r on) starts in that character of the per-frame track `[B, frames, 3]`
    (`alignment.aligned_text`), for its first `lengths[b]` frames' positions and its text's
    characters (`text_mask` `[B, S]`): the hard alignment a durations model reads by, in the
    shape of the guided heads' attention."""
    r, out = frames_per_step, []
    for row, mask, n in zip(track, text_mask, lengths):
        positions, chars = max(int(n) // r, 1), int(np.sum(mask))
        index = np.rint(row[r::r, 0][:positions]).astype(int) - 1
        hard = np.zeros((positions, chars), np.float32)
        spoken = np.flatnonzero((index >= 0) & (index < chars))
        hard[spoken, index[spoken]] = 1.0
        out.append(hard)
    return out


@functools.partial(jax.jit, static_argnames=("model_config", "n_mels"))
def _text_prior(model_config: ModelConfig, n_mels: int, params: Any, conditions: dict) -> dict[str, jax.Array]:
    """A durations model's `text_prior` `[1, S, M]` and `log_expected_durations` `[1, S]`
    for one row's `conditions` (`model.prior_outputs` over one blank input group; the
    encoded context it also returns stays on the device)."""
    blank = jax.numpy.zeros((1, 2 * model_config.frames_per_step, n_mels), jax.numpy.float32)
    prior = prior_outputs(MelTransformer(model_config, n_mels), params, blank, conditions)
    return {k: prior[k] for k in ("text_prior", "log_expected_durations")}


def synthesis_track(config: ExperimentConfig, params: Any, prompt: Prompt, conditions: dict,
                    prompt_frames: np.ndarray, rows: int) -> tuple[np.ndarray, int]:
    """A durations model's per-frame track of the text for decoding `prompt`
    (`alignment.aligned_text` `[rows, frames, 3]` on the decoded sequence's frames: go
    frames, prompt, new frames) and how many new frames the text takes. A prompt's audio
    (`prompt_frames` `[frames, M]` normalised) is aligned to the first characters of the
    text by the model's search (`alignment.partial_alignment`: as many as its frames speak
    best); the characters after it last as the model expects (`log_expected_durations`),
    scaled to the prompt's `rate` (characters per second) when it has one, else by the tempo
    of the prompt's audio (its found frames over their predicted ones), else as predicted."""
    a, r = config.audio, config.model.frames_per_step
    text_only = {k: jax.numpy.asarray(conditions[k][:1]) for k in TEACHER_FORCED_CONDITIONS if k in conditions}
    prior = jax.device_get(_text_prior(config.model, a.n_mels, params, text_only))
    log_durations, text_mask = prior["log_expected_durations"][0], np.asarray(conditions["text_mask"][0])
    chars, fixed, scale = int(text_mask.sum()), None, 1.0
    predicted = np.exp(log_durations) * (text_mask > 0)
    if len(prompt.waveform):
        likelihood = np.asarray(alignment.frame_log_likelihoods(prior["text_prior"], prompt_frames[None]))[0]
        fixed = alignment.partial_alignment(likelihood, chars)
        scale = float(fixed.sum() / max(predicted[fixed > 0].sum(), 1e-3))
    if prompt.rate is not None:  # the new characters at `rate` per second
        new = (text_mask > 0) & (fixed <= 0 if fixed is not None else True)
        scale = float(new.sum() / prompt.rate * a.frames_per_second / max(predicted[new].sum(), 1e-3))
    durations = alignment.synthesis_durations(log_durations[None], text_mask[None], scale,
                                              None if fixed is None else fixed[None])[0]
    new_frames = int(durations.sum() - (0 if fixed is None else fixed.sum()))
    total = go_frames_before(config, prompt) + len(prompt.log_mel_db) + new_frames + r
    track = np.asarray(alignment.aligned_text(durations[None], audio_start_frame(config, prompt), total))
    return np.repeat(track, rows, axis=0), max(new_frames, r)


def gate_allowed(alignments: Optional[list[np.ndarray]], context_groups: int, new_groups: int,
                 margin: Optional[int]) -> Optional[np.ndarray]:
    """Where each row's end-of-audio gate may end speech `[B, new_groups]`: from the first new
    group whose predicting position (context_groups - 1 + g) has seen the guided heads' focus
    come within `margin` characters of the text's last (`alignments`: per row `[positions,
    characters]`, `text_alignments`). A voice-cloning prompt is a whole sentence whose end the
    gate knows; its text goes on. Positions past the aligned window count as allowed. None (the
    gate alone) without alignments or with margin None."""
    if alignments is None or margin is None:
        return None
    return _per_new_group([focus_near_end(a, margin) for a in alignments], context_groups, new_groups, beyond=True)


def focus_near_end(alignment: np.ndarray, margin: int) -> np.ndarray:
    """Per position `[positions]` of an alignment `[positions, characters]`: whether its
    running focus has come within `margin` characters of the text's last (where the gate
    may end speech, `gate_allowed`)."""
    return running_focus(alignment) >= alignment.shape[1] - 1 - margin


def running_focus(alignment: np.ndarray) -> np.ndarray:
    """The furthest character `[positions]` an alignment `[positions, characters]` has
    focused on (attended most) up to each position."""
    return np.maximum.accumulate(np.argmax(alignment, axis=1))


def _per_new_group(rows: list[np.ndarray], context_groups: int, new_groups: int, beyond: bool) -> np.ndarray:
    """`[B, new_groups]` booleans: for each row's per-position flags `[positions]`, the flag
    of the position predicting new group g (context_groups - 1 + g); `beyond` past the
    row's positions."""
    out = np.full((len(rows), new_groups), beyond, bool)
    positions = context_groups - 1 + np.arange(new_groups)
    for row, flags in enumerate(rows):
        inside = positions < len(flags)
        out[row, inside] = flags[positions[inside]]
    return out


def ended_by_dwell(alignments: Optional[list[np.ndarray]], context_groups: int, new_groups: int,
                   max_dwell: int) -> Optional[np.ndarray]:
    """Where each row's speech ends because the guided heads' focus has held the text's last
    character too long `[B, new_groups]`: from the first new group whose predicting position
    (context_groups - 1 + g) is the (max_dwell + 1)-th whose running focus is on the last
    character (`alignments`: per row `[positions, characters]`, `text_alignments`). The
    decoding window's counterpart, `model.CrossAttention.max_dwell`, moves a held focus on to
    the next character; past the last one there is only the end. None without alignments or
    with max_dwell 0."""
    if alignments is None or max_dwell <= 0:
        return None
    # the running focus only moves on: its count of positions on the last character so far
    held = [np.cumsum(running_focus(a) == a.shape[1] - 1) > max_dwell for a in alignments]
    return _per_new_group(held, context_groups, new_groups, beyond=False)


def prenet_dropout_at_sampling(config: ExperimentConfig) -> bool:
    """`sample.prenet_dropout`, or the model's choice when that is None."""
    s = config.sample
    return config.model.prenet_dropout_at_sampling if s.prenet_dropout is None else s.prenet_dropout


def splice(prompt: np.ndarray, generated: np.ndarray, fade_samples: int) -> np.ndarray:
    """The real prompt `[n]`, then `generated` `[samples]` from sample n, with a crossfade of
    `fade_samples` ending at n."""
    n = len(prompt)
    fade = min(fade_samples, n, max(len(generated) - n, 0))
    out = np.concatenate([prompt, generated[n:]]).astype(np.float32)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        out[n - fade : n] = prompt[n - fade :] * (1 - ramp) + generated[n - fade : n] * ramp
    return out


def refined_draws(config: ExperimentConfig, params: Any, frames: np.ndarray, first_drawn: int,
                  bounds: Optional[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Normalised frames `[B, F, M]` (go frames and prompt, then the drawn frames from
    `first_drawn` on) with the drawn ones after the model's post-net (`model.refine_frames`
    over the whole sequence; clipped per bin to `bounds`, the sampler's range); the prompt's
    frames are kept as they are, and so is everything without a post-net."""
    if not config.model.postnet_layers:
        return frames
    low, high = decode.group_bounds(bounds, frames.shape[-1], 1)
    out = np.clip(np.asarray(refine_frames(config.model, params, frames)), np.asarray(low), np.asarray(high))
    return np.concatenate([frames[:, :first_drawn], out[:, first_drawn:]], axis=1)


def continue_prompts(config: ExperimentConfig, params: Any, stats: NormStats, prompts: list[Prompt], key: jax.Array,
                     labels: Optional[conditioning.LabelSet] = None,
                     progress: Optional[str] = None) -> list[Continuation]:
    """Continues each prompt by `sample.seconds`, `sample.num_samples` times (one batch per
    prompt), with the checkpoint's sampling settings (`sample.guidance` with a conditioned
    model, whose label names `labels` turns into ids); refines the drawn frames with the
    model's post-net if it has one (`refined_draws`); inverts and splices each. A prompt
    without audio (`unconditional_prompt`) gives `sample.seconds` of generated audio alone:
    its start frames are dropped from the result. With `progress`, a progress bar labelled
    so counts the prompts on stderr (every command's sampling takes seconds to minutes per
    prompt on a CPU: `run`'s samples, `sample`, `tts`, `evaluate`'s continuations)."""
    results = []
    with tqdm(total=len(prompts), desc=progress, dynamic_ncols=True, disable=progress is None) as bar:
        for index, prompt in enumerate(prompts):
            runtime.release_compiled_when_crowded()  # a program per prompt length adds up (runtime.py)
            results.append(continue_prompt(config, params, stats, prompt, jax.random.fold_in(key, index), index,
                                           labels))
            bar.update(1)
    return results


@dataclasses.dataclass(frozen=True)
class Drawn:
    """One prompt's decoded sequences (`draw_frames`), before inversion."""

    log_mel_db: np.ndarray  # `[num_samples, frames, n_mels]` dB: the prompt's frames, then the drawn ones
    ends: Optional[np.ndarray]  # `[num_samples]` frames of `log_mel_db` each sample keeps (its gate); None: all
    alignments: Optional[list[np.ndarray]]  # TTS: per sample, attention `[positions, characters]`, cut at its end


def continue_prompt(config: ExperimentConfig, params: Any, stats: NormStats, prompt: Prompt, key: jax.Array,
                    inversion_seed: int, labels: Optional[conditioning.LabelSet]) -> Continuation:
    """One prompt of `continue_prompts`: its `sample.num_samples` continuations drawn as one
    batch with `key` (`draw_frames`), inverted by Griffin-Lim seeded with `inversion_seed`
    and spliced after the prompt's audio (`spliced_continuation`)."""
    return spliced_continuation(config, prompt, draw_frames(config, params, stats, prompt, key, labels),
                                inversion_seed)


def draw_frames(config: ExperimentConfig, params: Any, stats: NormStats, prompt: Prompt, key: jax.Array,
                labels: Optional[conditioning.LabelSet]) -> Drawn:
    """`sample.num_samples` continuations of `prompt` by `sample.seconds`, decoded as one batch
    with the checkpoint's sampling settings (go frames before a prompt of audio, the prompt's
    conditions, the trained window, guidance, the monotonic window), each ended by its gate
    when `sample.stop_at_gate`, and refined by the post-net if the model has one."""
    s, a = config.sample, config.audio
    new_frames = int(round(s.seconds * a.frames_per_second))
    prompt_frames = np.repeat(stats.normalise(prompt.log_mel_db)[None], s.num_samples, axis=0)
    go = go_frames_before(config, prompt)
    normalised = np.concatenate([np.zeros((s.num_samples, go, a.n_mels), np.float32), prompt_frames], axis=1)
    total_frames = normalised.shape[1] + new_frames + config.model.frames_per_step
    heard = heard_groups(config, prompt)
    conditions = prompt_conditions(config, prompt, s.num_samples, labels, total_frames, prompt_frames)
    by_durations = config.model.condition.text_alignment == "durations"
    if by_durations:  # the text's track, and the new frames it takes
        conditions["aligned_text"], new_frames = synthesis_track(config, params, prompt, conditions,
                                                                 prompt_frames[0], s.num_samples)
    decoded = decode.generate(config.model, params, normalised, new_frames, key,
                              window=decode.trained_window(config), temperature=s.temperature,
                              component_temperature=s.component_temperature,
                              prenet_dropout=prenet_dropout_at_sampling(config),
                              clean_prompt=not s.prompt_prenet_dropout,
                              bounds=stats.normalised_bounds(), conditions=conditions, guidance=s.guidance,
                              window_conditions=prompt_window_conditions(config, prompt, s.num_samples),
                              monotonic=monotonic_characters(config),
                              max_dwell=config.sample.max_dwell, heard_groups=heard,
                              guidance_null=s.guidance_null)
    r, every_frame = config.model.frames_per_step, np.full(s.num_samples, decoded.frames.shape[1])
    alignments = text_alignments(config, params, decoded.frames, conditions, every_frame, heard)
    ends = None
    if by_durations:  # the text's end is known before decoding: go frames, prompt, the text's new frames
        ends = np.full(s.num_samples, normalised.shape[1] + new_frames)
    elif s.stop_at_gate:  # each sample's frames, go frames included
        context_groups, new_groups = decoded.frames.shape[1] // r - decoded.ended.shape[1], decoded.ended.shape[1]
        ends = decoded.lengths(r, allowed=gate_allowed(alignments, context_groups, new_groups, s.gate_focus_margin),
                               forced=ended_by_dwell(alignments, context_groups, new_groups, s.max_dwell))
    if alignments is not None:
        kept = every_frame if ends is None else ends
        alignments = [a[: max(int(n) // r, 1)] for a, n in zip(alignments, kept)]
    refined = refined_draws(config, params, np.asarray(decoded.frames), normalised.shape[1],
                            stats.normalised_bounds())
    return Drawn(stats.denormalise(refined[:, go:]), None if ends is None else ends - go, alignments)


def spliced_continuation(config: ExperimentConfig, prompt: Prompt, drawn: Drawn, inversion_seed: int) -> Continuation:
    """`drawn`'s log-mels inverted by Griffin-Lim (seeded with `inversion_seed`), each cut
    where its gate ended it (never before the prompt's end and one step), and spliced after
    the prompt's audio; without prompt audio only the generated audio is kept."""
    s, a = config.sample, config.audio
    generated_db = drawn.log_mel_db
    start = len(prompt.log_mel_db)
    total = start * a.hop_length + int(round(s.seconds * a.sample_rate))
    if config.model.condition.text_alignment == "durations":  # as long as the text's durations make it
        total = max(total, generated_db.shape[1] * a.hop_length)
    waves = invert.mel_to_audio(generated_db, a, s.inversion, s.griffin_lim_iters, seed=inversion_seed, length=total)
    frames, samples = np.full(len(waves), generated_db.shape[1]), np.full(len(waves), total)
    if drawn.ends is not None:  # each sample ends where its gate fires: its frames, a hop of audio per frame
        frames = np.maximum(drawn.ends, start + config.model.frames_per_step)
        samples = np.minimum(frames * a.hop_length, total)
    full = [splice(prompt.waveform, w, a.hop_length * 4)[:n] for w, n in zip(waves, samples)]
    mels = [m[:n] for m, n in zip(generated_db, frames)]
    if not len(prompt.waveform):  # no audio prompt: its start frames are not the user's, only a seed
        full, mels = [w[start * a.hop_length :] for w in full], [m[start:] for m in mels]
        start = 0
    return Continuation(prompt.name, prompt.waveform, full, mels, start, start * a.hop_length / a.sample_rate,
                        prompt.notes, None if prompt.text is None else conditioning.normalise_text(prompt.text),
                        drawn.alignments, None if prompt.text is None else read_text(config, prompt.text))


def continue_waveforms(config: ExperimentConfig, params: Any, stats: NormStats, waveforms: list[tuple[str, np.ndarray]],
                       key: jax.Array) -> list[Continuation]:
    """`continue_prompts` of (name, mono `[samples]` at `audio.sample_rate`) prompts."""
    prompts = [prompt_from_waveform(name, wave, config) for name, wave in waveforms]
    return continue_prompts(config, params, stats, prompts, key)
