"""The model: a decoder-only Transformer over groups of normalised log-mel frames.

Read top to bottom: `group_frames`/`ungroup_frames` (the reduction factor), `Prenet`,
`rope`, `SelfAttention`, `CrossAttention`, `Mlp`, `Block`, `Conditioner` (labels and text
→ the context cross-attention reads), `MelTransformer`, and `init_cache` for incremental
decoding.

Position i of the sequence sees groups 0..i (each group is `frames_per_step` frames,
`[batch, steps, frames_per_step * n_mels]`) and predicts group i + 1. The same `__call__`
runs the full causal pass (training) and incremental decoding: given a KV cache and the
index of the first new position, it writes the new keys/values and attends over the
cache, so a prefill of P positions followed by single steps equals the full pass.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from audiolm_jax import alignment, conditioning, midi
from audiolm_jax.config import ConditionConfig, ModelConfig

Cache = list[dict[str, jax.Array]]  # one {"k", "v"} [batch, cache_steps, heads, head_dim] per layer


def group_frames(mel: jax.Array, frames_per_step: int) -> jax.Array:
    """`[batch, frames, n_mels]` → `[batch, frames // r, r * n_mels]` (frames must divide by r)."""
    batch, frames, n_mels = mel.shape
    if frames % frames_per_step:
        raise ValueError(f"group_frames: {frames} frames is not a multiple of frames_per_step={frames_per_step}")
    return mel.reshape(batch, frames // frames_per_step, frames_per_step * n_mels)


def ungroup_frames(groups: jax.Array, n_mels: int) -> jax.Array:
    """`[batch, steps, r * n_mels]` → `[batch, steps * r, n_mels]`."""
    batch, steps, width = groups.shape
    return groups.reshape(batch, steps * (width // n_mels), n_mels)


def inverse_frequencies(half: int, base: float) -> jax.Array:
    """`[half]` angular rates base^(−i/half): the sinusoids of rotary and absolute positions."""
    return base ** (-jnp.arange(half, dtype=jnp.float32) / half)


def sinusoid(positions: jax.Array, width: int) -> jax.Array:
    """Transformer sinusoidal encodings `[steps, width]` of integer `positions` `[steps]` (width even)."""
    angles = jnp.asarray(positions, jnp.float32)[:, None] * inverse_frequencies(width // 2, 10000.0)[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def _dtype(config: ModelConfig) -> Any:
    return jnp.dtype(config.dtype)


def keep_mask(key: jax.Array, rate: float, example_ids: jax.Array, positions: jax.Array, width: int,
              dtype: Any) -> jax.Array:
    """Inverted-dropout scale `[batch, steps, width]`: 0 or 1 / (1 - rate), drawn per example
    and position from `key` folded with the example's id `[batch]` and the position `[steps]`.

    A mask is then a function of (step key, global example, position): the same on 1 or 8
    devices, in a full pass or fed one position at a time to a KV cache.
    """
    keep = 1.0 - rate
    draw = lambda e, p: jax.random.bernoulli(jax.random.fold_in(jax.random.fold_in(key, e), p), keep, (width,))
    mask = jax.vmap(lambda e: jax.vmap(lambda p: draw(e, p))(positions))(example_ids)
    return (mask / keep).astype(dtype)


class Prenet(nn.Module):
    """Tacotron's bottleneck: two ReLU layers with dropout (kept on at sampling if asked),
    masks drawn by `keep_mask`."""

    dim: int
    dropout: float
    dtype: Any

    @nn.compact
    def __call__(self, x: jax.Array, positions: jax.Array, example_ids: jax.Array, deterministic: bool,
                 clean_before: jax.Array | int = 0) -> jax.Array:
        """`x` `[batch, steps, features]`, `positions` `[steps]`, `example_ids` `[batch]` →
        `[batch, steps, dim]`; positions below `clean_before` pass without dropout (a
        prompt's real frames at sampling)."""
        for i in range(2):
            x = nn.relu(nn.Dense(self.dim, dtype=self.dtype, name=f"dense_{i}")(x))
            if not deterministic and self.dropout > 0:
                mask = keep_mask(jax.random.fold_in(self.make_rng("dropout"), i), self.dropout, example_ids,
                                 positions, self.dim, self.dtype)
                x = x * jnp.where((positions < clean_before)[None, :, None], jnp.ones((), self.dtype), mask)
        return x


def unheard_inputs(x: jax.Array, positions: jax.Array, heard_before: jax.Array | int, unheard: jax.Array
                   ) -> jax.Array:
    """Prenet outputs `x` `[B, T, D]` at absolute `positions` `[T]` with every position at or
    past its row's `heard_before` (`[B]`, or one count for all rows) replaced by `unheard`
    `[D]`: the input of a position that hears no frames (`model.feedback` false)."""
    heard = jnp.broadcast_to(jnp.asarray(heard_before, jnp.int32), (x.shape[0],))
    hears = positions[None, :] < heard[:, None]  # [B, T]
    return jnp.where(hears[..., None], x, unheard.astype(x.dtype)[None, None, :])


def rope(x: jax.Array, positions: jax.Array, base: float) -> jax.Array:
    """Rotary embedding of `[batch, steps, heads, head_dim]` at `positions` `[steps]` (one
    per step, shared by the batch) or `[batch, steps]` (per row; may be fractional)."""
    freqs = inverse_frequencies(x.shape[-1] // 2, base)  # [half]
    positions = jnp.broadcast_to(jnp.asarray(positions, jnp.float32), x.shape[:2])  # [batch, steps]
    angles = positions[..., None] * freqs  # [batch, steps, half]
    sin, cos = jnp.sin(angles)[:, :, None, :], jnp.cos(angles)[:, :, None, :]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


CUDNN_BLOCK = 64  # cuDNN's fused attention takes sequences in multiples of this many positions


def attention_kernel(requested: str, dtype: Any) -> str:
    """The full-pass self-attention kernel for `model.attention`: "auto" is cuDNN's fused
    (flash) attention when the default backend is a GPU and `dtype` is 16-bit, else XLA's."""
    if requested != "auto":
        return requested
    half = jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
    return "cudnn" if half and jax.default_backend() == "gpu" else "xla"


def pad_positions(x: jax.Array, multiple: int) -> jax.Array:
    """`[batch, steps, ...]` zero-padded at the end to a multiple of `multiple` steps."""
    extra = -x.shape[1] % multiple
    return jnp.pad(x, [(0, 0), (0, extra)] + [(0, 0)] * (x.ndim - 2)) if extra else x


def causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, kernel: str, block: int = 1) -> jax.Array:
    """Causal attention of `[batch, steps, heads, head_dim]` queries, keys and values (one
    sequence, no cache) by XLA (`kernel="xla"`) or cuDNN's fused kernel ("cudnn"), the steps
    zero-padded at the end to a multiple of `block` (cuDNN: `CUDNN_BLOCK`). Under the causal
    mask a real position never sees the padding, and the padded rows are cut off, so the
    result is the unpadded attention's."""
    if kernel == "xla":
        return heads_major_causal_attention(q, k, v)
    steps = q.shape[1]
    q, k, v = (pad_positions(a, block) for a in (q, k, v))
    return jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation=kernel)[:, :steps]


QUERY_BLOCK_STEPS = 64  # the fewest steps in one query block of `heads_major_causal_attention`
MAX_QUERY_BLOCKS = 4  # the most query blocks: more, smaller dots ran no faster on XLA:CPU


