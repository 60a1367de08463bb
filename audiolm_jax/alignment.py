"""Text-to-frame alignment by durations: which character each mel frame is spoken in.

A model with `model.condition.text_alignment="durations"` learns, beside its decoder, a mean
frame per character (its "prior", `[B, S, n_mels]` in normalised units, as Glow-TTS's and
Grad-TTS's encoders do) and a duration per character (`[B, S]` in log frames, FastSpeech's
predictor). In training, monotonic alignment search (`monotonic_alignment`, Glow-TTS,
Kim et al. 2020) finds the most likely monotonic path of the audio's frames through the
characters under that prior, every character at least one frame; the path's durations
train the predictor, its frames train the prior, and each decoder position is told the
character its frames are spoken in (`aligned_text`). At synthesis the predicted durations
(`synthesis_durations`) give the same per-frame track, so the decoder knows where it is in
the text without having to find it by attention, and the audio's end is known before
decoding.

The per-frame track `[B, frames, 3]` float32 (`ALIGNED_FEATURES`): the character's index + 1
(0: no character: go frames, padding, after the text), how far through the character the
frame lies ((offset + 0.5) / duration, in (0, 1)), and the character's duration in log
frames. It is a frame-aligned condition like a piano roll: each decoder position is told
the track of the group it predicts (`model.next_group_rolls`).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

ALIGNED_FEATURES = 3  # per frame: character index + 1 (0: none), progress through it, its log duration in frames


def frame_log_likelihoods(prior: jax.Array, frames: jax.Array) -> jax.Array:
    """`[B, S, T]`: the Gaussian log-likelihood (unit variance, constants dropped) of each
    frame `frames` `[B, T, M]` under each character's mean frame `prior` `[B, S, M]`, summed
    over the M bins: −½‖x_t − μ_s‖², computed without the `[B, S, T, M]` difference."""
    prior, frames = prior.astype(jnp.float32), frames.astype(jnp.float32)
    cross = jnp.einsum("bsm,btm->bst", prior, frames)
    return cross - 0.5 * jnp.sum(prior ** 2, -1)[:, :, None] - 0.5 * jnp.sum(frames ** 2, -1)[:, None, :]


def _viterbi(log_likelihood: jax.Array, text_length: jax.Array, frame_length: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
    """The forward pass of `monotonic_alignment`: the best path's log-likelihood ending on
    each character at frame `frame_length` − 1 `[S]`, and whether each (frame, character)
    was reached from the character before `[T, S]` bool."""
    chars, frames = log_likelihood.shape
    symbol = jnp.arange(chars)
    valid_symbol = symbol < text_length
    neg = jnp.float32(-jnp.inf)
    first = jnp.where((symbol == 0) & valid_symbol, log_likelihood[:, 0], neg)

    def forward(value, t):
        moved = jnp.concatenate([jnp.full((1,), neg), value[:-1]])
        from_previous = moved > value
        new = jnp.where(valid_symbol, jnp.maximum(value, moved) + log_likelihood[:, t], neg)
        inside = t < frame_length
        return jnp.where(inside, new, value), from_previous & inside

    final, came_from_previous = jax.lax.scan(forward, first, jnp.arange(1, frames))  # [T - 1, S]
    return final, jnp.concatenate([jnp.zeros((1, chars), bool), came_from_previous])


def _backtrack(came_from_previous: jax.Array, last: jax.Array, frame_length: jax.Array) -> jax.Array:
    """The path `[T]` int32 read back from character `last` at frame `frame_length` − 1
    (−1 from `frame_length` on)."""
    frames = came_from_previous.shape[0]

    def backward(s, t):
        inside = t < frame_length
        here = jnp.where(inside, s, -1)
        step = inside & came_from_previous[t, jnp.maximum(s, 0)]
        return jnp.maximum(s - step.astype(jnp.int32), 0), here

    _, path = jax.lax.scan(backward, jnp.maximum(last, 0).astype(jnp.int32), jnp.arange(frames - 1, -1, -1))
    return path[::-1]


def monotonic_alignment(log_likelihood: jax.Array, text_length: jax.Array, frame_length: jax.Array) -> jax.Array:
    """The character of each frame `[T]` int32 on the most likely monotonic path through
    `log_likelihood` `[S, T]` (characters × frames) that starts at character 0 on frame 0,
    ends at character `text_length` − 1 on frame `frame_length` − 1 and moves on by at most
    one character per frame (every character gets at least one frame when there are at
    least as many frames as characters); frames from `frame_length` on get −1, and so does
    every frame of an empty text. Glow-TTS's monotonic alignment search: a Viterbi pass
    over frames, then the path read back from the end. Ties stay on the character."""
    _, came_from_previous = _viterbi(log_likelihood, text_length, frame_length)
    path = _backtrack(came_from_previous, jnp.asarray(text_length, jnp.int32) - 1, frame_length)
    return jnp.where(text_length > 0, path, -1).astype(jnp.int32)


@jax.jit
def _open_ended_path(log_likelihood: jax.Array, text_length: jax.Array) -> jax.Array:
    """`partial_alignment`'s path `[T]`: every frame, ending on the best character."""
    frames = log_likelihood.shape[1]
    final, came_from_previous = _viterbi(log_likelihood, text_length, jnp.int32(frames))
    return _backtrack(came_from_previous, jnp.argmax(final).astype(jnp.int32), jnp.int32(frames))


