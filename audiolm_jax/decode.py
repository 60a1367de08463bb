"""Decoding: continue normalised log-mel groups with a KV cache, never past the trained context.

Pure functions over arrays: no files, no waveforms (those are `continuation.py`'s). As in
flax's lm1b `temperature_sampler`, decoding is a compiled loop over a model call.

`generate` prefills a cache with the prompt's groups, then decodes one group per step inside
one jit-compiled `lax.scan`. The cache holds `window` positions: the number of positions
the model was trained on (`trained_window`), so attention never runs at a position or
distance it did not see in training. A continuation longer than that slides: `chunk_plan`
says how many groups of context each chunk re-prefills (the most recent half window) and
how many new groups it decodes. `generate_by_recompute` is the slow reference: the same
chunks, the same PRNG keys, one full forward pass per new group.

Conditions (`conditioning.condition_arrays`) go to the prefill, whose cache then holds the
context's keys and values for every later step. A piano roll (`notes`, MIDI conditioning)
is per frame: each call, prefill or step, is given the rolls of its absolute positions
(`position_rolls`), so a window slide keeps the notes where they are in time. With `guidance` g ≠ 1 the batch is run
twice over, conditioned and null, and the head outputs are mixed as u + g·(c − u)
(classifier-free guidance: the mean, the mixture's logits and component means); both
halves are fed the group drawn from the mix. `guidance_null` says what the null half
loses (`GUIDANCE_NULLS`): every condition, dropped to the learned null ("conditions"), or,
for a model without `model.feedback`, the prompt it hears ("prompt": the same conditions,
nothing heard, as training's rows without a prompt; the voice of a voice prompt, the
piece of a piano prompt, is what the mix amplifies).

PRNG keys: chunk k uses `fold_in(key, k)`, split into a prenet-dropout key (the prenet
folds in each position, so a position's mask is the same cached or recomputed) and a noise
key, folded with the position whose output is drawn.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from audiolm_jax.config import ExperimentConfig, ModelConfig, segment_frames
from audiolm_jax.model import (PER_POSITION_CONDITIONS, MelTransformer, group_frames, init_cache, next_group_rolls,
                               ungroup_frames)

# Without recorded per-bin bounds, generated frames are kept within this many training
# standard deviations of the per-bin mean: generation fed its own outputs must not run away.
MAX_ABS_NORMALISED = 8.0


def group_bounds(bounds: Optional[tuple[np.ndarray, np.ndarray]], n_mels: int, frames_per_step: int) -> jax.Array:
    """Per-value clip range of a group `[2, r*M]` from per-bin normalised (low, high) `[M]`
    (`NormStats.normalised_bounds`), or ±MAX_ABS_NORMALISED when None."""
    if bounds is None:
        low, high = np.full(n_mels, -MAX_ABS_NORMALISED), np.full(n_mels, MAX_ABS_NORMALISED)
    else:
        low, high = bounds
    return jnp.asarray(np.stack([np.tile(low, frames_per_step), np.tile(high, frames_per_step)]), jnp.float32)


def trained_window(config: ExperimentConfig) -> int:
    """Positions (groups) of one training input: a crop's groups less the last (a target only).

    Decoding attends over at most this many positions, the most the model was trained on.
    """
    r = config.model.frames_per_step
    return segment_frames(config.data.segment_seconds, config.audio, r) // r - 1


def chunk_plan(prompt_groups: int, new_groups: int, window: int) -> list[tuple[int, int]]:
    """(context groups re-prefilled, new groups decoded) per chunk of a continuation.

    The first chunk takes up to `window - 1` groups of the prompt; later ones the most recent
    `window // 2` groups. A chunk with `c` context groups decodes at most `window - c + 1`
    groups (its last input sits at position `window - 1`).
    """
    if window < 2:
        raise ValueError(f"decoding window of {window} positions: at least 2 are needed")
    plan, available, remaining = [], prompt_groups, new_groups
    while remaining > 0:
        context = min(available, window - 1 if not plan else max(window // 2, 1))
        new = min(window - context + 1, remaining)
        plan.append((context, new))
        available, remaining = available + new, remaining - new
    return plan


def _chunk_keys(key: jax.Array, chunk: int) -> tuple[jax.Array, jax.Array]:
    """(prenet-dropout key, noise key) of chunk `chunk`."""
    dropout_key, noise_key = jax.random.split(jax.random.fold_in(key, chunk))
    return dropout_key, noise_key


def draw_group(outputs: dict[str, jax.Array], key: jax.Array, temperature: float, bounds: jax.Array,
               component_temperature: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """The next group from head outputs at each of T positions (decoding: T = 1): the mean
    `[B, T, r*M]`, plus scaled noise for the gaussian head, or a draw from the mixture head (a
    component by its weight, its logits divided by `component_temperature`, then its Gaussian
    with scales times `temperature`), clipped per value to `bounds` `[2, r*M]` (low, high);
    and the gate's probability that this group lies past the end of the audio `[B, T]` (0
    without a gate). A component temperature above 1 draws the rarer components (a new
    note, a pause) more often, below 1 less (Graves 2013's sampling bias is its inverse)."""
    x = outputs["mean"]
    if "mixture_logits" in outputs:  # a component drawn by its weight, then its Gaussian at `temperature`
        pick_key, key = jax.random.split(key)
        k = jax.random.categorical(pick_key, outputs["mixture_logits"] / component_temperature)  # [B, 1]
        take = lambda v: jnp.take_along_axis(v, k[..., None, None], axis=2)[:, :, 0]
        x = take(outputs["component_means"])
        if temperature > 0:
            x = x + temperature * jnp.exp(take(outputs["component_log_scales"])) * jax.random.normal(key, x.shape)
    elif "log_scale" in outputs and temperature > 0:
        x = x + temperature * jnp.exp(outputs["log_scale"]) * jax.random.normal(key, x.shape)
    ended = jax.nn.sigmoid(outputs["gate_logit"]) if "gate_logit" in outputs else jnp.zeros(x.shape[:2])
    return jnp.clip(x, bounds[0], bounds[1]), ended


GUIDED_OUTPUTS = ("mean", "mixture_logits", "component_means")


def guide(outputs: dict[str, jax.Array], guidance: float) -> dict[str, jax.Array]:
    """Head outputs of a doubled batch (rows [0, B) conditioned, [B, 2B) null) → outputs of B
    rows: u + g·(c − u) for the mean, mixture logits and component means, the conditioned
    half of everything else (scales, gate)."""
    half = outputs["mean"].shape[0] // 2
    mixed = {}
    for name, value in outputs.items():
        cond, null = value[:half], value[half:]
        mixed[name] = null + guidance * (cond - null) if name in GUIDED_OUTPUTS else cond
    return mixed


GUIDANCE_NULLS = ("conditions", "prompt")  # what a guided batch's null half loses (module docstring)


def effective_guidance(conditions: Optional[dict], guidance: float, null: str = "conditions") -> float:
    """The guidance scale decoding applies: `guidance`, or 1 (none) when the null would lose
    nothing (no conditions to drop)."""
    if null not in GUIDANCE_NULLS:
        raise ValueError(f"guidance null {null!r}: expected one of {GUIDANCE_NULLS}")
    return 1.0 if conditions is None and null == "conditions" else float(guidance)


def guided_conditions(conditions: Optional[dict], guidance: float, null: str = "conditions") -> Optional[dict]:
    """Conditions as decoding feeds them: with guidance ≠ 1, twice over (conditioned, then
    with `drop` set, so the model sees only the null; with `null` "prompt" the second half
    keeps them, its rows lose the heard prompt instead: `heard_rows`)."""
    if conditions is None or effective_guidance(conditions, guidance, null) == 1.0:
        return conditions
    if null == "prompt":
        return {k: jnp.concatenate([jnp.asarray(v)] * 2) for k, v in conditions.items()}
    batch = len(next(iter(conditions.values())))
    doubled = {k: jnp.concatenate([jnp.asarray(v)] * 2) for k, v in conditions.items() if k != "drop"}
    doubled["drop"] = jnp.concatenate([jnp.zeros(batch, bool), jnp.ones(batch, bool)])
    return doubled


def heard_rows(heard: int, batch: int, guided: bool, null: str) -> jax.Array:
    """How many positions each fed row hears (`model.feedback` false): `heard` for every row,
    or `[2B]` with a guided batch whose null half loses the prompt (`null` "prompt"): `heard`
    for the B conditioned rows, 0 for the null rows."""
    if not (guided and null == "prompt"):
        return jnp.int32(heard)
    return jnp.concatenate([jnp.full((batch,), heard, jnp.int32), jnp.zeros((batch,), jnp.int32)])


def _doubled(x: jax.Array, guided: bool) -> jax.Array:
    return jnp.concatenate([x, x]) if guided else x


def _example_ids(batch: int, guided: bool) -> jax.Array:
    """Row ids for prenet-dropout masks: a guided batch's null half shares its rows' masks."""
    return _doubled(jnp.arange(batch), guided)


class Decoded(NamedTuple):
    """A batch of continuations: `frames` `[B, prompt + new, n_mels]` (normalised), and each
    row's `ended` probability per new group `[B, new_groups]` (the gate's; 0 without one)."""

    frames: np.ndarray
    ended: np.ndarray

    def lengths(self, frames_per_step: int, threshold: float = 0.5, allowed: Optional[np.ndarray] = None,
                forced: Optional[np.ndarray] = None) -> np.ndarray:
        """Frames `[B]` of each row before the first new group the gate ends (all without one),
        counting the gate only where `allowed` `[B, new_groups]` is true (None: everywhere), and
        ending where `forced` `[B, new_groups]` is true whatever the gate says (None: nowhere)."""
        fired = self.ended > threshold
        if allowed is not None:
            fired = fired & allowed
        if forced is not None:
            fired = fired | forced
        first = np.where(fired.any(axis=1), fired.argmax(axis=1), self.ended.shape[1])
        return self.frames.shape[1] - (self.ended.shape[1] - first) * frames_per_step


@functools.partial(jax.jit, static_argnames=("model_config", "n_mels", "window", "temperature", "prenet_dropout",
                                             "guided", "monotonic", "max_dwell", "component_temperature"))
def _prefill(model_config: ModelConfig, n_mels: int, window: int, params: Any, context: jax.Array,
             conditions: Optional[dict], dropout_key: jax.Array, noise_key: jax.Array, bounds: jax.Array,
             temperature: float, prenet_dropout: bool, guided: bool, guidance: jax.Array, monotonic: int = 0,
             max_dwell: int = 0, component_temperature: float = 1.0, clean_before: jax.Array | int = 0,
             heard_before: jax.Array | int = 0) -> tuple[tuple[jax.Array, jax.Array], list]:
    """Runs `context` `[B, C, r*M]` (positions 0..C-1; those below `clean_before`, a
    prompt's, without prenet dropout; without `model.feedback` only those below
    `heard_before` hear their frames) into a fresh `window`-position cache
    (with `conditions` from `guided_conditions`: `2B` rows when `guided`, mixed at the scale
    `guidance` (a traced scalar, so a sweep of scales compiles once), from
    `effective_guidance`); returns the next group `[B, 1, r*M]` with its gate probability
    `[B, 1]`, and the cache."""
    model = MelTransformer(model_config, n_mels, monotonic, max_dwell)
    cache = init_cache(model_config, context.shape[0] * (2 if guided else 1), steps=window)
    outputs, cache = model.apply({"params": params}, _doubled(context, guided), cache=cache, start=0,
                                 conditions=conditions, example_ids=_example_ids(context.shape[0], guided),
                                 prenet_deterministic=not prenet_dropout, prenet_clean_before=clean_before,
                                 heard_before=heard_before, rngs={"dropout": dropout_key})
    last = {k: v[:, -1:] for k, v in outputs.items()}
    if guided:
        last = guide(last, guidance)
    return draw_group(last, jax.random.fold_in(noise_key, context.shape[1] - 1), temperature, bounds,
                      component_temperature), cache


@functools.partial(jax.jit, static_argnames=("model_config", "n_mels", "num_steps", "temperature",
                                             "prenet_dropout", "guided", "monotonic", "max_dwell",
                                             "component_temperature"))
def _decode(model_config: ModelConfig, n_mels: int, params: Any, cache: list, start: jax.Array,
            first: jax.Array, step_conditions: Optional[dict], dropout_key: jax.Array, noise_key: jax.Array,
            bounds: jax.Array, num_steps: int, temperature: float, prenet_dropout: bool, guided: bool,
            guidance: jax.Array, monotonic: int = 0, max_dwell: int = 0, component_temperature: float = 1.0
            ) -> tuple[jax.Array, jax.Array]:
    """Feeds `first` `[B, 1, r*M]` at position `start` and each prediction after it, `num_steps`
    times (`guided`: over a cache of 2B rows, mixed at the traced scale `guidance` from
    `effective_guidance` ≠ 1);
    returns the `num_steps` predicted groups `[B, num_steps, r*M]` and their gate
    probabilities `[B, num_steps]`. `step_conditions` (None, or the frame-aligned conditions
    `[B', num_steps, W]`, `notes` for a MIDI-conditioned model and `aligned_text` for a durations
    model, with `drop` `[B']` when guided) are what each step is
    told besides the cached context; `monotonic` and `max_dwell` constrain guided text
    attention (`model.CrossAttention`)."""
    model = MelTransformer(model_config, n_mels, monotonic, max_dwell)

    def step(carry, i):
        cache, current = carry
        conditions = None
        if step_conditions is not None:
            conditions = {k: jax.lax.dynamic_slice_in_dim(v, i, 1, 1) if k in PER_POSITION_CONDITIONS else v
                          for k, v in step_conditions.items()}
        outputs, cache = model.apply({"params": params}, _doubled(current, guided), cache=cache, start=start + i,
                                     conditions=conditions, example_ids=_example_ids(current.shape[0], guided),
                                     prenet_deterministic=not prenet_dropout, rngs={"dropout": dropout_key})
        if guided:
            outputs = guide(outputs, guidance)
        nxt, ended = draw_group(outputs, jax.random.fold_in(noise_key, start + i), temperature, bounds,
                                component_temperature)
        return (cache, nxt), (nxt[:, 0], ended[:, 0])

    _, (groups, ended) = jax.lax.scan(step, (cache, first), jnp.arange(num_steps))
    return jnp.swapaxes(groups, 0, 1), jnp.swapaxes(ended, 0, 1)


def prompt_groups(prompt: np.ndarray, frames_per_step: int) -> jax.Array:
    """`[B, frames, M]` normalised → groups `[B, frames // r, r*M]`; frames must divide by r
    (`continuation.prompt_features` cuts prompts so), at least one group."""
    prompt = np.asarray(prompt, np.float32)
    if prompt.shape[1] < frames_per_step or prompt.shape[1] % frames_per_step:
        raise ValueError(f"generate: the prompt has {prompt.shape[1]} frames; a positive multiple of "
                         f"frames_per_step={frames_per_step} is needed")
    return jnp.asarray(group_frames(prompt, frames_per_step))


def position_rolls(conditions: Optional[dict], total_groups: int, frames_per_step: int
                   ) -> tuple[Optional[dict], Optional[dict[str, jax.Array]]]:
    """Splits the frame-aligned conditions (`model.PER_POSITION_CONDITIONS`: a MIDI-conditioned
    model's piano roll `notes` `[B, frames, F]`, a durations model's `aligned_text` track
    `[B, frames, 3]`, each aligned to the decoded sequence's frames: go frames, prompt,
    continuation) from the other conditions and turns each into what each absolute position
    is told, `[B, total_groups - 1, r*F]` (`next_group_rolls`; cut or padded with zeros —
    silence, no character — to `total_groups` groups). None without any."""
    if conditions is None or not any(k in conditions for k in PER_POSITION_CONDITIONS):
        return conditions, None
    frames, rolls = total_groups * frames_per_step, {}
    for key in PER_POSITION_CONDITIONS:
        if key in conditions:
            roll = jnp.asarray(conditions[key], jnp.float32)
            roll = jnp.pad(roll[:, :frames], ((0, 0), (0, max(frames - roll.shape[1], 0)), (0, 0)))
            rolls[key] = next_group_rolls(roll, frames_per_step)
    rest = {k: v for k, v in conditions.items() if k not in PER_POSITION_CONDITIONS}
    return rest, rolls


def _with_rolls(conditions: Optional[dict], rolls: Optional[dict[str, jax.Array]], start: int, steps: int,
                keys: Optional[tuple[str, ...]] = None) -> Optional[dict]:
    """`conditions` (only `keys` of them, when given) plus each of `rolls`: positions
    [start, start + steps) of it (zero-padded past its end); unchanged without rolls."""
    if rolls is None:
        return conditions
    kept = {k: v for k, v in (conditions or {}).items() if keys is None or k in keys}
    for key, roll in rolls.items():
        piece = roll[:, start : start + steps]
        kept[key] = jnp.pad(piece, ((0, 0), (0, steps - piece.shape[1]), (0, 0)))
    return kept


WindowConditions = Callable[[int, int], dict]  # (first absolute group, groups) → that window's conditions


def _window_fed(fed: Optional[dict], window_conditions: Optional[WindowConditions], at: int, window: int,
                guidance: float, frames_per_step: int, null: str = "conditions") -> Optional[dict]:
    """The conditions of the chunk whose first position is absolute group `at`: `fed` plus,
    with `window_conditions`, those of the window [at, at + window) groups (doubled for
    guidance like the rest); an `end_frame` `[B]` (the audio's end counted from the decoded
    sequence's first frame; `model.condition.duration`) counted from the chunk's first
    frame instead."""
    chunk = fed if window_conditions is None else {**(fed or {}), **guided_conditions(window_conditions(at, window),
                                                                                       guidance, null)}
    if not chunk or "end_frame" not in chunk or at == 0:
        return chunk
    return {**chunk, "end_frame": jnp.asarray(chunk["end_frame"]) - at * frames_per_step}


def _check_conditions(model_config: ModelConfig, conditions: Optional[dict]) -> None:
    if model_config.condition.takes_conditions and conditions is None:
        raise ValueError("generate: the model is conditioned (model.condition); pass `conditions`")
    if not model_config.condition.takes_conditions and conditions is not None:
        raise ValueError("generate: `conditions` given to a model without conditioners (model.condition)")


def _check_window(model_config: ModelConfig, window: int) -> None:
    capacity = model_config.max_frames // model_config.frames_per_step
    if not 2 <= window <= capacity:
        raise ValueError(f"decoding window of {window} positions: expected 2 to max_frames // frames_per_step "
                         f"({capacity})")


def _decoding_plan(model_config: ModelConfig, num_prompt_groups: int, num_frames: int, window: int,
                   conditions: Optional[dict], guidance: float, window_conditions: Optional[WindowConditions],
                   null: str = "conditions"
                   ) -> tuple[list[tuple[int, int]], float, Optional[dict], Optional[jax.Array]]:
    """What `generate` and its reference share before decoding: the checks, the chunk plan,
    the guidance scale applied, the conditions as fed (doubled for guidance, piano roll
    split off) and the roll per absolute position (`position_rolls`; None without one)."""
    _check_window(model_config, window)
    given = conditions if window_conditions is None else {}  # window conditions count as conditions
    _check_conditions(model_config, given)
    if null == "prompt" and model_config.feedback:
        raise ValueError("generate: guidance against the prompt (guidance_null 'prompt') needs a model without "
                         "model.feedback (one that hears only its prompt)")
    guidance = effective_guidance(given, guidance, null)
    plan = chunk_plan(num_prompt_groups, math.ceil(num_frames / model_config.frames_per_step), window)
    fed, rolls = position_rolls(guided_conditions(conditions, guidance, null),
                                num_prompt_groups + sum(n for _, n in plan), model_config.frames_per_step)
    return plan, guidance, fed, rolls


def prompt_clean_positions(clean_prompt: bool, prompt_groups: int, chunk_start: int) -> int:
    """How many positions of a chunk starting at absolute group `chunk_start` hold the
    prompt's `prompt_groups` groups, when `clean_prompt` (else 0): those skip prenet dropout
    (and, counting the heard groups, those a model without `model.feedback` hears)."""
    return max(prompt_groups - chunk_start, 0) if clean_prompt else 0


def generate(model_config: ModelConfig, params: Any, prompt: np.ndarray, num_frames: int, key: jax.Array, *,
             window: int, temperature: float = 1.0, prenet_dropout: bool = False,
             bounds: Optional[tuple[np.ndarray, np.ndarray]] = None, conditions: Optional[dict] = None,
             guidance: float = 1.0, window_conditions: Optional[WindowConditions] = None,
             monotonic: int = 0, max_dwell: int = 0, component_temperature: float = 1.0,
             clean_prompt: bool = False, heard_groups: int = 0, guidance_null: str = "conditions") -> Decoded:
    """Continues `prompt` `[batch, frames, n_mels]` (normalised; frames a multiple of r) by
    `num_frames` frames, attending over at most `window` positions (`trained_window`), each
    value kept inside the per-bin normalised `bounds` (low, high) `[n_mels]` (see
    `group_bounds`), given `conditions` (`[batch, ...]` arrays, see `conditioning.py`) at
    classifier-free `guidance` against `guidance_null` (`GUIDANCE_NULLS`). Conditions that
    depend on where the window lies in time (note tokens, whose times are window-relative)
    come from `window_conditions(first group, groups)`, called once per chunk. With guided text attention
    (`model.condition.guided_layers`), `monotonic` m > 0 keeps each step's attention within
    1 character before and m after the last step's focus, and `max_dwell` d > 0 moves a
    focus on past a character it has held for d groups (`model.CrossAttention`); the
    recompute reference has no such constraint, so the two agree only at m = 0.
    `temperature` and `component_temperature` are `draw_group`'s. With `prenet_dropout`,
    `clean_prompt` passes the prompt's groups through the prenet without dropout (only
    generated groups are dropped; `prompt_clean_positions`). A model without
    `model.feedback` hears the first `heard_groups` groups of the prompt (its audio, go frames
    included; 0 for text alone) and nothing after them: the groups it draws are kept, not fed.

    Returns `Decoded`: frames `[batch, frames + num_frames', n_mels]`, the prompt as given
    then the continuation rounded up to whole groups, and the gate per new group.
    """
    r, n_mels = model_config.frames_per_step, prompt.shape[-1]
    groups, ended = prompt_groups(prompt, r), []
    clip = group_bounds(bounds, n_mels, r)
    plan, guidance, fed, rolls = _decoding_plan(model_config, groups.shape[1], num_frames, window, conditions,
                                                guidance, window_conditions, guidance_null)
    prompt_len = groups.shape[1]
    for index, (context_len, new) in enumerate(plan):
        dropout_key, noise_key = _chunk_keys(key, index)
        at = groups.shape[1] - context_len  # absolute index of the chunk's first position
        chunk_fed = _window_fed(fed, window_conditions, at, window, guidance, r, guidance_null)
        (first, first_ended), cache = _prefill(model_config, n_mels, window, params, groups[:, -context_len:],
                                               _with_rolls(chunk_fed, rolls, at, context_len), dropout_key, noise_key,
                                               clip, float(temperature), bool(prenet_dropout), guidance != 1.0,
                                               jnp.float32(guidance), int(monotonic), int(max_dwell),
                                               float(component_temperature),
                                               jnp.int32(prompt_clean_positions(clean_prompt, prompt_len, at)),
                                               heard_rows(prompt_clean_positions(True, heard_groups, at),
                                                          groups.shape[0], guidance != 1.0, guidance_null))
        pieces, ended = [first], ended + [first_ended]
        if new > 1:
            more, more_ended = _decode(model_config, n_mels, params, cache, jnp.int32(context_len), first,
                                       None if rolls is None else
                                       _with_rolls(fed, rolls, at + context_len, new - 1, keys=("drop",)),
                                       dropout_key, noise_key, clip, new - 1, float(temperature),
                                       bool(prenet_dropout), guidance != 1.0, jnp.float32(guidance),
                                       int(monotonic), int(max_dwell), float(component_temperature))
            pieces, ended = pieces + [more], ended + [more_ended]
        groups = jnp.concatenate([groups, *pieces], axis=1)
    return Decoded(np.asarray(ungroup_frames(groups, n_mels)), np.asarray(jnp.concatenate(ended, axis=1)))


def generate_by_recompute(model_config: ModelConfig, params: Any, prompt: np.ndarray, num_frames: int,
                          key: jax.Array, *, window: int, temperature: float = 1.0, prenet_dropout: bool = False,
                          bounds: Optional[tuple[np.ndarray, np.ndarray]] = None, conditions: Optional[dict] = None,
                          guidance: float = 1.0, window_conditions: Optional[WindowConditions] = None,
                          component_temperature: float = 1.0, clean_prompt: bool = False,
                          heard_groups: int = 0, guidance_null: str = "conditions") -> Decoded:
    """Reference for `generate`: the same chunks and keys, a full forward pass per new group.

    Each pass runs the model over the current chunk's groups at positions 0.., padded at the
    end to `window` (causal attention ignores the padding), so one compilation serves all.
    """
    r, n_mels = model_config.frames_per_step, prompt.shape[-1]
    groups = prompt_groups(prompt, r)
    model = MelTransformer(model_config, n_mels)
    clip = group_bounds(bounds, n_mels, r)
    plan, guidance, fed, rolls = _decoding_plan(model_config, groups.shape[1], num_frames, window, conditions,
                                                guidance, window_conditions, guidance_null)
    guided = guidance != 1.0

    @jax.jit
    def next_group(p, padded, last, dropout_key, noise_key, conditions, clean_before, heard_before):
        outputs = model.apply({"params": p}, _doubled(padded, guided), conditions=conditions,
                              example_ids=_example_ids(padded.shape[0], guided),
                              prenet_deterministic=not prenet_dropout, prenet_clean_before=clean_before,
                              heard_before=heard_before, rngs={"dropout": dropout_key})[0]
        picked = {k: jax.lax.dynamic_slice_in_dim(v, last, 1, axis=1) for k, v in outputs.items()}  # [B, 1, ...]
        if guided:
            picked = guide(picked, guidance)
        return draw_group(picked, jax.random.fold_in(noise_key, last), temperature, clip, component_temperature)

    ended, prompt_len = [], groups.shape[1]
    for index, (context_len, new) in enumerate(plan):
        dropout_key, noise_key = _chunk_keys(key, index)
        start = groups.shape[1] - context_len
        chunk_fed = _window_fed(fed, window_conditions, start, window, guidance, r, guidance_null)
        clean_before = jnp.int32(prompt_clean_positions(clean_prompt, prompt_len, start))
        heard_before = heard_rows(prompt_clean_positions(True, heard_groups, start), groups.shape[0], guided,
                                  guidance_null)
        for _ in range(new):
            current = groups[:, start:]
            padded = jnp.pad(current, ((0, 0), (0, window - current.shape[1]), (0, 0)))
            group, group_ended = next_group(params, padded, current.shape[1] - 1, dropout_key, noise_key,
                                            _with_rolls(chunk_fed, rolls, start, window), clean_before,
                                            heard_before)
            groups, ended = jnp.concatenate([groups, group], axis=1), ended + [group_ended]
    return Decoded(np.asarray(ungroup_frames(groups, n_mels)), np.asarray(jnp.concatenate(ended, axis=1)))
