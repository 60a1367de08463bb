"""Training: losses, TrainState, the data-parallel train/eval steps, and the loop.

The train step is per-device code under `jax.shard_map` inside `jax.jit` over a Mesh with
one `data` axis: each device computes the loss sum of its shard, gradients are summed
with `lax.psum` and divided by the global count of valid frames, so the update is the same
for 1 device or many and for any padding pattern. State is donated. Everything stateful
(step, params, optimizer state, EMA params, PRNG key) is in one `TrainState` pytree.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Optional

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from audiolm_jax import checkpoint, conditioning, config as config_lib
from audiolm_jax.config import ConfigError, ExperimentConfig, TrainConfig, segment_frames
from audiolm_jax.decode import draw_group
from audiolm_jax.model import MelTransformer, group_frames, init_params, next_group_rolls, searched_conditions
from audiolm_jax.prefetch import prefetched

if TYPE_CHECKING:  # the train step runs without the data pipeline (and TensorFlow) imported
    from audiolm_jax.data import Dataset

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became non-finite; the message names the step and the last good checkpoint."""


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training. `rng` is raw uint32 key data `[2]`."""

    step: jax.Array
    params: Any
    opt_state: Any
    ema_params: Any
    rng: jax.Array


# ---------------------------------------------------------------------------------------
# Losses (sums and counts, so that shards combine exactly)


def _targets(mel: jax.Array, mask: jax.Array, frames_per_step: int):
    """Model inputs `[B, N-1, r*M]`, targets `[B, N-1, r, M]` and their mask `[B, N-1, r, 1]`."""
    batch, frames, n_mels = mel.shape
    groups = group_frames(mel, frames_per_step)
    targets = groups[:, 1:].reshape(batch, -1, frames_per_step, n_mels)
    target_mask = mask[:, frames_per_step:].reshape(batch, -1, frames_per_step, 1)
    return groups[:, :-1], targets, target_mask


def loss_sums(outputs: dict[str, jax.Array], mel: jax.Array, mask: jax.Array, frames_per_step: int,
              loss: str, positive_weight: float = 1.0, mean_mse_weight: float = 0.0, flux_weight: float = 0.0
              ) -> dict[str, jax.Array]:
    """Summed errors over valid target frames: `loss`, `mse`, `baseline_mse`, and `count`.

    `outputs` are the model's head outputs for `mel[:, :-r]` grouped; targets are the
    frames after the first group. The copy-last-frame baseline predicts each target frame
    t by frame t - 1 (for r > 1 it sees frames the model does not), on the same frames.
    Divide each sum by `count` (valid frames × n_mels) for a mean; with a post-net
    (`refined_mean`), `postnet_mse` too, its error added to the loss; with a gate head, also
    the `gate_sums` (`positive_weight` for its 'ended' positions). A likelihood head's loss
    adds `mean_mse_weight` × the squared error of its mean (a good point prediction too).
    With `flux_weight` > 0 the loss subtracts `flux_weight` × the summed |predicted mean − the
    previous real frame| (MELLE's spectrogram flux), so a prediction that only holds the
    last frame costs.
    """
    _, targets, target_mask = _targets(mel, mask, frames_per_step)
    mean = outputs["mean"].reshape(targets.shape)
    sq = (mean - targets) ** 2
    previous = mel[:, frames_per_step - 1 : -1].reshape(targets.shape)
    sums = {
        "mse": jnp.sum(sq * target_mask),
        "baseline_mse": jnp.sum((previous - targets) ** 2 * target_mask),
        "count": jnp.sum(target_mask) * targets.shape[-1],
    }
    if "mixture_logits" in outputs:
        sums["loss"] = mixture_nll_sum(outputs, targets, target_mask)
    elif "log_scale" in outputs:
        log_scale = outputs["log_scale"].reshape(targets.shape)
        nll = 0.5 * sq * jnp.exp(-2.0 * log_scale) + log_scale + 0.5 * math.log(2 * math.pi)
        sums["loss"] = jnp.sum(nll * target_mask)
    elif loss == "l1":
        sums["loss"] = jnp.sum(jnp.abs(mean - targets) * target_mask)
    else:
        sums["loss"] = sums["mse"]
    if mean_mse_weight > 0 and ("mixture_logits" in outputs or "log_scale" in outputs):
        sums["loss"] = sums["loss"] + mean_mse_weight * sums["mse"]
    if "refined_mean" in outputs:  # Tacotron 2: the post-net's frames are trained on the same targets
        refined = outputs["refined_mean"].reshape(targets.shape)
        sums["postnet_mse"] = jnp.sum((refined - targets) ** 2 * target_mask)
        sums["loss"] = sums["loss"] + (sums["postnet_mse"] if loss == "mse" else
                                       jnp.sum(jnp.abs(refined - targets) * target_mask))
    if flux_weight > 0:
        sums["loss"] = sums["loss"] - flux_weight * jnp.sum(jnp.abs(mean - previous) * target_mask)
    if "gate_logit" in outputs:
        sums.update(gate_sums(outputs["gate_logit"], mask, frames_per_step, positive_weight))
    return sums


def mixture_nll_sum(outputs: dict[str, jax.Array], targets: jax.Array, target_mask: jax.Array) -> jax.Array:
    """Summed negative log-likelihood of target groups under the mixture head.

    `targets` `[B, N-1, r, M]`, `target_mask` `[B, N-1, r, 1]`. Each group's density is a
    mixture of K diagonal Gaussians over its r·M values; padded frames are left out of the
    product (the marginal over the real frames), so the sum divides by valid values like
    the other losses.
    """
    batch, steps = targets.shape[:2]
    x = targets.reshape(batch, steps, 1, -1)  # [B, T, 1, W]
    dims_mask = jnp.broadcast_to(target_mask, targets.shape).reshape(batch, steps, 1, -1)
    means, log_scales = outputs["component_means"], outputs["component_log_scales"]  # [B, T, K, W]
    log_density = -0.5 * ((x - means) * jnp.exp(-log_scales)) ** 2 - log_scales - 0.5 * math.log(2 * math.pi)
    per_component = jnp.sum(log_density * dims_mask, axis=-1) + jax.nn.log_softmax(outputs["mixture_logits"])
    group_mask = jnp.max(target_mask.reshape(batch, steps, -1), axis=-1)  # [B, T]: any real frame
    return -jnp.sum(jax.scipy.special.logsumexp(per_component, axis=-1) * group_mask)


def gate_labels(mask: jax.Array, frames_per_step: int, positive_weight: float
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """From the frame mask `[B, N*r]`: which input positions count `[B, N-1]`, which are
    labelled 'ended', and each position's loss weight (see `gate_sums`)."""
    r = frames_per_step
    counted = mask[:, : mask.shape[1] - r : r]  # input group i is real
    ended = 1.0 - mask[:, r::r]  # target group i + 1 is padding
    return counted, ended, counted * jnp.where(ended > 0, positive_weight, 1.0)


def gate_sums(gate_logit: jax.Array, mask: jax.Array, frames_per_step: int, positive_weight: float
              ) -> dict[str, jax.Array]:
    """The end-of-audio gate's weighted cross-entropy `gate_bce`, its correct decisions
    `gate_correct`, and the positions they cover `gate_count` (sums).

    Position i (a real input group) is labelled 'ended' when group i + 1 holds no real frame:
    the last real group of a clip whose end falls inside the crop. Positions after it are
    padding and not counted. `gate_logit` is `[B, N-1]`, `mask` the frames' `[B, N*r]`.
    """
    counted, ended, weight = gate_labels(mask, frames_per_step, positive_weight)
    bce = optax.sigmoid_binary_cross_entropy(gate_logit, ended)
    correct = ((gate_logit > 0) == (ended > 0)).astype(jnp.float32)
    return {"gate_bce": jnp.sum(bce * weight), "gate_weight_sum": jnp.sum(weight),
            "gate_correct": jnp.sum(correct * counted), "gate_count": jnp.sum(counted)}


# ---------------------------------------------------------------------------------------
# State and optimizer


def diagonal_penalty(text_mask: jax.Array, position_mask: jax.Array, sigma: float) -> jax.Array:
    """DC-TTS's guided-attention weights `[B, T, 1 + S]`: 1 − exp(−(n/N − t/T)² / 2σ²) for
    character n of a row's N (`text_mask` `[B, S]`) at position t of its T valid ones
    (`position_mask` `[B, T]`), both at their centres; 1 on the summary slot (entry 0),
    0 on padding characters and invalid positions."""
    chars = jnp.maximum(jnp.sum(text_mask, axis=1), 1.0)[:, None, None]  # [B, 1, 1]
    steps = jnp.maximum(jnp.sum(position_mask, axis=1), 1.0)[:, None, None]
    n = (jnp.arange(text_mask.shape[1]) + 0.5)[None, None, :] / chars
    t = (jnp.arange(position_mask.shape[1]) + 0.5)[None, :, None] / steps
    weights = (1.0 - jnp.exp(-((n - t) ** 2) / (2.0 * sigma**2))) * text_mask[:, None, :]
    slot = jnp.ones(weights.shape[:2] + (1,), weights.dtype)
    return jnp.concatenate([slot, weights], axis=-1) * position_mask[..., None]


def guided_positions(target_mask: jax.Array, drop: Optional[jax.Array]) -> jax.Array:
    """`[B, T]` 1.0 where the guided attention loss counts a position: its target's first frame
    is real (`target_mask` from `_targets`, `[B, T, r, 1]`) and its row kept its text (`drop`
    `[B]`, the rows whose conditions were dropped; None: none)."""
    keep = 1.0 if drop is None else 1.0 - drop.astype(jnp.float32)[:, None]
    return target_mask[:, :, 0, 0] * keep


def guided_attention_sums(alignment: jax.Array, text_mask: jax.Array, positions: jax.Array,
                          sigma: float) -> dict[str, jax.Array]:
    """The guided attention loss (Tachibana et al. 2017) as sums: `guided_loss` = Σ attention ×
    `diagonal_penalty` over the counted `positions` `[B, T]` (`guided_positions`), and
    `guided_count` = those positions. `alignment` `[B, T, 1 + S]` (the model's), `text_mask` `[B, S]`."""
    penalty = diagonal_penalty(text_mask.astype(jnp.float32), positions, sigma)
    return {"guided_loss": jnp.sum(alignment * penalty), "guided_count": jnp.sum(positions)}


def learning_rate_schedule(config: TrainConfig) -> optax.Schedule:
    """Linear warmup to `learning_rate`, then cosine decay to 10% of it at `steps`."""
    warmup = min(config.warmup_steps, config.steps - 1)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=config.learning_rate, warmup_steps=warmup,
        decay_steps=max(config.steps, warmup + 1), end_value=0.1 * config.learning_rate)