def batch_alignment(prior: jax.Array, frames: jax.Array, text_mask: jax.Array, frame_mask: jax.Array) -> jax.Array:
    """`[B, T]` int32: `monotonic_alignment` of each row's frames `[B, T, M]` (`frame_mask`
    `[B, T]`, 1 for a frame, valid frames first) through its characters' mean frames
    `prior` `[B, S, M]` (`text_mask` `[B, S]`), gradients stopped."""
    log_likelihood = jax.lax.stop_gradient(frame_log_likelihoods(prior, frames))
    text_length = jnp.sum(text_mask > 0, axis=1).astype(jnp.int32)
    frame_length = jnp.sum(frame_mask > 0, axis=1).astype(jnp.int32)
    return jax.vmap(monotonic_alignment)(log_likelihood, text_length, frame_length)


def path_durations(path: jax.Array, chars: int) -> jax.Array:
    """`[B, chars]` int32: frames per character of a path `[B, T]` (−1 frames uncounted)."""
    return jnp.sum(path[:, None, :] == jnp.arange(chars)[None, :, None], axis=2).astype(jnp.int32)


def aligned_text(durations: jax.Array, start_frame: jax.Array | int, total_frames: int) -> jax.Array:
    """The per-frame track `[B, total_frames, ALIGNED_FEATURES]` float32 of characters
    lasting `durations` `[B, S]` frames (0 for padding) spoken one after another from frame
    `start_frame` (`[B]` or one for all rows) of the sequence: character index + 1 (0 before
    `start_frame` and after the last character), progress through the character, log duration."""
    durations = jnp.asarray(durations, jnp.int32)
    ends = jnp.cumsum(durations, axis=1)  # [B, S]
    starts = ends - durations
    start = jnp.broadcast_to(jnp.reshape(jnp.asarray(start_frame, jnp.int32), (-1, 1)), (durations.shape[0], 1))
    relative = jnp.arange(total_frames)[None, :] - start  # [B, T]
    index = jax.vmap(lambda e, r: jnp.searchsorted(e, r, side="right"))(ends, relative)  # [B, T]
    inside = (relative >= 0) & (relative < ends[:, -1:])
    index = jnp.clip(index, 0, durations.shape[1] - 1)
    length = jnp.maximum(jnp.take_along_axis(durations, index, axis=1), 1).astype(jnp.float32)
    offset = (relative - jnp.take_along_axis(starts, index, axis=1)).astype(jnp.float32)
    track = jnp.stack([index.astype(jnp.float32) + 1.0, (offset + 0.5) / length, jnp.log(length)], axis=-1)
    return jnp.where(inside[..., None], track, 0.0)