def query_blocks_for(steps: int) -> int:
    """How many query blocks `heads_major_causal_attention` splits `steps` positions into:
    as many as fit `QUERY_BLOCK_STEPS` each, 1 to `MAX_QUERY_BLOCKS`."""
    return max(1, min(MAX_QUERY_BLOCKS, steps // QUERY_BLOCK_STEPS))


def heads_major_causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, query_blocks: int | None = None
                                 ) -> jax.Array:
    """`jax.nn.dot_product_attention(q, k, v, is_causal=True)` by XLA (`[batch, steps, heads,
    head_dim]` in and out; scores and softmax in float32) computed with heads before steps:
    each batched dot then has its batch dimensions leading and its contracting dimension
    minor, so XLA:CPU runs them without relaying out the `[batch, heads, steps, steps]`
    scores per dot. The queries go in `query_blocks` runs of steps, each against the keys up
    to its last step only: the score blocks wholly above the diagonal, all masked, are never
    computed (a quarter of the scores at 2 blocks, 3/8 at 4; default `query_blocks_for`).
    At the small benchmark size (255 steps) the train step took 1676 -> 1547 ms with 2
    blocks, 1528 with 4, against `jax.nn.dot_product_attention` with steps before heads
    (about 25 ms a layer of relayouts and masked scores)."""
    qh, kh, vh = (jnp.swapaxes(a, 1, 2) for a in (q, k, v))  # [B, H, T, Dh]
    steps = q.shape[1]
    query_blocks = query_blocks_for(steps) if query_blocks is None else query_blocks
    bounds = [steps * i // query_blocks for i in range(query_blocks + 1)]
    outs = [_causal_block(qh[:, :, lo:hi], kh[:, :, :hi], vh[:, :, :hi], lo)
            for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
    return jnp.swapaxes(jnp.concatenate(outs, axis=2), 1, 2)


def _causal_block(q: jax.Array, k: jax.Array, v: jax.Array, first: int) -> jax.Array:
    """Attention of queries `[B, H, Tq, Dh]` at steps `first`… over keys and values
    `[B, H, S, Dh]` at steps 0… (each query sees the keys up to its own step) → `[B, H, Tq, Dh]`."""
    scores = jnp.einsum("bhtd,bhsd->bhts", q, k, preferred_element_type=jnp.float32)
    scores = scores * np.float32(1.0 / np.sqrt(q.shape[-1]))
    causal = first + jnp.arange(q.shape[2])[:, None] >= jnp.arange(k.shape[2])[None, :]  # [Tq, S]
    scores = jnp.where(causal, scores, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    return jnp.einsum("bhts,bhsd->bhtd", weights, v)


class HeadsProjection(nn.Module):
    """The parameters of one `[d_model] → [heads, head_dim]` projection, exactly as
    `nn.DenseGeneral` names and initialises them (`kernel` `[d_model, heads, head_dim]`,
    lecun-normal over d_model; `bias` `[heads, head_dim]`, zeros), returned unapplied so
    that several projections of one input run as one matmul (`fused_heads_projection`)."""

    heads: int
    head_dim: int
    use_bias: bool = True  # False: no bias parameter (None returned in its place)

    @nn.compact
    def __call__(self, in_features: int) -> tuple[jax.Array, Optional[jax.Array]]:
        flat = lambda init, shape: lambda rng, full, dtype=jnp.float32: init(rng, shape, dtype).reshape(full)
        kernel = self.param("kernel", flat(nn.initializers.lecun_normal(), (in_features, self.heads * self.head_dim)),
                            (in_features, self.heads, self.head_dim))
        if not self.use_bias:
            return kernel, None
        bias = self.param("bias", flat(nn.initializers.zeros, (self.heads * self.head_dim,)), (self.heads, self.head_dim))
        return kernel, bias


def fused_heads_projection(x: jax.Array, weights: list[tuple[jax.Array, Optional[jax.Array]]], dtype: Any
                           ) -> list[jax.Array]:
    """`x` `[B, T, d_model]` through each (kernel `[d_model, H, Dh]`, bias `[H, Dh]` or None
    for all) in one matmul of the concatenated kernels (fewer, larger matmuls than one per
    projection), computed in `dtype`: `[B, T, H, Dh]` per projection, as `nn.DenseGeneral`
    gives them. The matmul is 2-D (`[B·T, d_model] @ [d_model, n·H·Dh]`), so the kernel's
    gradient contracts one token axis: over `[B, T]` XLA:CPU transposed the `[B·T, n·H·Dh]`
    output gradient (about 12 MB at the small benchmark size) before every weight-gradient dot."""
    kernel = jnp.concatenate([k for k, _ in weights], axis=1).astype(dtype)  # [d_model, n·H, Dh]
    tokens = x.reshape(-1, x.shape[-1]).astype(dtype)
    out = (tokens @ kernel.reshape(kernel.shape[0], -1)).reshape(*x.shape[:-1], *kernel.shape[1:])
    if weights[0][1] is not None:
        out = out + jnp.concatenate([b for _, b in weights], axis=0).astype(dtype)
    return jnp.split(out, len(weights), axis=2)


class SelfAttention(nn.Module):
    """Causal multi-head self-attention with RoPE and an optional KV cache (the full pass by
    `kernel`, see `causal_attention`; cached decoding always by XLA)."""

    num_heads: int
    rope_base: float
    dtype: Any
    kernel: str = "xla"  # "xla" or "cudnn": see `causal_attention`
    use_bias: bool = True  # biases in the q/k/v and output projections

    @nn.compact
    def __call__(self, x: jax.Array, positions: jax.Array, cache: Optional[dict[str, jax.Array]],
                 ) -> tuple[jax.Array, Optional[dict[str, jax.Array]]]:
        d_model = x.shape[-1]
        head_dim = d_model // self.num_heads
        weights = [HeadsProjection(self.num_heads, head_dim, self.use_bias, name=n)(d_model)
                   for n in ("query", "key", "value")]
        q, k, v = fused_heads_projection(x, weights, self.dtype)  # [B, T, H, Dh] each, one matmul
        q, k = rope(q, positions, self.rope_base), rope(k, positions, self.rope_base)
        if cache is None:
            out = causal_attention(q, k, v, self.kernel, CUDNN_BLOCK if self.kernel == "cudnn" else 1)
            new_cache = None
        else:
            start = positions[0]
            k_all = jax.lax.dynamic_update_slice(cache["k"], k.astype(cache["k"].dtype), (0, start, 0, 0))
            v_all = jax.lax.dynamic_update_slice(cache["v"], v.astype(cache["v"].dtype), (0, start, 0, 0))
            key_positions = jnp.arange(k_all.shape[1])
            mask = key_positions[None, :] <= positions[:, None]  # [T, S]: causal over the cache
            out = jax.nn.dot_product_attention(q, k_all.astype(q.dtype), v_all.astype(q.dtype),
                                               mask=mask[None, None])
            new_cache = {"k": k_all, "v": v_all}
        out = nn.DenseGeneral(d_model, axis=(-2, -1), dtype=self.dtype, use_bias=self.use_bias, name="out")(
            out.reshape(-1, *out.shape[2:]))
        return out.reshape(*x.shape[:-1], d_model), new_cache


class CrossAttention(nn.Module):
    """Attention from the mel sequence to a conditioning sequence (text, MIDI, labels).

    `context` is `[batch, context_steps, width]`; `context_mask` `[batch, context_steps]`
    marks valid entries. With a layer `cache`, the context's keys and values are computed
    once (at prefill, when the cache has none) and read from the cache afterwards, where
    `context` may be None.

    With `guided_heads` > 0 (a TTS block whose attention is guided to the diagonal), the
    third output is the mean attention of the first `guided_heads` heads `[B, T, S]` (else
    None), and a cache also keeps `context_focus` `[B]`: the context entry those heads
    attended most at the last position, and `context_dwell` `[B]`: for how many positions
    that focus has not moved on. With `monotonic` m > 0, a single decoding step
    (one position over a cache) attends only to entry 0 (the summary slot) and the entries
    from focus − 1 to focus + m, and the focus never moves back: Tacotron-style monotonic
    attention at inference, so synthesis neither skips nor repeats the text. With
    `max_dwell` d > 0 as well, a step whose focus has held one entry for d positions
    attends only to the entries after it (focus + 1 to focus + m; not at the text's last
    entry, past which there is only the end: `continuation.ended_by_dwell`): a focus that
    sticks, drawing one sound out for many frames, is moved on.
    """

    num_heads: int
    dtype: Any
    rope_base: float = 10000.0  # with times: rotary embedding base
    timed: bool = False  # queries and context entries carry times (in frames): attention sees their distance
    guided_heads: int = 0  # heads whose mean weights are returned (and drive the focus); 0: none
    monotonic: int = 0  # decoding steps attend within [focus - 1, focus + monotonic] (0: unconstrained)
    max_dwell: int = 0  # with monotonic: steps whose focus held one entry this many positions attend past it (0: no limit)

    @nn.compact
    def __call__(self, x: jax.Array, context: Optional[jax.Array], context_mask: Optional[jax.Array],
                 cache: Optional[dict[str, jax.Array]] = None, query_frames: Optional[jax.Array] = None,
                 context_frames: Optional[jax.Array] = None, local: Optional[jax.Array] = None
                 ) -> tuple[jax.Array, dict[str, jax.Array], Optional[jax.Array]]:
        """With `timed`, queries are rotated (RoPE) by `query_frames` `[T]` (the time, in mel
        frames, of what each position predicts) and context keys by `context_frames` `[B, S]`
        (each entry's time), so a query's score for an entry depends on their distance in time.
        `local` `[T, S]` (bool; unguided attention only) limits each query to those entries
        (`EncoderBlock.window`)."""
        d_model = x.shape[-1]
        head_dim = d_model // self.num_heads
        proj = lambda name: nn.DenseGeneral((self.num_heads, head_dim), dtype=self.dtype, name=name)
        q = proj("query")(x)
        if self.timed:
            q = rope(q, query_frames, self.rope_base)
        if cache is not None and "context_k" in cache:
            k, v, valid = cache["context_k"], cache["context_v"], cache["context_mask"]
        else:
            k, v = proj("key")(context), proj("value")(context)
            if self.timed:
                k = rope(k, context_frames, self.rope_base)
            valid = jnp.ones(context.shape[:2], jnp.float32) if context_mask is None else context_mask
        new_cache = {"context_k": k, "context_v": v, "context_mask": valid.astype(jnp.float32)}
        if not self.guided_heads:
            seen = valid[:, None, None, :].astype(bool)  # [B, 1, 1, S]
            if local is not None:
                seen = seen & local[None, None]
            out = jax.nn.dot_product_attention(q, k.astype(q.dtype), v.astype(q.dtype), mask=seen)
            return nn.DenseGeneral(d_model, axis=(-2, -1), dtype=self.dtype, name="out")(out), new_cache, None
        allowed = valid.astype(bool)  # [B, S]
        stepping = cache is not None and "context_focus" in cache and x.shape[1] == 1
        moved_on = None  # [B, 1]: rows whose held focus this step must leave (monotonic decoding steps only)
        if stepping and self.monotonic > 0:
            entry = jnp.arange(allowed.shape[1])[None, :]
            focus = cache["context_focus"][:, None]
            last = jnp.sum(allowed, axis=1, keepdims=True) - 1  # the text's last entry (entries are contiguous)
            moved_on = (cache["context_dwell"][:, None] >= self.max_dwell) & (focus < last) & (self.max_dwell > 0)
            lowest = jnp.where(moved_on, focus + 1, focus - 1)
            allowed = allowed & ((entry == 0) | ((entry >= lowest) & (entry <= focus + self.monotonic)))
        scores = jnp.einsum("bthd,bshd->bhts", q.astype(jnp.float32), k.astype(jnp.float32)) / np.sqrt(head_dim)
        weights = jax.nn.softmax(jnp.where(allowed[:, None, None, :], scores, -1e30), axis=-1)
        out = jnp.einsum("bhts,bshd->bthd", weights, v.astype(jnp.float32)).astype(self.dtype)
        alignment = weights[:, : self.guided_heads].mean(axis=1)  # [B, T, S]
        if cache is not None:
            new_cache.update(_advance_focus(alignment, cache if stepping else None,
                                            None if moved_on is None else moved_on[:, 0]))
        return nn.DenseGeneral(d_model, axis=(-2, -1), dtype=self.dtype, name="out")(out), new_cache, alignment


def _advance_focus(alignment: jax.Array, cache: Optional[dict[str, jax.Array]],
                   moved_on: Optional[jax.Array] = None) -> dict[str, jax.Array]:
    """The guided heads' `context_focus` and `context_dwell` `[B]` (see `CrossAttention`)
    after positions whose mean attention is `alignment` `[B, T, S]` (entry 0 the summary
    slot): over a decoding step's `cache` the focus only moves on (by at least one entry
    where `moved_on` `[B]`, even if the step looked only at the summary slot) and the dwell
    counts the positions it has held; at prefill (cache None) the focus is where the last
    position looked and the dwell how many positions just before it looked there too."""
    seen = jnp.argmax(alignment[:, :, 1:], axis=-1).astype(jnp.float32) + 1.0  # [B, T]; entry 0 is no text
    if cache is None:
        trailing = jnp.cumprod(seen[:, ::-1] == seen[:, -1:], axis=1)  # 1 while looking back stays on the focus
        return {"context_focus": seen[:, -1], "context_dwell": jnp.sum(trailing, axis=1).astype(jnp.float32) - 1.0}
    floor = cache["context_focus"] + (0.0 if moved_on is None else moved_on.astype(jnp.float32))
    focus = jnp.maximum(floor, seen[:, -1])
    dwell = jnp.where(focus > cache["context_focus"], 0.0, cache["context_dwell"] + 1.0)
    return {"context_focus": focus, "context_dwell": dwell}


@jax.custom_vjp
def gelu(x: jax.Array) -> jax.Array:
    """`nn.gelu` (the tanh approximation), whose backward pass keeps only its input and
    recomputes the tanh: autodiff of `nn.gelu` also stores the tanh, a second activation
    the MLP's width for the backward pass to read (on an H100 the base step's GELU fusions
    run at the memory bandwidth, so each tensor not written or read is time)."""
    return nn.gelu(x)


def _gelu_forward(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return nn.gelu(x), x


def _gelu_backward(x: jax.Array, grad: jax.Array) -> tuple[jax.Array]:
    """d gelu / dx · grad: `nn.gelu`'s own derivative, recomputed from x in float32 (free in a
    memory-bound fusion), in x's dtype."""
    _, pullback = jax.vjp(nn.gelu, x.astype(jnp.float32))
    return (pullback(grad.astype(jnp.float32))[0].astype(x.dtype),)


gelu.defvjp(_gelu_forward, _gelu_backward)


class Mlp(nn.Module):
    """Position-wise feed-forward: Dense → GELU → Dense, over the tokens flattened to
    `[B·T, d_model]` (each weight gradient then contracts one token axis; over `[B, T]`
    XLA:CPU transposed the `[B·T, hidden]` activation or its gradient before the dot)."""

    hidden: int
    dtype: Any
    use_bias: bool = True  # biases in both projections

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        tokens = x.reshape(-1, x.shape[-1])
        h = gelu(nn.Dense(self.hidden, dtype=self.dtype, use_bias=self.use_bias, name="up")(tokens))
        return nn.Dense(x.shape[-1], dtype=self.dtype, use_bias=self.use_bias, name="down")(h).reshape(x.shape)


class Block(nn.Module):
    """Pre-RMSNorm decoder block: self-attention, [cross-attention], MLP, each residual.

    The residual stream `x` `[B, T, d_model]` is `model.residual_dtype` whatever the compute
    dtype: float32 by default, each branch computing in `model.dtype` and adding its output
    back in float32, so bfloat16 rounding does not accumulate over the layers; bfloat16
    halves the stream's memory traffic (RMSNorm, the adds and their backward) at that cost.
    """

    config: ModelConfig
    guided: bool = False  # its cross-attention's first heads are guided to the diagonal (returns their weights)
    monotonic: int = 0  # see `CrossAttention.monotonic`
    max_dwell: int = 0  # see `CrossAttention.max_dwell`

    @nn.compact
    def __call__(self, x, positions, example_ids, cache, context, context_mask, context_frames, deterministic: bool):
        """→ (x `[B, T, d_model]`, the layer's new cache or None, the guided heads' mean
        cross-attention `[B, T, S]` or None)."""
        cfg, dtype = self.config, _dtype(self.config)

        def drop(h: jax.Array) -> jax.Array:
            if not deterministic and cfg.dropout > 0:
                h = h * keep_mask(self.make_rng("dropout"), cfg.dropout, example_ids, positions, h.shape[-1], h.dtype)
            return h.astype(residual)

        residual = jnp.dtype(cfg.residual_dtype)
        x = x.astype(residual)
        h, new_cache = SelfAttention(cfg.num_heads, cfg.rope_base, dtype, attention_kernel(cfg.attention, dtype),
                                     cfg.block_biases, name="attn")(
            nn.RMSNorm(dtype=dtype, name="norm_attn")(x), positions, cache)
        x = x + drop(h)
        cached_context = cache is not None and "context_k" in cache
        alignment = None
        if cfg.condition.cross_attends or (cfg.context_dim > 0 and (context is not None or cached_context)):
            timed = cfg.condition.midi == "tokens"
            guided_heads = cfg.condition.guided_heads if self.guided else 0
            h, context_cache, alignment = CrossAttention(cfg.num_heads, dtype, cfg.rope_base, timed=timed,
                                                         guided_heads=guided_heads, monotonic=self.monotonic,
                                                         max_dwell=self.max_dwell,
                                                         name="cross")(
                nn.RMSNorm(dtype=dtype, name="norm_cross")(x), context, context_mask, cache,
                query_frames=(positions + 1) * cfg.frames_per_step if timed else None, context_frames=context_frames)
            if new_cache is not None:
                new_cache = {**new_cache, **context_cache}
            x = x + drop(h)
        h = Mlp(cfg.mlp_ratio * cfg.d_model, dtype, cfg.block_biases, name="mlp")(
            nn.RMSNorm(dtype=dtype, name="norm_mlp")(x))
        return x + drop(h), new_cache, alignment


class EncoderBlock(nn.Module):
    """Pre-RMSNorm bidirectional Transformer layer over a masked sequence `[B, S, width]`:
    attention of the sequence to itself (`CrossAttention` over its own valid positions, with
    `window` > 0 only those within `window` positions either side), MLP."""

    num_heads: int
    dtype: Any
    window: int = 0  # positions each position sees either side (0: all)

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        width = x.shape[-1]
        h = nn.RMSNorm(dtype=self.dtype, name="norm_attn")(x)
        keys = jnp.asarray(mask).at[:, 0].set(1.0)  # an empty text still has one key: no row attends to nothing
        local = None
        if self.window > 0:  # a valid position sees itself; padding whose window has no valid key stays finite, masked downstream
            offsets = jnp.arange(x.shape[1])
            local = jnp.abs(offsets[:, None] - offsets[None, :]) <= self.window  # [S, S]
        a, _, _ = CrossAttention(self.num_heads, self.dtype, name="attn")(h, h, keys, local=local)
        x = x + a.astype(jnp.float32)
        return x + Mlp(4 * width, self.dtype, name="mlp")(nn.RMSNorm(dtype=self.dtype, name="norm_mlp")(x)
                                                         ).astype(jnp.float32)


class VoiceEncoder(nn.Module):
    """A voice as one vector: normalised log-mel frames `voice` `[B, Tv, n_mels]` under
    `voice_mask` `[B, Tv]` → `[B, width]` float32. Two position-wise layers (each frame
    sees its neighbours through a width-3 convolution), then the masked mean and standard
    deviation over time (x-vector statistics pooling: the order of the frames, and so the
    words, is gone), then a `bottleneck`-wide tanh layer and a projection to `width`."""

    width: int
    bottleneck: int
    dtype: Any

    @nn.compact
    def __call__(self, voice: jax.Array, voice_mask: jax.Array) -> jax.Array:
        mask = voice_mask.astype(jnp.float32)[..., None]  # [B, Tv, 1]
        h = nn.gelu(nn.Conv(self.width, (3,), dtype=self.dtype, name="conv")(voice.astype(self.dtype) * mask))
        h = nn.gelu(nn.Dense(self.width, dtype=self.dtype, name="dense")(h)).astype(jnp.float32)
        count = jnp.maximum(jnp.sum(mask, axis=1), 1.0)  # [B, 1]
        mean = jnp.sum(h * mask, axis=1) / count
        std = jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(h - mean[:, None]) * mask, axis=1) / count, 0.0) + 1e-5)
        code = jnp.tanh(nn.Dense(self.bottleneck, dtype=self.dtype, name="bottleneck")(
            jnp.concatenate([mean, std], axis=-1).astype(self.dtype)))
        return nn.Dense(self.width, dtype=self.dtype, name="out")(code).astype(jnp.float32)


class RateEncoder(nn.Module):
    """Speaking rates `rate` `[B]` (characters per second) → `[B, width]` float32: the rate's
    logarithm about 12 characters per second (read English: roughly 10-18), in units of
    0.25 (±28%), through a 64-wide gelu layer and a projection to `width`."""

    width: int
    dtype: Any

    @nn.compact
    def __call__(self, rate: jax.Array) -> jax.Array:
        x = (jnp.log(jnp.maximum(rate.astype(jnp.float32), 0.5)) - np.log(12.0)) / 0.25  # [B]
        h = nn.gelu(nn.Dense(64, dtype=self.dtype, name="dense")(x[:, None]))
        return nn.Dense(self.width, dtype=self.dtype, name="out")(h).astype(jnp.float32)


class Conditioner(nn.Module):
    """Conditions → the context cross-attention reads: `[B, 1 + S, width]` and its mask `[B, 1 + S]`.

    Slot 0 summarises the conditions: the label's embedding (`label` `[B]` ids) or, without
    a label conditioner, a learned 'conditioned' vector. With a text conditioner, slots
    1..S are the characters (`text` `[B, S]`, `text_mask` `[B, S]`) through an embedding,
    learned positions and `text_layers` bidirectional layers. A row with `drop` `[B]` set
    sees only the learned `null` in slot 0 (its text masked out): the unconditional model
    of classifier-free guidance; `drop_label` / `drop_text` `[B]` drop one conditioner alone
    (its slot becomes the null, or its characters are masked out). With note tokens
    (`midi="tokens"`: `note_tokens`, `note_mask` `[B, S]`), the window's note events follow
    through an encoder of their own (masked out for dropped rows); the third output gives
    each context entry's time in frames `[B, 1 + S]` (`note_frames` `[B, S]` for the tokens,
    0 before them), by which the blocks' cross-attention rotates its keys (None otherwise).
    With a voice conditioner (`voice` `[B, Tv, n_mels]`, `voice_mask` `[B, Tv]`), the
    `VoiceEncoder`'s vector is added to every context entry (as SV2TTS adds its speaker
    embedding to every encoder output), so every cross-attention read carries the voice;
    rows without a voice (`voice` absent, `drop` or `drop_voice` `[B]` set) get a learned
    `voice_null` instead. With a speaking-rate conditioner, the `RateEncoder`'s vector of
    `rate` `[B]` (characters per second) is added the same way, so the decoder can pace its
    reading of the text; rows without one (`rate` absent, `drop` or `drop_rate` set) get a
    learned `rate_null`.
    """

    config: ConditionConfig
    width: int
    num_heads: int
    dtype: Any

    @nn.compact
    def __call__(self, conditions: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array, Optional[jax.Array]]:
        cfg = self.config
        batch = next(v.shape[0] for k, v in conditions.items() if k in ("label", "text", "note_tokens", "voice"))
        drop = conditions.get("drop", jnp.zeros((batch,), bool)).astype(bool)
        init = nn.initializers.normal(0.02)
        if cfg.label:
            slot = nn.Embed(cfg.max_labels, self.width, embedding_init=init, name="label_embed")(conditions["label"])
        else:
            slot = jnp.broadcast_to(self.param("conditioned", init, (self.width,)), (batch, self.width))
        null = self.param("null", init, (self.width,))
        drop_label = drop | conditions.get("drop_label", jnp.zeros((batch,), bool)).astype(bool)
        drop_text = drop | conditions.get("drop_text", jnp.zeros((batch,), bool)).astype(bool)
        slot = jnp.where(drop_label[:, None] if cfg.label else drop[:, None], null[None, :], slot)
        context, mask = [slot[:, None, :]], [jnp.ones((batch, 1), jnp.float32)]
        if cfg.text:
            x = self._encode("text", conditions["text"], conditions["text_mask"],
                             conditioning.vocabulary_size(cfg.text_units), cfg.max_text_chars, cfg.text_layers,
                             init, cfg.text_positions, cfg.text_window)
            context.append(x)
            mask.append(conditions["text_mask"].astype(jnp.float32) * (1.0 - drop_text[:, None].astype(jnp.float32)))
        frames = None
        if cfg.midi == "tokens":
            untimed = sum(c.shape[1] for c in context)  # the summary slot and any text sit at time 0
            frames = jnp.concatenate([jnp.zeros((batch, untimed), jnp.float32),
                                      conditions["note_frames"].astype(jnp.float32)], axis=1)
            context.append(self._encode("note", conditions["note_tokens"], conditions["note_mask"],
                                        midi.TOKEN_VOCABULARY, cfg.max_note_tokens, cfg.note_layers, init))
            mask.append(conditions["note_mask"].astype(jnp.float32) * (1.0 - drop[:, None].astype(jnp.float32)))
        context = jnp.concatenate(context, axis=1)
        if cfg.voice:
            voice = functools.partial(VoiceEncoder(self.width, cfg.voice_dim, self.dtype, name="voice"),
                                      conditions.get("voice"), conditions.get("voice_mask"))
            context = context + self._vector_or_null("voice", voice, conditions, drop, init)[:, None, :]
        if cfg.speaking_rate:
            rate = functools.partial(RateEncoder(self.width, self.dtype, name="rate"), conditions.get("rate"))
            context = context + self._vector_or_null("rate", rate, conditions, drop, init)[:, None, :]
        return context, jnp.concatenate(mask, axis=1), frames

    def _vector_or_null(self, key: str, encode: Callable[[], jax.Array], conditions: dict[str, jax.Array],
                        drop: jax.Array, init: Any) -> jax.Array:
        """`[B, width]`: each row's vector of condition `key` (`encode()`, the voice's or the
        rate's encoder on it), or the learned `<key>_null` for rows without one (`key` not
        given, or `drop` / `drop_<key>` set)."""
        null = self.param(f"{key}_null", init, (self.width,))
        if key not in conditions:
            return jnp.broadcast_to(null, (drop.shape[0], self.width))
        missing = drop | conditions.get(f"drop_{key}", jnp.zeros(drop.shape, bool)).astype(bool)
        return jnp.where(missing[:, None], null[None, :], encode())

    def _encode(self, name: str, ids: jax.Array, ids_mask: jax.Array, vocabulary: int, max_length: int, layers: int,
                init: Any, positions: str = "learned", window: int = 0) -> jax.Array:
        """Token ids `[B, S]` (mask `[B, S]`) → `[B, S, width]` float32: an embedding, positions
        and `layers` bidirectional layers (each position seeing `window` tokens either side;
        0: all), then RMSNorm (parameters named `name`_*).

        `positions`: "learned", a learned vector per position (`max_length` of them); or
        "sinusoid", Transformer-TTS's scaled positional encoding (Li et al. 2019; ESPnet's
        ScaledPositionalEncoding): fixed sinusoids times a learned scale, initialised so
        they start at the embeddings' size. Learned vectors let a guided TTS model attend a
        fixed lattice of positions, whatever the text (the guided heads of a 5000-step model
        never focused on characters 0-2, 22-24, 26-28 or 33-35 of any sentence); sinusoids
        treat every position alike (each is the last rotated by the same angles)."""
        x = nn.Embed(vocabulary, self.width, embedding_init=init, name=f"{'char' if name == 'text' else name}_embed")(ids)
        if positions == "sinusoid":
            scale = self.param(f"{name}_position_scale", nn.initializers.constant(0.02 * np.sqrt(2.0)), ())
            x = x + scale * sinusoid(jnp.arange(ids.shape[1]), self.width)[None]
        else:
            x = x + self.param(f"{name}_positions", init, (max_length, self.width))[None, : ids.shape[1]]
        for i in range(layers):
            x = EncoderBlock(self.num_heads, self.dtype, window, name=f"{name}_block_{i}")(x, ids_mask.astype(jnp.float32))
        return nn.RMSNorm(dtype=self.dtype, name=f"{name}_norm")(x).astype(jnp.float32)


def next_group_rolls(roll: jax.Array, frames_per_step: int) -> jax.Array:
    """A piano roll `[B, frames, F]` aligned to the mel frames → what each position is told,
    `[B, frames // r - 1, r * F]`: position i (input group i) gets the roll of group i + 1,
    the group it predicts (frames must divide by r)."""
    return group_frames(roll, frames_per_step)[:, 1:]


class NotesEncoder(nn.Module):
    """Frame-synchronous MIDI: the piano roll of the group a position predicts
    (`notes` `[B, T, r * 3 * 88]`, see `next_group_rolls`) → `[B, T, width]` added to the
    decoder's input; rows with `drop` `[B]` get a learned null vector instead."""

    width: int
    dtype: Any

    @nn.compact
    def __call__(self, notes: jax.Array, drop: jax.Array) -> jax.Array:
        h = nn.gelu(nn.Dense(self.width, dtype=self.dtype, name="dense_0")(notes.astype(self.dtype)))
        h = nn.Dense(self.width, dtype=self.dtype, name="dense_1")(h).astype(jnp.float32)
        null = self.param("null", nn.initializers.normal(0.02), (self.width,))
        return jnp.where(drop[:, None, None], null[None, None, :], h)


ENCODED_CONTEXT = ("encoded_context", "encoded_context_mask")  # a prior_only pass's Conditioner output, reusable
PER_POSITION_CONDITIONS = ("notes", "aligned_text")  # conditions with one entry per position (`next_group_rolls`)


class AlignedTextEncoder(nn.Module):
    """`model.condition.text_alignment="durations"`: each position is told the characters its
    predicted group's frames are spoken in (`aligned_text` `[B, T, r * 3]`, the per-frame
    track of `alignment.aligned_text` through `next_group_rolls`) → `[B, T, width]` added to
    the decoder's input: the mean of those characters' encodings (`memory` `[B, S, width]`,
    the text encoder's output) beside how far through each character its frames lie and
    their durations, through a gelu layer and a projection (FastSpeech's length regulator,
    Ren et al. 2019, with the position inside each character); positions whose frames are
    spoken in no character (go frames, after the text) and rows with `dropped` `[B]` get
    a learned `none` vector instead."""

    width: int
    frames_per_step: int
    dtype: Any

    @nn.compact
    def __call__(self, track: jax.Array, memory: jax.Array, dropped: jax.Array) -> jax.Array:
        batch, steps = track.shape[:2]
        track = track.astype(jnp.float32).reshape(batch, steps, self.frames_per_step, -1)
        index = jnp.round(track[..., 0]).astype(jnp.int32) - 1  # [B, T, r]
        has = (index >= 0) & ~dropped[:, None, None]
        picked = jax.vmap(lambda m, i: m[i])(memory, jnp.clip(index, 0, memory.shape[1] - 1))  # [B, T, r, W]
        weight = has.astype(jnp.float32)[..., None]
        character = jnp.sum(picked * weight, axis=2) / jnp.maximum(jnp.sum(weight, axis=2), 1.0)
        timing = (track[..., 1:] * weight).reshape(batch, steps, -1)
        features = jnp.concatenate([character, timing, weight[..., 0]], axis=-1)
        h = nn.gelu(nn.Dense(self.width, dtype=self.dtype, name="dense_0")(features.astype(self.dtype)))
        h = nn.Dense(self.width, dtype=self.dtype, name="dense_1")(h).astype(jnp.float32)
        none = self.param("none", nn.initializers.normal(0.02), (self.width,))
        return jnp.where(jnp.any(has, axis=-1)[..., None], h, none[None, None, :])


class TextPrior(nn.Module):
    """The text encoder's output `memory` `[B, S, width]` → each character's mean frame
    `text_prior` `[B, S, n_mels]` (normalised units; Glow-TTS's prior, which monotonic
    alignment search aligns the audio with, `alignment.py`) and its duration
    `log_durations` `[B, S]` (log frames; FastSpeech's predictor, on the encoding with its
    gradient stopped, as Glow-TTS trains it, so durations do not shape the encoder), and
    `log_expected_durations` `[B, S]`, those plus one learned offset: a regression on log
    durations predicts each character's median, whose exponentials sum to less than an
    utterance lasts (by exp(σ²/2) for a lognormal error of variance σ²), so the offset,
    trained on whole utterances' totals with the durations' gradient stopped
    (`alignment.aligned_by_search`), makes them the lengths synthesis speaks for."""

    n_mels: int
    width: int
    dtype: Any

    @nn.compact
    def __call__(self, memory: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        prior = nn.Dense(self.n_mels, dtype=jnp.float32, name="prior")(memory)
        h = jax.lax.stop_gradient(memory).astype(self.dtype)
        for i in range(2):
            h = nn.gelu(nn.Dense(self.width, dtype=self.dtype, name=f"duration_{i}")(h))
        log_durations = nn.Dense(1, dtype=jnp.float32, name="duration_out")(h)[..., 0]
        offset = self.param("log_duration_offset", nn.initializers.zeros, (), jnp.float32)
        return prior, log_durations, jax.lax.stop_gradient(log_durations) + offset


class DurationEncoder(nn.Module):
    """Frames left until the audio ends, `left` `[B, T]` (float, per position: from the first
    frame of the group it predicts) → `[B, T, width]` float32 added to the decoder's input;
    rows with `known` `[B]` false get a learned null vector instead (`model.condition.duration`).

    Stable Audio's timing conditioning (Evans et al. 2024) tells a model the seconds it
    should fill; an autoregressive decoder is told at every position how many are left, so
    its pacing and its end-of-audio gate can follow a length fixed before decoding. `left`
    is clipped to [-4 r, 2048] frames (past the end training sees only the gate's last
    positions) and encoded as sines and cosines of periods 8 to 1024 frames and its value
    over 256, through a gelu layer and a projection."""

    width: int
    frames_per_step: int
    dtype: Any

    @nn.compact
    def __call__(self, left: jax.Array, known: jax.Array) -> jax.Array:
        left = jnp.clip(left.astype(jnp.float32), -4.0 * self.frames_per_step, 2048.0)
        periods = 8.0 * 2.0 ** jnp.arange(8, dtype=jnp.float32)  # 8 ... 1024 frames
        angles = 2.0 * np.pi * left[..., None] / periods
        features = jnp.concatenate([jnp.sin(angles), jnp.cos(angles), left[..., None] / 256.0], axis=-1)
        h = nn.gelu(nn.Dense(self.width, dtype=self.dtype, name="dense_0")(features.astype(self.dtype)))
        h = nn.Dense(self.width, dtype=self.dtype, name="dense_1")(h).astype(jnp.float32)
        null = self.param("null", nn.initializers.normal(0.02), (self.width,))
        return jnp.where(known[:, None, None], h, null[None, None, :])


class LevelEncoder(nn.Module):
    """The audio's level `level` `[B]` (tens of dB, `conditioning.audio_levels`) →
    `[B, 1, width]` float32 added to the decoder's input at every position; rows with
    `known` `[B]` false get a learned null vector instead (`model.condition.level`). A
    gelu layer over the level and its square, then a projection."""

    width: int
    dtype: Any

    @nn.compact
    def __call__(self, level: jax.Array, known: jax.Array) -> jax.Array:
        level = jnp.clip(level.astype(jnp.float32), -8.0, 8.0)[:, None]
        features = jnp.concatenate([level, level**2 / 8.0], axis=-1)
        h = nn.gelu(nn.Dense(self.width, dtype=self.dtype, name="dense_0")(features.astype(self.dtype)))
        h = nn.Dense(self.width, dtype=self.dtype, name="dense_1")(h).astype(jnp.float32)
        null = self.param("null", nn.initializers.normal(0.02), (self.width,))
        return jnp.where(known[:, None], h, null[None, :])[:, None, :]


def known_row_values(conditions: Optional[dict], cache: Optional[Cache], batch: int, key: str, dropped: str
                     ) -> tuple[jax.Array, jax.Array]:
    """A per-row value `key` `[B]` (float32; 0 where absent) and whether each row has one
    `[B]` bool: from the first layer's `cache` once a prefill has kept it there (`key`,
    `key + "_known"`: `keep_row_values`), else from the conditions, where absent, or dropped
    (`drop`, or `dropped`, that condition's own dropout), is the learned null. The
    duration's `end_frame` (dropped with the rate, `drop_rate`) and the `level` (`drop_level`)."""
    if cache is not None and key in cache[0]:
        return cache[0][key], cache[0][f"{key}_known"] > 0
    conditions = conditions or {}
    if key not in conditions:
        return jnp.zeros((batch,), jnp.float32), jnp.zeros((batch,), bool)
    missing = jnp.zeros((batch,), bool)
    for name in ("drop", dropped):
        if name in conditions:
            missing = missing | conditions[name].astype(bool)
    return conditions[key].astype(jnp.float32), ~missing


def keep_row_values(layer_cache: dict, kept: dict[str, tuple[jax.Array, jax.Array]]) -> dict:
    """The first layer's cache with each (values, known) of `kept` under its key and
    `key + "_known"`, for the decoding steps after a prefill (`known_row_values`)."""
    for key, (values, known) in kept.items():
        layer_cache = {**layer_cache, key: values, f"{key}_known": known.astype(jnp.float32)}
    return layer_cache


class Postnet(nn.Module):
    """Tacotron 2's post-net: `layers` 1-D convolutions `kernel` frames wide over a whole
    sequence of normalised frames `[B, F, n_mels]` give a residual added to them → the refined
    frames `[B, F, n_mels]` (float32; layer norm and tanh between convolutions). The last
    convolution starts at zero, so an untrained post-net leaves the frames as they are. It sees frames on both sides, so it
    refines a finished sequence (`refine_frames`), never one being decoded."""

    n_mels: int
    channels: int
    layers: int
    kernel: int
    dtype: Any

    @nn.compact
    def __call__(self, frames: jax.Array) -> jax.Array:
        x = frames.astype(self.dtype)
        for i in range(self.layers - 1):
            x = nn.Conv(self.channels, (self.kernel,), padding="SAME", dtype=self.dtype, name=f"conv_{i}")(x)
            x = jnp.tanh(nn.LayerNorm(dtype=self.dtype, name=f"norm_{i}")(x))
        x = nn.Conv(self.n_mels, (self.kernel,), padding="SAME", dtype=self.dtype,
                    kernel_init=nn.initializers.zeros, name=f"conv_{self.layers - 1}")(x)
        return frames.astype(jnp.float32) + x.astype(jnp.float32)


def postnet_of(config: ModelConfig, n_mels: int, name: Optional[str] = None) -> Postnet:
    """The post-net `config` describes (`model.postnet_*`) for `n_mels`-bin frames."""
    return Postnet(n_mels, config.postnet_channels, config.postnet_layers, config.postnet_kernel, _dtype(config),
                   name=name)


def refine_frames(config: ModelConfig, params: dict, frames: jax.Array) -> jax.Array:
    """Normalised frames `[B, F, n_mels]` after the post-net, the whole sequence at once;
    `frames` as they are without one (`model.postnet_layers` 0)."""
    if not config.postnet_layers:
        return frames
    return postnet_of(config, frames.shape[-1]).apply({"params": params["postnet"]}, jnp.asarray(frames, jnp.float32))


class MelTransformer(nn.Module):
    """Groups of normalised log-mel frames in, a prediction of the next group out.

    `__call__(groups [B, T, r*M], ...)` returns a dict: `mean` `[B, T, r*M]`; for the
    `gaussian` head `log_scale` `[B, T, r*M]`; for the `mixture` head (GIVT's mixture of K
    diagonal Gaussians over the whole group) `mixture_logits` `[B, T, K]`,
    `component_means` and `component_log_scales` `[B, T, K, r*M]`; and with `gate`
    `gate_logit` `[B, T]` (the logit that group t + 1 lies past the end of the audio); with
    `model.condition.guided_layers`, `alignment` `[B, T, 1 + S]` (the guided heads' mean
    attention over the context: the summary slot, then the S characters). All float32. With `cache` (from `init_cache`) and `start` (index of the first new position)
    it decodes incrementally and also returns the updated cache; without, it runs the full
    causal pass and returns `None` for it. `example_ids` `[B]` (default 0..B-1) name the
    rows for dropout masks (`keep_mask`): training passes each row's global index;
    positions below `prenet_clean_before` skip the prenet's dropout (a prompt at sampling).
    Without `model.feedback`, only positions below `heard_before` (`[B]` or one count for
    all rows; a prompt's go frames and frames) hear their groups: every other position's
    prenet output is a learned `unheard` vector, so no drawn frame is ever fed back and
    a teacher-forced pass is exactly what free running computes (`unheard_inputs`).

    With `model.condition` active, `conditions` (see `conditioning.py`: `label`, `text`,
    `text_mask`, and `drop` `[B]` for rows that get the null) feed the `Conditioner`,
    whose context every block cross-attends to; in incremental decoding the cache keeps
    the context's keys and values from the prefill and later steps may omit them. MIDI
    (`notes` `[B, T, r * 3 * 88]`, one per position, see `next_group_rolls`) is added to
    the input by `NotesEncoder`, so every call, incremental ones too, passes its positions'.
    With `model.condition.duration`, the frames left until `end_frame` `[B]` (the audio's
    end, counted from this call's position 0; `known_row_values`) are added to the input by
    `DurationEncoder`; in incremental decoding the first layer's cache keeps each row's end
    from the prefill (`end_frame`, `end_frame_known`; `keep_row_values`), so later steps
    need not pass it.
    With `model.condition.level`, the audio's `level` `[B]` (`known_row_values`) is added to
    the input by `LevelEncoder`, kept likewise in the first layer's cache (`level`,
    `level_known`).
    With `model.condition.text_alignment="durations"`, `conditions["aligned_text"]`
    (`[B, T, r * 3]`, the per-frame track of `alignment.aligned_text` per position) tells each
    position its characters through `AlignedTextEncoder`, reading the text encoder's output
    (kept in the first layer's cache as `text_memory` after a prefill); the full pass also
    returns the `TextPrior`'s `text_prior` `[B, S, M]`, `log_durations` `[B, S]` and
    `log_expected_durations` `[B, S]`, and with
    `prior_only` returns only those, before any decoder block (the alignment search's input:
    `searched_conditions`), with the `Conditioner`'s output (`ENCODED_CONTEXT`:
    `encoded_context` `[B, 1 + S, D]`, `encoded_context_mask` `[B, 1 + S]`); conditions that
    carry those (`searched_conditions` adds them) are not encoded again, so a training step
    runs the text encoder once for the search and the decoder.
    With `model.postnet_layers`, the full pass also returns `refined_mean` `[B, T, r*M]`:
    `mean`'s frames, in order, after the `Postnet` (Tacotron 2; it sees the whole sequence,
    so incremental decoding feeds back `mean` and `refine_frames` refines what was drawn).
    """

    config: ModelConfig
    n_mels: int
    monotonic: int = 0  # decoding steps' guided text attention: `CrossAttention.monotonic` (0: free)
    max_dwell: int = 0  # with monotonic: `CrossAttention.max_dwell` (0: no limit)

    @nn.compact
    def __call__(self, groups: jax.Array, *, cache: Optional[Cache] = None,
                 start: jax.Array | int = 0, context: Optional[jax.Array] = None,
                 context_mask: Optional[jax.Array] = None, conditions: Optional[dict[str, jax.Array]] = None,
                 deterministic: bool = True,
                 prenet_deterministic: Optional[bool] = None, example_ids: Optional[jax.Array] = None,
                 prenet_clean_before: jax.Array | int = 0, heard_before: jax.Array | int = 0,
                 prior_only: bool = False) -> tuple[dict[str, jax.Array], Optional[Cache]]:
        cfg, dtype = self.config, _dtype(self.config)
        steps = groups.shape[1]
        if cache is None and attention_kernel(cfg.attention, dtype) == "cudnn":
            # cuDNN's fused attention takes multiples of CUDNN_BLOCK positions: pad the whole
            # sequence once at the end (causal: no real position sees it) and cut the outputs,
            # rather than pad and cut queries, keys and values in every layer.
            groups = pad_positions(groups, CUDNN_BLOCK)
            if conditions is not None:
                conditions = {**conditions, **{k: pad_positions(conditions[k], CUDNN_BLOCK)
                                               for k in PER_POSITION_CONDITIONS if k in conditions}}
        prenet_deterministic = deterministic if prenet_deterministic is None else prenet_deterministic
        positions = start + jnp.arange(groups.shape[1])
        example_ids = jnp.arange(groups.shape[0]) if example_ids is None else example_ids
        x = Prenet(cfg.prenet_dim, cfg.prenet_dropout, dtype, name="prenet")(
            groups.astype(dtype), positions, example_ids, deterministic=prenet_deterministic,
            clean_before=prenet_clean_before)
        if not cfg.feedback:
            x = unheard_inputs(x, positions, heard_before, self.param("unheard", nn.initializers.zeros, (cfg.prenet_dim,)))
        x = nn.Dense(cfg.d_model, dtype=dtype, name="embed")(x).astype(jnp.float32)  # the residual stream (see Block)
        if cfg.absolute_positions:  # Transformer-TTS's scaled positional encoding (a learned scale)
            x = x + self.param("position_scale", nn.initializers.ones, ()) * sinusoid(positions, cfg.d_model)[None]
        if cfg.context_dim > 0 and context is not None:
            context = nn.Dense(cfg.d_model, dtype=dtype, name="context_embed")(context.astype(dtype))
        if cfg.condition.midi == "frames":
            if conditions is None or "notes" not in conditions:
                raise ValueError("MelTransformer: the model is conditioned on MIDI (model.condition.midi); pass "
                                 "conditions['notes'] for every position")
            drop = conditions.get("drop", jnp.zeros((groups.shape[0],), bool)).astype(bool)
            x = x + NotesEncoder(cfg.d_model, dtype, name="notes")(conditions["notes"], drop)
        kept = {}  # per-row values the decoding cache keeps after the prefill
        if cfg.condition.duration:
            ends = kept["end_frame"] = known_row_values(conditions, cache, groups.shape[0], "end_frame", "drop_rate")
            left = ends[0][:, None] - ((positions + 1) * cfg.frames_per_step)[None, :].astype(jnp.float32)
            x = x + DurationEncoder(cfg.d_model, cfg.frames_per_step, dtype, name="duration")(left, ends[1])
        if cfg.condition.level:
            kept["level"] = known_row_values(conditions, cache, groups.shape[0], "level", "drop_level")
            x = x + LevelEncoder(cfg.d_model, dtype, name="level")(*kept["level"])
        context_frames = None
        if cfg.condition.cross_attends:
            cached = cache is not None and "context_k" in cache[0]
            if not cached:
                if conditions is None:
                    raise ValueError("MelTransformer: the model is conditioned (model.condition); pass `conditions`")
                if ENCODED_CONTEXT[0] in conditions:  # a prior_only pass's, under the same conditions
                    context, context_mask = (conditions[k] for k in ENCODED_CONTEXT)
                else:
                    context, context_mask, context_frames = Conditioner(cfg.condition, cfg.d_model, cfg.num_heads,
                                                                        dtype, name="conditioner")(conditions)
        memory, prior = None, {}
        if cfg.condition.text_alignment == "durations":
            if cache is not None and "text_memory" in cache[0]:
                memory = cache[0]["text_memory"]
            else:
                memory = context[:, 1 : 1 + conditions["text"].shape[1]]  # the characters' entries (slot 0 the summary)
                prior["text_prior"], prior["log_durations"], prior["log_expected_durations"] = TextPrior(
                    self.n_mels, cfg.d_model, dtype, name="text_prior")(memory)
            if prior_only:
                return {**prior, **dict(zip(ENCODED_CONTEXT, (context, context_mask)))}, None
            if conditions is None or "aligned_text" not in conditions:
                raise ValueError("MelTransformer: the model reads its text by durations "
                                 "(model.condition.text_alignment); pass conditions['aligned_text'] for every position")
            dropped = jnp.zeros((groups.shape[0],), bool)
            for name in ("drop", "drop_text"):
                if name in conditions:
                    dropped = dropped | conditions[name].astype(bool)
            x = x + AlignedTextEncoder(cfg.d_model, cfg.frames_per_step, dtype, name="aligned_text")(
                conditions["aligned_text"], memory, dropped)
        elif prior_only:
            raise ValueError("MelTransformer: prior_only needs model.condition.text_alignment='durations'")
        block_cls = nn.remat(Block, static_argnums=(8,)) if cfg.remat else Block
        new_cache: Optional[Cache] = None if cache is None else []
        alignments = []
        for i in range(cfg.num_layers):
            layer_cache = None if cache is None else cache[i]
            guided = i >= cfg.num_layers - cfg.condition.guided_layers
            x, layer_new, alignment = block_cls(cfg, guided=guided, monotonic=self.monotonic, max_dwell=self.max_dwell,
                                                 name=f"block_{i}")(
                x, positions, example_ids, layer_cache, context, context_mask, context_frames, deterministic)
            if new_cache is not None:
                new_cache.append(layer_new)
            if alignment is not None:
                alignments.append(alignment)
        if new_cache is not None and kept:  # each row's end and level, for the steps after the prefill
            new_cache[0] = keep_row_values(new_cache[0], kept)
        if new_cache is not None and memory is not None:  # the text's encoding, for the steps after the prefill
            new_cache[0] = {**new_cache[0], "text_memory": memory}
        x = nn.RMSNorm(dtype=dtype, name="norm_out")(x).astype(jnp.float32)
        width = cfg.frames_per_step * self.n_mels
        outputs = {}
        base = self._residual_base(groups)
        if cfg.head == "mixture":
            k = cfg.mixture_components
            out = nn.Dense(k * (2 * width + 1), dtype=jnp.float32, name="head")(x)
            means, log_scales = jnp.split(out[..., : 2 * k * width].reshape(*x.shape[:2], k, 2 * width), 2, axis=-1)
            outputs["mixture_logits"] = out[..., 2 * k * width :]  # [B, T, K]
            outputs["component_means"] = means + base[..., None, :]  # [B, T, K, r*M]
            outputs["component_log_scales"] = jnp.clip(log_scales, -7.0, 5.0)
            weights = jax.nn.softmax(outputs["mixture_logits"], axis=-1)
            mean = jnp.einsum("btk,btkw->btw", weights, means)  # the mixture's mean (for MSE and reports)
        elif cfg.head == "gaussian":
            mean, log_scale = jnp.split(nn.Dense(2 * width, dtype=jnp.float32, name="head")(x), 2, axis=-1)
            outputs["log_scale"] = jnp.clip(log_scale, -7.0, 5.0)
        else:
            mean = nn.Dense(width, dtype=jnp.float32, name="head")(x)
        outputs["mean"] = mean + base
        if cfg.gate:  # Tacotron's stop token: is the group this position predicts past the end?
            outputs["gate_logit"] = nn.Dense(1, dtype=jnp.float32, name="gate")(x)[..., 0]
        if alignments:  # TTS: the guided heads' attention over the context (entry 0 the summary slot, then characters)
            outputs["alignment"] = jnp.mean(jnp.stack(alignments), axis=0)
        outputs = {name: value[:, :steps] for name, value in outputs.items()}
        if cache is None:  # the full pass: training's alignment search and the loss of its prior
            outputs.update(prior)
        if cfg.postnet_layers and cache is None:
            refined = postnet_of(cfg, self.n_mels, name="postnet")(ungroup_frames(outputs["mean"], self.n_mels))
            outputs["refined_mean"] = group_frames(refined, cfg.frames_per_step)
        return outputs, new_cache

    def _residual_base(self, groups: jax.Array) -> jax.Array:
        """With `predict_residual`, the last input frame tiled over the group (else 0)."""
        if not self.config.predict_residual:
            return jnp.zeros(groups.shape[:2] + (self.config.frames_per_step * self.n_mels,), jnp.float32)
        last = groups[..., -self.n_mels:].astype(jnp.float32)  # [B, T, M]
        return jnp.tile(last, (1, 1, self.config.frames_per_step))


def searched_track(model: MelTransformer, params: Any, mel: jax.Array, mask: jax.Array, conditions: dict,
                   go_frames: int) -> tuple[jax.Array, dict[str, jax.Array]]:
    """A durations model's alignment of `mel` `[B, T, M]` (normalised, `mask` `[B, T]`, the
    audio after `go_frames`) to the text of `conditions`: a `prior_only` pass, then
    `alignment.aligned_by_search` under its per-character mean frames. Returns the per-frame
    track `[B, T, 3]` and the prior's and duration predictor's error sums."""
    prior = prior_outputs(model, params, mel, conditions)
    return alignment.aligned_by_search(prior, mel, mask, conditions["text_mask"], go_frames)


def prior_outputs(model: MelTransformer, params: Any, mel: jax.Array, conditions: dict) -> dict[str, jax.Array]:
    """A durations model's `prior_only` pass for `mel` `[B, T, M]` (normalised; only its
    shape matters) under `conditions`: `text_prior`, `log_durations`,
    `log_expected_durations` and the encoded context (`ENCODED_CONTEXT`)."""
    groups = group_frames(mel, model.config.frames_per_step)[:, :-1]
    return model.apply({"params": params}, groups, conditions=conditions, prior_only=True)[0]


def searched_conditions(model: MelTransformer, params: Any, mel: jax.Array, conditions: dict, go_frames: int,
                        mask: Optional[jax.Array] = None) -> tuple[dict, dict[str, jax.Array]]:
    """`conditions` plus `aligned_text`, the `searched_track` of `mel` (`mask`: default every
    frame real) one per input position (`next_group_rolls`): what a model that reads its
    text by durations is told in a teacher-forced pass over real audio; and the track's sums."""
    mask = jnp.ones(mel.shape[:2], jnp.float32) if mask is None else mask
    prior = prior_outputs(model, params, mel, conditions)
    track, sums = alignment.aligned_by_search(prior, mel, mask, conditions["text_mask"], go_frames)
    encoded = {k: prior[k] for k in ENCODED_CONTEXT}  # so the pass these conditions feed skips the text encoder
    return {**conditions, **encoded, "aligned_text": next_group_rolls(track, model.config.frames_per_step)}, sums


def init_cache(config: ModelConfig, batch_size: int, steps: Optional[int] = None) -> Cache:
    """Zeroed KV cache for `steps` positions (default `max_frames // frames_per_step`)."""
    steps = config.max_frames // config.frames_per_step if steps is None else steps
    head_dim = config.d_model // config.num_heads
    shape = (batch_size, steps, config.num_heads, head_dim)
    return [{"k": jnp.zeros(shape, _dtype(config)), "v": jnp.zeros(shape, _dtype(config))}
            for _ in range(config.num_layers)]


def init_params(config: ModelConfig, n_mels: int, key: jax.Array) -> dict:
    """Float32 parameters of a MelTransformer for `n_mels`-bin frames."""
    model = MelTransformer(config, n_mels)
    dummy = jnp.zeros((1, 2, config.frames_per_step * n_mels), jnp.float32)
    context = jnp.zeros((1, 1, config.context_dim), jnp.float32) if config.context_dim > 0 else None
    conditions = conditioning.condition_arrays(
        config.condition, np.zeros(1, np.int32), [""],
        np.zeros((1, 3 * config.frames_per_step, midi.FEATURES_PER_FRAME), np.float32),
        np.zeros((1, config.condition.max_note_tokens), np.int32),
        voices=np.zeros((1, config.frames_per_step, n_mels), np.float32), rates=np.ones(1, np.float32),
        frames_per_second=1.0) or None
    if conditions is not None and "notes" in conditions:
        conditions["notes"] = next_group_rolls(jnp.asarray(conditions["notes"]), config.frames_per_step)
    if config.condition.text_alignment == "durations":
        conditions["aligned_text"] = jnp.zeros((1, 2, config.frames_per_step * alignment.ALIGNED_FEATURES))
    return model.init({"params": key}, dummy, context=context, conditions=conditions)["params"]