def decays(params: Any) -> Any:
    """Which params weight decay applies to: the weight matrices (`kernel`), not norm scales
    or biases (decaying those pulls normalisation and offsets towards 0 for no benefit)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "key", None) == "kernel", params)


def optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Global-norm clipping then AdamW (weight decay 0 by default: plain Adam), decaying
    only the weight matrices."""
    return optax.chain(
        optax.clip_by_global_norm(config.grad_clip_norm),
        optax.adamw(learning_rate_schedule(config), weight_decay=config.weight_decay, mask=decays))


def init_state(config: ExperimentConfig, tx: optax.GradientTransformation) -> TrainState:
    """A fresh TrainState from `train.seed` (params and EMA equal at step 0)."""
    key = jax.random.PRNGKey(config.train.seed)
    params_key, rng = jax.random.split(key)
    params = init_params(config.model, config.audio.n_mels, params_key)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      ema_params=jax.tree.map(jnp.copy, params), rng=rng)


def _ema_decay(decay: float, step: jax.Array) -> jax.Array:
    """EMA decay warmed up as (1 + step) / (10 + step) so early averages track the params."""
    step = step.astype(jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


# ---------------------------------------------------------------------------------------
# Steps


def corrupt_inputs(inputs: jax.Array, key: jax.Array, noise: float, example_ids: jax.Array) -> jax.Array:
    """Teacher-forced input groups `[B, N, r*M]` (normalised) plus Gaussian noise of std
    `noise`, each row's drawn from `key` folded with its global example id `[B]`.

    Free-running decoding feeds the model its own imperfect frames; trained only on clean
    ones, its errors compound (exposure bias). Targets stay clean, so the model learns to
    pull a corrupted past back towards the data.
    """
    if noise <= 0:
        return inputs
    draw = lambda e: jax.random.normal(jax.random.fold_in(key, e), inputs.shape[1:], inputs.dtype)
    return inputs + noise * jax.vmap(draw)(example_ids)


def random_walks(key: jax.Array, example_ids: jax.Array, steps: int, width: int, step_std: float,
                 dtype: Any = jnp.float32) -> jax.Array:
    """Random walks `[B, steps, width]` that start at 0: step 0 is 0, step n is Σ_{0<i≤n} ε_i,
    ε ~ N(0, `step_std`²) per value, each row's drawn from `key` folded with its global
    example id `example_ids` `[B]` (the same walk on one device or many)."""
    draw = lambda e: jax.random.normal(jax.random.fold_in(key, e), (steps, width), dtype)
    return jnp.cumsum(step_std * jax.vmap(draw)(example_ids).at[:, 0].set(0.0), axis=1)


def drift_inputs(inputs: jax.Array, key: jax.Array, step_std: float, example_ids: jax.Array) -> jax.Array:
    """Teacher-forced input groups `[B, N, r*M]` (normalised) plus a level offset that walks
    randomly along each row (`random_walks` of width 1): group n of row b gets Σ_{i≤n} ε_i
    added to all its values (group 0 is left clean).

    Free-running continuations drift in level (speech louder, piano quieter: README); the
    errors that compound are correlated over time and across bins, which white input noise
    does not imitate. Targets stay clean, so the model learns to measure how far its recent
    input has wandered from the level of the context before it and to step back.
    """
    if step_std <= 0:
        return inputs
    return inputs + random_walks(key, example_ids, inputs.shape[1], 1, step_std, inputs.dtype)


def stripe_inputs(inputs: jax.Array, key: jax.Array, step_std: float, example_ids: jax.Array,
                  n_mels: int) -> jax.Array:
    """Teacher-forced input groups `[B, N, r*M]` (normalised) plus an offset per mel bin that
    walks randomly along each row (`random_walks` of width M, the same for the r frames of a
    group; group 0 is left clean).

    With `predict_residual`, each free-running step adds its per-bin error to the last
    frame, so errors persist as horizontal stripes: bins held too bright or too dark for
    seconds (README, "What was measured"). Clean teacher-forced inputs never show a bin off
    its spectral envelope; with targets clean, the model learns to pull such bins back.
    """
    if step_std <= 0:
        return inputs
    walks = random_walks(key, example_ids, inputs.shape[1], n_mels, step_std, inputs.dtype)  # [B, N, M]
    return inputs + jnp.tile(walks, (1, 1, inputs.shape[-1] // n_mels))


CONDITION_DROP_TAG = 0x636F6E64  # folded into a step's key for its condition-dropout draw
DRIFT_TAG = 0x64726674  # folded into a step's noise key for the input level drift
STRIPES_TAG = 0x73747270  # folded into a step's noise key for the per-bin input drift
SELF_FEED_TAG = 0x73656C66  # folded into a step's key for scheduled sampling's choices and draws
HEARD_TAG = 0x68656172  # folded into a step's key for the prompts heard without feedback


def condition_drops(key: jax.Array, condition: config_lib.ConditionConfig, example_ids: jax.Array
                    ) -> dict[str, jax.Array]:
    """Which training rows `[B]` (bool, keyed by global example id) lose conditions to the
    learned nulls: `drop`, all of them (classifier-free guidance, `condition.dropout`); with
    `each_dropout`, `drop_label` and `drop_text`, one conditioner alone (so either can be
    given alone); with a voice conditioner, `drop_voice` (so text alone can be spoken); with
    a speaking-rate or duration conditioner, `drop_rate` (so text can be spoken at a rate,
    and for a duration, the model guesses); with a level, `drop_level` (so a model can
    continue audio without being told one). Each draw is `key` folded with its place in
    this list (1, 2, 3, 4, 5), whether or not it is made."""
    drops = {"drop": conditioning.drop_mask(key, condition.dropout, example_ids)}
    alone = (("drop_label", condition.each_dropout), ("drop_text", condition.each_dropout),
             ("drop_voice", condition.voice_dropout if condition.voice else 0.0),
             ("drop_rate", condition.rate_dropout if condition.takes_rate else 0.0),
             ("drop_level", condition.level_dropout if condition.level else 0.0))
    for tag, (name, rate) in enumerate(alone, start=1):
        if rate > 0:
            drops[name] = conditioning.drop_mask(jax.random.fold_in(key, tag), rate, example_ids)
    return drops


def heard_prompts(key: jax.Array, example_ids: jax.Array, target_mask: jax.Array, go_groups: int, share: float,
                  fraction: float) -> jax.Array:
    """Positions `[B]` (int32) each training row hears (`model.feedback` false): 0 (text
    alone, nothing heard) for a row, or with probability `share` a prompt: its `go_groups`
    go positions and at least one position of audio, at most `fraction` of the row's audio
    positions (those with a target: `target_mask` `[B, T, r, 1]`), the count drawn
    uniformly. Keyed by global example id: the same rows on one device or many."""
    positions = jnp.sum(target_mask[:, :, 0, 0], axis=1).astype(jnp.float32)  # [B]
    audio = jnp.maximum(positions - go_groups, 1.0)

    def draw(example_id):
        pick, length = jax.random.uniform(jax.random.fold_in(key, example_id), (2,))
        return pick < share, length

    chosen, lengths = jax.vmap(draw)(example_ids)
    prompt = go_groups + 1 + jnp.floor(lengths * jnp.maximum(fraction * audio - 1.0, 0.0)).astype(jnp.int32)
    return jnp.where(chosen, prompt, 0)


def self_fed_inputs(inputs: jax.Array, draws: jax.Array, chosen: jax.Array) -> jax.Array:
    """Teacher-forced input groups `[B, N, r*M]` where `chosen` `[B, N]` (bool) replaced by the
    model's own draws `[B, N, r*M]`: input group i + 1 becomes the draw made at position i
    (its prediction of that group); group 0 always stays the data's."""
    fed = jnp.concatenate([inputs[:, :1], draws[:, :-1]], axis=1)
    chosen = chosen.at[:, 0].set(False)
    return jnp.where(chosen[..., None], fed, inputs)


def own_draws(outputs: dict[str, jax.Array], key: jax.Array, temperature: float, example_ids: jax.Array
              ) -> jax.Array:
    """One draw per position `[B, N, r*M]` from head outputs over all positions, as sampling
    draws them (`decode.draw_group`: a mixture component, then its Gaussian at `temperature`),
    each row's from `key` folded with its global example id `[B]`; unclipped."""
    unbounded = jnp.array([[-jnp.inf], [jnp.inf]], outputs["mean"].dtype)
    per_row = lambda out, e: draw_group(jax.tree.map(lambda v: v[None], out), jax.random.fold_in(key, e),
                                        temperature, unbounded)[0][0]
    return jax.vmap(per_row)(outputs, example_ids)


def scheduled_sampling_inputs(apply: Callable[[jax.Array], dict], inputs: jax.Array, key: jax.Array, share: float,
                              passes: int, temperature: float, example_ids: jax.Array) -> jax.Array:
    """Inputs `[B, N, r*M]` for a step trained on the model's own output (parallel scheduled
    sampling, Duckworth et al. 2019): each group after the first is chosen with probability
    `share` (per example and position, keyed by global example id `[B]`); `passes` forward
    passes without gradient (`apply`: inputs → head outputs) each replace the chosen groups by
    the draws the previous pass made from its inputs, so after k passes a chosen group can
    carry errors compounded over up to k steps, as free-running decoding does. The loss still
    compares against the data: the model learns to pull its own drifting past back."""
    choose_key, draw_key = jax.random.split(key)
    chosen = jax.vmap(lambda e: jax.random.bernoulli(jax.random.fold_in(choose_key, e), share,
                                                     inputs.shape[1:2]))(example_ids)
    fed = inputs
    for p in range(passes):
        draws = own_draws(jax.lax.stop_gradient(apply(fed)), jax.random.fold_in(draw_key, p), temperature, example_ids)
        fed = self_fed_inputs(inputs, draws, chosen)
    return fed


def batch_conditions(batch: dict, model_config: config_lib.ModelConfig) -> Optional[dict]:
    """The conditioning arrays of a batch (see `conditioning.py`) as the full pass over its
    inputs takes them (the piano roll `notes` `[B, T, F]` → one per input position,
    `model.next_group_rolls`; with `model.condition.voice`, the batch's own `mel` and `mask`
    as `voice` and `voice_mask`, as Tacotron's reference encoder reads its target; with
    `model.condition.speaking_rate`, its `rate` `[B]`; with `model.condition.duration`, its
    `end_frame` `[B]`; with `model.condition.level`, its `level` `[B]`, which the data
    pipeline measured on the crop's dB frames), None without conditioners or a level; a
    conditioned model given a batch without them is a ValueError naming what is missing."""
    condition = model_config.condition
    if not condition.takes_conditions:
        return None
    midi_keys = {"none": (), "frames": ("notes",), "tokens": ("note_tokens", "note_mask", "note_frames")}[condition.midi]
    wanted = ((("label",) if condition.label else ()) + (("text", "text_mask") if condition.text else ()) + midi_keys
              + (("rate",) if condition.speaking_rate else ()) + (("end_frame",) if condition.duration else ())
              + (("level",) if condition.level else ()))
    missing = [k for k in wanted if k not in batch]
    if missing:
        raise ValueError(f"the model is conditioned (model.condition) but batches lack {', '.join(missing)}: "
                         "the dataset must provide them (data.source)")
    out = {k: batch[k] for k in wanted}
    if condition.voice:  # the voice of the example's own frames (a prompt's at sampling)
        out["voice"], out["voice_mask"] = batch["mel"], batch["mask"]
    if "notes" in out:
        out["notes"] = next_group_rolls(jnp.asarray(out["notes"]), model_config.frames_per_step)
    return out


def text_alignment_counts(batch: dict, conditions: dict, go_frames: int) -> dict[str, jax.Array]:
    """The counts this device's `alignment.aligned_by_search` sums divide by: `prior_count`,
    audio frames × bins, `duration_count`, characters, and `total_duration_count`, rows
    with text and audio."""
    audio = batch["mask"][:, go_frames:]
    rows = (jnp.sum(conditions["text_mask"], axis=1) > 0) & (jnp.sum(audio, axis=1) > 0)
    return {"prior_count": jnp.sum(audio) * batch["mel"].shape[-1], "duration_count": jnp.sum(conditions["text_mask"]),
            "total_duration_count": jnp.sum(rows.astype(jnp.float32))}


def make_mesh(devices: Optional[list] = None) -> Mesh:
    """A 1-D Mesh over all (or the given) devices with axis name `data`."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("data",))


def make_train_step(model: MelTransformer, tx: optax.GradientTransformation, config: ExperimentConfig,
                    mesh: Mesh) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """jit(shard_map(step)): (state, batch sharded on `data`) → (new state, metrics)."""
    r, loss_kind, decay = config.model.frames_per_step, config.train.loss, config.train.ema_decay
    input_noise, input_drift = config.train.input_noise, config.train.input_drift
    input_stripes, n_mels = config.train.input_stripes, config.audio.n_mels
    gate_weight, gate_positive = config.train.gate_weight, config.train.gate_positive_weight
    mean_mse, flux_weight = config.train.mean_mse_weight, config.train.flux_weight
    self_feed, self_feed_passes = config.train.self_feed, config.train.self_feed_passes
    guided_weight, guided_sigma = config.train.guided_attention_weight, config.train.guided_attention_sigma
    condition = config.model.condition
    schedule = learning_rate_schedule(config.train)
    by_durations, go_frames = condition.text_alignment == "durations", config.data.go_frames

    def step_fn(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        # Dropout masks, input noise and condition dropout are functions of (step, global
        # example): the same update on 1 device or many. This device holds global rows [d·b, (d+1)·b).
        step_key = jax.random.fold_in(state.rng, state.step)
        dropout_rng, noise_rng = jax.random.split(step_key)
        inputs, _, target_mask = _targets(batch["mel"], batch["mask"], r)
        local = inputs.shape[0]
        example_ids = jax.lax.axis_index("data") * local + jnp.arange(local)
        inputs = corrupt_inputs(inputs, noise_rng, input_noise, example_ids)
        inputs = drift_inputs(inputs, jax.random.fold_in(noise_rng, DRIFT_TAG), input_drift, example_ids)
        inputs = stripe_inputs(inputs, jax.random.fold_in(noise_rng, STRIPES_TAG), input_stripes, example_ids, n_mels)
        conditions = batch_conditions(batch, config.model)
        if conditions is not None:
            conditions.update(condition_drops(jax.random.fold_in(step_key, CONDITION_DROP_TAG), condition,
                                              example_ids))
        if self_feed > 0:
            apply = lambda fed: model.apply({"params": state.params}, fed, deterministic=False,
                                            example_ids=example_ids, conditions=conditions,
                                            rngs={"dropout": dropout_rng})[0]
            inputs = scheduled_sampling_inputs(apply, inputs, jax.random.fold_in(step_key, SELF_FEED_TAG), self_feed,
                                               self_feed_passes, config.sample.temperature, example_ids)
        heard = 0
        if not config.model.feedback:
            heard = heard_prompts(jax.random.fold_in(step_key, HEARD_TAG), example_ids, target_mask,
                                  config.data.go_frames // r, config.train.heard_share, config.train.heard_fraction)
        global_count = jax.lax.psum(jnp.sum(target_mask) * batch["mel"].shape[-1], "data")
        global_count = jnp.maximum(global_count, 1.0)

        gate_weights = gate_labels(batch["mask"], r, gate_positive)[2]
        global_gate = jnp.maximum(jax.lax.psum(jnp.sum(gate_weights), "data"), 1.0)
        if condition.guided_layers:
            guided = guided_positions(target_mask, conditions["drop"])
            global_guided = jnp.maximum(jax.lax.psum(jnp.sum(guided), "data"), 1.0)

        if by_durations:
            global_frames, global_chars, global_rows = (
                jnp.maximum(jax.lax.psum(c, "data"), 1.0) for c in text_alignment_counts(batch, conditions, go_frames).values())

        def local_loss(params):
            fed, searched = conditions, {}
            if by_durations:
                fed, searched = searched_conditions(model, params, batch["mel"], conditions, go_frames, batch["mask"])
            outputs, _ = model.apply({"params": params}, inputs, deterministic=False, example_ids=example_ids,
                                     conditions=fed, heard_before=heard, rngs={"dropout": dropout_rng})
            sums = loss_sums(outputs, batch["mel"], batch["mask"], r, loss_kind, gate_positive, mean_mse, flux_weight)
            total = sums["loss"] / global_count
            if "gate_bce" in sums:
                total = total + gate_weight * sums["gate_bce"] / global_gate
            if condition.guided_layers:
                sums.update(guided_attention_sums(outputs["alignment"], conditions["text_mask"], guided, guided_sigma))
                total = total + guided_weight * sums["guided_loss"] / global_guided
            if by_durations:
                sums.update(searched)
                total = (total + config.train.text_prior_weight * searched["prior_sq"] / global_frames
                         + config.train.duration_loss_weight * (searched["duration_sq"] / global_chars
                                                                + searched["total_duration_sq"] / global_rows))
            return total, sums

        (loss, sums), grads = jax.value_and_grad(local_loss, has_aux=True)(state.params)
        grads = jax.lax.psum(grads, "data")
        loss = jax.lax.psum(loss, "data")
        mse = jax.lax.psum(sums["mse"], "data") / global_count
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        d = _ema_decay(decay, state.step)
        ema = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, state.ema_params, params)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema)
        metrics = {"loss": loss, "mse": mse, "grad_norm": optax.global_norm(grads),
                   "learning_rate": schedule(state.step)}
        if condition.guided_layers:
            metrics["guided_attention"] = jax.lax.psum(sums["guided_loss"], "data") / global_guided
        if "postnet_mse" in sums:
            metrics["postnet_mse"] = jax.lax.psum(sums["postnet_mse"], "data") / global_count
        if by_durations:
            metrics["text_prior_mse"] = jax.lax.psum(sums["prior_sq"], "data") / global_frames
            metrics["duration_error"] = jax.lax.psum(sums["duration_sq"], "data") / global_chars
            metrics["total_duration_error"] = jax.lax.psum(sums["total_duration_sq"], "data") / global_rows
        return new_state, metrics

    sharded = jax.shard_map(step_fn, mesh=mesh, in_specs=(P(), P("data")), out_specs=(P(), P()))
    return jax.jit(sharded, donate_argnums=0)


def make_eval_step(model: MelTransformer, config: ExperimentConfig, mesh: Mesh
                   ) -> Callable[[Any, dict], dict]:
    """jit(shard_map): (params, batch) → summed `loss`, `mse`, `baseline_mse`, `count`."""
    r, loss_kind = config.model.frames_per_step, config.train.loss
    gate_positive = config.train.gate_positive_weight

    def eval_fn(params, batch):
        inputs, _, target_mask = _targets(batch["mel"], batch["mask"], r)
        conditions = batch_conditions(batch, config.model)
        searched = {}
        if config.model.condition.text_alignment == "durations":
            conditions, searched = searched_conditions(model, params, batch["mel"], conditions, config.data.go_frames,
                                                       batch["mask"])
            searched.update(text_alignment_counts(batch, conditions, config.data.go_frames))
        outputs, _ = model.apply({"params": params}, inputs, deterministic=True, conditions=conditions)
        sums = loss_sums(outputs, batch["mel"], batch["mask"], r, loss_kind, gate_positive,
                         config.train.mean_mse_weight, config.train.flux_weight)
        if "alignment" in outputs:
            sums.update(guided_attention_sums(outputs["alignment"], conditions["text_mask"],
                                              guided_positions(target_mask, None), config.train.guided_attention_sigma))
        sums.update(searched)
        return jax.tree.map(lambda x: jax.lax.psum(x, "data"), sums)

    return jax.jit(jax.shard_map(eval_fn, mesh=mesh, in_specs=(P(), P("data")), out_specs=P()))


def this_process_rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """This process's rows [p·B/P, (p+1)·B/P) of a global batch `[B, ...]` that every process
    holds whole (the evaluation batches): P processes evaluate the global batch once between
    them, as one process does, not P copies of its first B/P rows."""
    per = len(next(iter(batch.values()))) // jax.process_count()
    rows = slice(jax.process_index() * per, (jax.process_index() + 1) * per)
    return {k: v[rows] for k, v in batch.items()}


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """This process's rows → global arrays sharded along `data` (works on 1 or many hosts)."""
    sharding = NamedSharding(mesh, P("data"))
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


# `evaluate`'s means that only some models have (a gate head, guided attention, a post-net).
OPTIONAL_EVAL_METRICS = ("gate_bce", "gate_accuracy", "guided_attention", "postnet_mse", "text_prior_mse",
                         "duration_error", "total_duration_error")


def reported_eval_metrics(means: dict[str, float]) -> dict[str, float]:
    """`evaluate`'s means under the names a run's metrics.json and evaluate's eval.json give
    them: `val_loss`, `val_mse`, `baseline_mse`, `baseline_ratio`, and those of
    `OPTIONAL_EVAL_METRICS` the model has."""
    out = {"val_loss": means["loss"], "val_mse": means["mse"], "baseline_mse": means["baseline_mse"],
           "baseline_ratio": means["baseline_ratio"]}
    out.update({key: means[key] for key in OPTIONAL_EVAL_METRICS if key in means})
    return out


def evaluate(eval_step: Callable, params: Any, batches: list[dict], mesh: Mesh) -> dict[str, float]:
    """Means over all evaluation batches: `loss`, `mse`, `baseline_mse`, `baseline_ratio`, with
    a gate head `gate_bce` and `gate_accuracy` (per counted position), with guided
    attention `guided_attention` (its loss per position, `guided_attention_sums`), and with a
    post-net `postnet_mse` (its frames' error; `mse` is the decoder's), and with text read by
    durations `text_prior_mse` (aligned frames against their characters' mean frames, per
    bin), `duration_error` (squared error of predicted log durations, per character) and
    `total_duration_error` (squared error of an utterance's log length as its offset
    durations sum it, per utterance)."""
    totals: dict[str, float] = {}
    for batch in batches:
        sums = jax.device_get(eval_step(params, shard_batch(batch, mesh)))
        for k, v in sums.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    count = max(totals.pop("count"), 1.0)
    gate = {k: totals.pop(k) for k in ("gate_bce", "gate_weight_sum", "gate_correct", "gate_count") if k in totals}
    guided = {k: totals.pop(k) for k in ("guided_loss", "guided_count") if k in totals}
    searched = {k: totals.pop(k) for k in ("prior_sq", "prior_count", "duration_sq", "duration_count",
                                           "total_duration_sq", "total_duration_count") if k in totals}
    means = {k: v / count for k, v in totals.items()}
    if guided:
        means["guided_attention"] = guided["guided_loss"] / max(guided["guided_count"], 1.0)
    means["baseline_ratio"] = means["mse"] / max(means["baseline_mse"], 1e-12)
    if searched:
        means["text_prior_mse"] = searched["prior_sq"] / max(searched["prior_count"], 1.0)
        means["duration_error"] = searched["duration_sq"] / max(searched["duration_count"], 1.0)
        means["total_duration_error"] = searched["total_duration_sq"] / max(searched["total_duration_count"], 1.0)
    if gate:
        means["gate_bce"] = gate["gate_bce"] / max(gate["gate_weight_sum"], 1.0)
        means["gate_accuracy"] = gate["gate_correct"] / max(gate["gate_count"], 1.0)
    return means


# ---------------------------------------------------------------------------------------
# The loop


@dataclasses.dataclass
class TrainResult:
    """What `train` hands back: the final state, the mesh it lives on, the last eval."""

    state: TrainState
    mesh: Mesh
    eval_metrics: dict[str, float]
    history: list[dict[str, float]]


def check_batch_size(config: ExperimentConfig, mesh: Mesh) -> None:
    """The global batch must split evenly over devices and processes."""
    devices, processes = mesh.devices.size, jax.process_count()
    if config.train.batch_size % devices or config.train.batch_size % processes:
        raise ConfigError("train.batch_size", config.train.batch_size,
                          f"a multiple of the device count ({devices}) and process count ({processes})")


def abstract_state(config: ExperimentConfig, tx: optax.GradientTransformation, mesh: Mesh) -> Any:
    """Shapes/dtypes of a TrainState, replicated on `mesh` (for restoring)."""
    return checkpoint.replicated(jax.eval_shape(partial(init_state, config, tx)), mesh)


def train(config: ExperimentConfig, data: "Dataset", writer: Any = None,
          mesh: Optional[Mesh] = None) -> TrainResult:
    """Trains (or resumes) `config` in `config.workdir`; returns the final state and metrics.

    Restoring is the first thing it does: re-running the same command resumes from the
    latest complete checkpoint. Logs to `writer` (a tensorboardX SummaryWriter) if given.
    """
    cfg, tcfg = config, config.train
    mesh = make_mesh() if mesh is None else mesh
    check_batch_size(cfg, mesh)
    model = MelTransformer(cfg.model, cfg.audio.n_mels)
    tx = optimizer(tcfg)
    replicated = NamedSharding(mesh, P())
    mngr = checkpoint.manager(cfg.workdir, keep=tcfg.keep_checkpoints)
    start = mngr.latest_step()
    if start is not None:
        _check_resumable(cfg, checkpoint.restore_metadata(mngr, start)[0], mngr)
        state = checkpoint.restore_state(mngr, start, abstract_state(cfg, tx, mesh))
        log.info("resuming from step %d in %s", start, checkpoint.checkpoint_dir(cfg.workdir))
    else:
        state = jax.device_put(init_state(cfg, tx), replicated)
        start = 0
    train_step = make_train_step(model, tx, cfg, mesh)
    eval_step = make_eval_step(model, cfg, mesh)
    forward = make_forward(model, cfg.data.go_frames)  # compiled once, for TensorBoard reconstructions
    length = segment_frames(cfg.data.segment_seconds, cfg.audio, cfg.model.frames_per_step)
    evals = [this_process_rows(b) for b in data.eval_batches(tcfg.batch_size, length, tcfg.eval_examples)]
    frames_per_batch = tcfg.batch_size * length
    history: list[dict[str, float]] = []
    eval_metrics: dict[str, float] = {}
    last_saved = start if start else None
    bar = tqdm(range(start, tcfg.steps), initial=start, total=tcfg.steps, desc="train", dynamic_ncols=True)
    tick, tick_step = time.perf_counter(), start
    in_flight = None
    batches = prefetched(lambda s: data.train_batch(s, tcfg.seed, tcfg.batch_size, length, jax.process_index(),
                                                    jax.process_count()),
                         range(start, tcfg.steps), cfg.data.prefetch_batches)
    for step, batch in zip(bar, batches):
        state, metrics = train_step(state, shard_batch(batch, mesh))
        # Wait for the previous step only: one step stays in flight (the host prepares the
        # next batch meanwhile) and the progress bar shows real progress.
        jax.block_until_ready(in_flight)
        in_flight = metrics
        done = step + 1
        is_last = done == tcfg.steps
        if done % tcfg.log_every == 0 or is_last:
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            _stop_if_diverged(metrics["loss"], done, last_saved, cfg.workdir, mngr)
            now = time.perf_counter()
            metrics["frames_per_second"] = frames_per_batch * (done - tick_step) / (now - tick)
            tick, tick_step = now, done
            history.append({"step": done, **metrics})
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", frames_s=f"{metrics['frames_per_second']:.0f}")
            _write_scalars(writer, "train", metrics, done)
        if done % tcfg.eval_every == 0 or is_last:
            eval_metrics = evaluate(eval_step, state.ema_params, evals, mesh)
            _write_scalars(writer, "eval", eval_metrics, done)
            if writer is not None:
                _write_reconstruction(writer, forward, state.ema_params, evals[0], cfg, data.stats, done)
        if done % tcfg.checkpoint_every == 0 or is_last:
            loss = float(jax.device_get(metrics["loss"]))
            _stop_if_diverged(loss, done, last_saved, cfg.workdir, mngr)
            checkpoint.save(mngr, done, state, cfg, data.stats, force=True)
            last_saved = done
    bar.close()
    if not eval_metrics:  # nothing left to train (a finished run re-run): evaluate what was restored
        eval_metrics = evaluate(eval_step, state.ema_params, evals, mesh)
    mngr.wait_until_finished()
    mngr.close()
    if writer is not None:
        writer.flush()
    return TrainResult(state=state, mesh=mesh, eval_metrics=eval_metrics, history=history)


# Model fields a resumed run may change: none changes a parameter's shape or meaning.
RESUMABLE_MODEL_FIELDS = ("dtype", "remat", "attention", "residual_dtype", "dropout", "prenet_dropout", "prenet_dropout_at_sampling", "max_frames")


def _check_resumable(config: ExperimentConfig, saved: ExperimentConfig, mngr) -> None:
    """Resuming needs the saved run's audio and model settings (they fix every shape), but
    for the compute settings in RESUMABLE_MODEL_FIELDS."""
    for section in ("audio", "model"):
        ours, theirs = config_lib.to_dict(config)[section], config_lib.to_dict(saved)[section]
        for name in ours:
            if ours[name] != theirs[name] and not (section == "model" and name in RESUMABLE_MODEL_FIELDS):
                raise ConfigError(f"{section}.{name}", ours[name],
                                  f"{theirs[name]!r} as in the checkpoints of {mngr.directory} "
                                  "(use another --workdir to train a different model)")


def _stop_if_diverged(loss: float, step: int, last_saved: Optional[int], workdir: str, mngr) -> None:
    if math.isfinite(loss):
        return
    mngr.wait_until_finished()
    mngr.close()
    where = (f"the last good checkpoint is step {last_saved} in {checkpoint.checkpoint_dir(workdir)}"
             if last_saved else "no checkpoint was saved yet")
    raise TrainingDiverged(f"training loss is {loss} at step {step}; stopped ({where}). "
                           "Lower train.learning_rate or check the data.")


def make_forward(model: MelTransformer, go_frames: int = 0) -> Callable[..., dict[str, jax.Array]]:
    """jit(full causal pass): (params, groups `[B, N, r*M]`, conditions or None, mel or None)
    → head outputs (no dropout). A model that reads its text by durations is told the
    alignment its search finds on `mel` `[B, (N + 1) r, M]` (the frames the groups are the
    inputs of, the last group included; the audio after `go_frames`;
    `model.searched_conditions`) when the conditions carry no `aligned_text`."""

    def forward(params, groups, conditions=None, mel=None):
        if model.config.condition.text_alignment == "durations" and "aligned_text" not in conditions:
            if mel is None:
                raise ValueError("forward: a model reading its text by durations needs the mel to align or "
                                 "conditions['aligned_text']")
            conditions = searched_conditions(model, params, mel, conditions, go_frames)[0]
        return model.apply({"params": params}, groups, conditions=conditions)[0]

    return jax.jit(forward)


def teacher_forced_outputs(forward: Callable, params: Any, mel: np.ndarray, frames_per_step: int,
                           conditions: Optional[dict] = None) -> dict[str, jax.Array]:
    """The head outputs for every group after the first, given the true past (and the rows'
    `conditions`): `mel` `[B, T, M]` normalised, T a multiple of `frames_per_step`; the
    outputs' positions are `[B, T/r - 1, ...]`, as `loss_sums` takes them with `mel`.
    `forward` is `make_forward(model)`."""
    inputs, _, _ = _targets(jnp.asarray(mel), jnp.ones(mel.shape[:2]), frames_per_step)
    return forward(params, inputs, conditions, jnp.asarray(mel))


def teacher_forced_prediction(forward: Callable, params: Any, mel: np.ndarray, frames_per_step: int,
                              conditions: Optional[dict] = None) -> np.ndarray:
    """The model's prediction of every frame after the first group, given the true past (and
    the rows' `conditions`; after the post-net if the model has one): `[B, T, M]`
    normalised → `[B, T, M]` (the first group copied from the input). `forward` is `make_forward(model)`."""
    outputs = teacher_forced_outputs(forward, params, mel, frames_per_step, conditions)
    predicted = outputs.get("refined_mean", outputs["mean"]).reshape(mel.shape[0], -1, mel.shape[-1])
    return np.concatenate([mel[:, :frames_per_step], np.asarray(predicted)], axis=1)


def _write_reconstruction(writer: Any, forward: Callable, params: Any, batch: dict, cfg: ExperimentConfig,
                          stats: Any, step: int, rows: int = 2) -> None:
    """TensorBoard audio and spectrograms of teacher-forced predictions on evaluation crops."""
    from audiolm_jax import invert, report

    mel = batch["mel"][:rows]
    keep = batch["mask"][:rows].sum(axis=1) > 0
    if not keep.any():
        return
    conditions = batch_conditions(batch, cfg.model)
    if conditions is not None:
        conditions = {k: v[:rows][keep] for k, v in conditions.items()}
    predicted_db = stats.denormalise(teacher_forced_prediction(forward, params, mel[keep], cfg.model.frames_per_step,
                                                               conditions))
    target_db = stats.denormalise(mel[keep])
    waves = invert.mel_to_audio(predicted_db, cfg.audio, "jax", 32, seed=0)
    for i in range(len(waves)):
        writer.add_audio(f"reconstruction/{i}", np.clip(waves[i], -1, 1), step, sample_rate=cfg.audio.sample_rate)
        pair = np.concatenate([report.spectrogram_rgb(target_db[i]), report.spectrogram_rgb(predicted_db[i])], axis=0)
        writer.add_image(f"spectrogram/{i} (top: target, bottom: teacher-forced)", pair, step, dataformats="HWC")


def _write_scalars(writer: Any, prefix: str, metrics: dict[str, float], step: int) -> None:
    if writer is None:
        return
    for name, value in metrics.items():
        if name != "step":
            writer.add_scalar(f"{prefix}/{name}", value, step)