def synthesis_durations(log_durations: np.ndarray, text_mask: np.ndarray, scale: np.ndarray | float = 1.0,
                        fixed: Optional[np.ndarray] = None) -> np.ndarray:
    """`[B, S]` int32 frames per character at synthesis: the predicted log durations
    `[B, S]` (log frames) as frames, times `scale` (`[B]` or one: > 1 slower), rounded, at
    least 1 for each character of `text_mask` `[B, S]`, 0 for padding; where `fixed` `[B, S]`
    is positive (a voice prompt's characters, aligned to its audio) its durations instead."""
    frames = np.exp(np.asarray(log_durations, np.float64)) * np.reshape(np.asarray(scale, np.float64), (-1, 1))
    durations = np.maximum(np.rint(frames), 1).astype(np.int32) * (np.asarray(text_mask) > 0)
    if fixed is not None:
        durations = np.where(np.asarray(fixed) > 0, np.asarray(fixed, np.int32), durations)
    return durations.astype(np.int32)


def partial_alignment(log_likelihood: np.ndarray, text_length: int) -> np.ndarray:
    """Durations `[S]` int32 of the characters a voice prompt's frames speak: the most
    likely monotonic path of all T frames of `log_likelihood` `[S, T]` from character 0
    through to whichever of the first `text_length` characters it ends on best; the
    characters after that get 0 (they are still to be spoken). Each candidate end sums the
    same T frames, so their likelihoods compare fairly."""
    chars = log_likelihood.shape[0]
    durations = np.zeros(chars, np.int32)
    if text_length <= 0:
        return durations
    path = np.asarray(_open_ended_path(jnp.asarray(log_likelihood, jnp.float32), jnp.int32(text_length)))
    np.add.at(durations, path, 1)
    return durations


def aligned_by_search(prior_outputs: dict, mel: jax.Array, mask: jax.Array, text_mask: jax.Array, go_frames: int
                      ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The audio frames of `mel` `[B, T, M]` (normalised, after its `go_frames`; `mask`
    `[B, T]`) aligned to the characters of `text_mask` `[B, S]` by monotonic alignment search
    under the model's per-character mean frames (`prior_outputs`: `text_prior` `[B, S, M]`,
    `log_durations` `[B, S]`, from a `prior_only` pass), and what that alignment trains.
    Returns the per-frame track `[B, T, 3]` (`aligned_text`) and the sums: `prior_sq`
    (squared error of each aligned frame against its character's mean frame, summed over
    frames and bins), `duration_sq` (squared error of the predicted log durations against
    the found ones' log, summed over characters) and `total_duration_sq` (squared error of
    each row's log length, its characters' `log_expected_durations` exponentiated and summed,
    against its found frames, summed over rows with text and audio: what trains their
    offset)."""
    audio, audio_mask = mel[:, go_frames:], mask[:, go_frames:]
    prior = prior_outputs["text_prior"]
    path = batch_alignment(prior, audio, text_mask, audio_mask)  # [B, T']
    durations = path_durations(path, prior.shape[1])
    aligned = jnp.take_along_axis(prior, jnp.clip(path, 0)[..., None], axis=1)  # [B, T', M]
    on_path = ((path >= 0) & (audio_mask > 0)).astype(jnp.float32)[..., None]
    found = jnp.log(jnp.maximum(durations, 1).astype(jnp.float32))
    predicted_total = jnp.sum(jnp.exp(prior_outputs["log_expected_durations"]) * text_mask, axis=1)
    found_total = jnp.sum(durations * text_mask, axis=1).astype(jnp.float32)
    rows = ((jnp.sum(text_mask, axis=1) > 0) & (found_total > 0)).astype(jnp.float32)
    total_error = jnp.log(jnp.maximum(predicted_total, 1e-6)) - jnp.log(jnp.maximum(found_total, 1.0))
    sums = {"prior_sq": jnp.sum((aligned - audio) ** 2 * on_path),
            "duration_sq": jnp.sum((prior_outputs["log_durations"] - found) ** 2 * text_mask),
            "total_duration_sq": jnp.sum(total_error**2 * rows)}
    return aligned_text(durations, go_frames, mel.shape[1]), sums
