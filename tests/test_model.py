import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiolm_jax.config import ModelConfig
from audiolm_jax.model import (CUDNN_BLOCK, MelTransformer, attention_kernel, causal_attention, group_frames,
                               init_cache, init_params, ungroup_frames)
from tests.helpers import with_postnet_residual

CFG = ModelConfig(num_layers=2, d_model=32, num_heads=4, prenet_dim=32, frames_per_step=2, max_frames=64)
N_MELS = 8


def test_group_ungroup_round_trip():
    mel = np.arange(2 * 6 * 3, dtype=np.float32).reshape(2, 6, 3)
    groups = group_frames(mel, 2)
    assert groups.shape == (2, 3, 6)
    np.testing.assert_array_equal(groups[0, 1], np.concatenate([mel[0, 2], mel[0, 3]]))
    np.testing.assert_array_equal(ungroup_frames(groups, 3), mel)
    with pytest.raises(ValueError, match="multiple of frames_per_step"):
        group_frames(mel[:, :5], 2)


@pytest.mark.parametrize("head", ["mse", "gaussian"])
def test_cached_decoding_equals_full_pass(head):
    cfg = dataclasses.replace(CFG, head=head)
    params = init_params(cfg, N_MELS, jax.random.key(0))
    model = MelTransformer(cfg, N_MELS)
    x = jax.random.normal(jax.random.key(1), (3, 13, cfg.frames_per_step * N_MELS))
    full, _ = model.apply({"params": params}, x)
    cache = init_cache(cfg, 3)
    out, cache = model.apply({"params": params}, x[:, :7], cache=cache, start=0)
    pieces = [out]
    for i in range(7, 13):
        out, cache = model.apply({"params": params}, x[:, i : i + 1], cache=cache, start=i)
        pieces.append(out)
    for name in full:
        inc = jnp.concatenate([p[name] for p in pieces], axis=1)
        np.testing.assert_allclose(inc, full[name], atol=1e-5)
    assert set(full) == ({"mean", "log_scale"} if head == "gaussian" else {"mean"})


def test_attention_is_causal():
    params = init_params(CFG, N_MELS, jax.random.key(0))
    model = MelTransformer(CFG, N_MELS)
    x = jax.random.normal(jax.random.key(1), (1, 10, 2 * N_MELS))
    y = x.at[:, 6:].set(0.0)
    a, _ = model.apply({"params": params}, x)
    b, _ = model.apply({"params": params}, y)
    np.testing.assert_allclose(a["mean"][:, :6], b["mean"][:, :6], atol=1e-6)
    assert not np.allclose(a["mean"][:, 6:], b["mean"][:, 6:])


def test_padding_the_sequence_for_cudnn_leaves_every_real_position_unchanged():
    # cuDNN's fused attention takes multiples of 64 positions; padding at the end must not
    # leak into the real positions under the causal mask (431 positions: a 10 s crop at r=2).
    q, k, v = (jax.random.normal(jax.random.key(i), (2, 431, 4, 16)) for i in range(3))
    plain = causal_attention(q, k, v, "xla")
    padded = causal_attention(q, k, v, "xla", block=CUDNN_BLOCK)
    assert padded.shape == plain.shape == (2, 431, 4, 16)
    np.testing.assert_allclose(padded, plain, atol=1e-6)
    # ... while padding at the start, which real positions do see, would change them
    front = [jnp.pad(a, ((0, 0), (CUDNN_BLOCK - 431 % CUDNN_BLOCK, 0), (0, 0), (0, 0))) for a in (q, k, v)]
    leaky = causal_attention(*front, "xla")[:, -431:]
    assert not np.allclose(leaky, plain, atol=1e-3)


def test_the_cudnn_path_pads_the_sequence_once_and_returns_the_unpadded_outputs(monkeypatch):
    # On a GPU the full pass pads the sequence to a multiple of 64 at the input (not per layer)
    # for cuDNN's kernel; here the kernel is XLA's under the same padding, and every output
    # must equal the unpadded pass's at every real position.
    from audiolm_jax import model as model_lib

    cfg = dataclasses.replace(CFG, head="gaussian", gate=True)
    params = init_params(cfg, N_MELS, jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (2, 45, cfg.frames_per_step * N_MELS))
    plain, _ = MelTransformer(cfg, N_MELS).apply({"params": params}, x)
    seen = []
    original = jax.nn.dot_product_attention

    def xla_in_place_of_cudnn(q, k, v, *args, implementation=None, **kwargs):
        seen.append((q.shape[1], implementation))
        return original(q, k, v, *args, **kwargs)

    monkeypatch.setattr(model_lib, "attention_kernel", lambda requested, dtype: "cudnn")
    monkeypatch.setattr(model_lib.jax.nn, "dot_product_attention", xla_in_place_of_cudnn)
    padded, _ = MelTransformer(cfg, N_MELS).apply({"params": params}, x)
    assert seen == [(CUDNN_BLOCK, "cudnn")] * cfg.num_layers  # 45 positions → one block of 64, in each layer
    assert set(padded) == set(plain) == {"mean", "log_scale", "gate_logit"}
    for name in plain:
        assert padded[name].shape == plain[name].shape
        np.testing.assert_allclose(padded[name], plain[name], atol=1e-5)


def test_auto_attention_kernel_is_xla_off_a_gpu_or_in_float32():
    assert attention_kernel("auto", jnp.float32) == "xla"
    expected = "cudnn" if jax.default_backend() == "gpu" else "xla"
    assert attention_kernel("auto", jnp.bfloat16) == expected
    assert attention_kernel("cudnn", jnp.bfloat16) == "cudnn"


def test_conditioning_seam_changes_the_output():
    cfg = dataclasses.replace(CFG, context_dim=5)
    params = init_params(cfg, N_MELS, jax.random.key(0))
    assert "cross" in params["block_0"]
    model = MelTransformer(cfg, N_MELS)
    x = jax.random.normal(jax.random.key(1), (2, 6, 2 * N_MELS))
    c1 = jax.random.normal(jax.random.key(2), (2, 4, 5))
    a, _ = model.apply({"params": params}, x, context=c1)
    b, _ = model.apply({"params": params}, x, context=c1 + 1.0)
    assert not np.allclose(a["mean"], b["mean"])
    masked, _ = model.apply({"params": params}, x, context=c1.at[:, 2:].set(9.0),
                            context_mask=jnp.array([[1, 1, 0, 0]] * 2))
    same, _ = model.apply({"params": params}, x, context=c1, context_mask=jnp.array([[1, 1, 0, 0]] * 2))
    np.testing.assert_allclose(masked["mean"], same["mean"], atol=1e-5)  # masked entries are ignored


def test_bfloat16_compute_keeps_float32_params_and_outputs():
    cfg = dataclasses.replace(CFG, dtype="bfloat16", remat=True)
    params = init_params(cfg, N_MELS, jax.random.key(0))
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
    out, _ = MelTransformer(cfg, N_MELS).apply({"params": params}, jnp.ones((1, 4, 2 * N_MELS)))
    assert out["mean"].dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(out["mean"])))


def test_prenet_dropout_only_when_asked():
    cfg = dataclasses.replace(CFG, prenet_dropout=0.5)
    params = init_params(cfg, N_MELS, jax.random.key(0))
    model = MelTransformer(cfg, N_MELS)
    x = jnp.ones((1, 4, 2 * N_MELS))
    det1, _ = model.apply({"params": params}, x)
    det2, _ = model.apply({"params": params}, x)
    np.testing.assert_array_equal(det1["mean"], det2["mean"])
    drop1, _ = model.apply({"params": params}, x, prenet_deterministic=False, rngs={"dropout": jax.random.key(1)})
    drop2, _ = model.apply({"params": params}, x, prenet_deterministic=False, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(drop1["mean"], drop2["mean"])


def test_the_residual_stream_stays_float32_in_bfloat16():
    cfg = dataclasses.replace(CFG, dtype="bfloat16")
    model = MelTransformer(cfg, 16)
    params = init_params(cfg, 16, jax.random.key(0))
    groups = jnp.asarray(np.random.default_rng(0).standard_normal((1, 6, 32)), jnp.float32)
    _, state = model.apply({"params": params}, groups, capture_intermediates=True, mutable=["intermediates"])
    for i in range(cfg.num_layers):  # each block's output: the stream was bfloat16 from the embedding on
        stream = state["intermediates"][f"block_{i}"]["__call__"][0][0]
        assert stream.dtype == jnp.float32, i


def test_a_bfloat16_residual_stream_when_asked_close_to_the_float32_one():
    cfg = dataclasses.replace(CFG, dtype="bfloat16")
    params = init_params(cfg, 16, jax.random.key(0))
    groups = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 32)), jnp.float32)
    wide, _ = MelTransformer(cfg, 16).apply({"params": params}, groups)
    narrow_cfg = dataclasses.replace(cfg, residual_dtype="bfloat16")
    (narrow, _), state = MelTransformer(narrow_cfg, 16).apply({"params": params}, groups, capture_intermediates=True,
                                                         mutable=["intermediates"])
    for i in range(cfg.num_layers):
        assert state["intermediates"][f"block_{i}"]["__call__"][0][0].dtype == jnp.bfloat16, i
    assert narrow["mean"].dtype == jnp.float32
    error = np.abs(np.asarray(narrow["mean"]) - np.asarray(wide["mean"])).max()
    assert 0 < error < 0.05 * np.abs(np.asarray(wide["mean"])).max(), error


def test_blocks_without_biases_when_asked():
    """`model.block_biases=False` drops every bias of the blocks' self-attention and MLP (the
    bias gradients' reductions over all positions go with them); the rest stays."""
    cfg = dataclasses.replace(CFG, block_biases=False)
    params = init_params(cfg, 16, jax.random.key(0))
    biased = init_params(CFG, 16, jax.random.key(0))
    paths = lambda p: {"/".join(str(getattr(k, "key", k)) for k in path) for path, _ in jax.tree_util.tree_leaves_with_path(p)}
    dropped = paths(biased) - paths(params)
    per_block = {p.split("/", 1)[1] for p in dropped}
    assert per_block == {"attn/query/bias", "attn/key/bias", "attn/value/bias", "attn/out/bias", "mlp/up/bias",
                         "mlp/down/bias"}, per_block
    assert {p.split("/", 1)[0] for p in dropped} == {f"block_{i}" for i in range(CFG.num_layers)}
    assert paths(params) <= paths(biased)
    groups = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 32)), jnp.float32)
    out, _ = MelTransformer(cfg, 16).apply({"params": params}, groups)
    assert out["mean"].shape == (2, 6, 32) and np.isfinite(np.asarray(out["mean"])).all()


def test_the_fused_qkv_matmul_is_three_dense_generals():
    """Self-attention's q, k and v run as one matmul of the concatenated kernels (on an H100
    the base step 25.6 → 24.5 ms); the parameters are DenseGeneral's, named and initialised
    alike, so checkpoints of either layout are the same, and each output is DenseGeneral's."""
    import flax.linen as nn

    from audiolm_jax.model import HeadsProjection, fused_heads_projection

    x = jax.random.normal(jax.random.key(0), (2, 5, 16))
    dense = nn.DenseGeneral((4, 3))
    keys = jax.random.split(jax.random.key(1), 3)
    reference = [dense.init(k, x)["params"] for k in keys]
    ours = [HeadsProjection(4, 3).init(k, 16)["params"] for k in keys]
    for theirs, mine in zip(reference, ours):
        assert jax.tree.structure(theirs) == jax.tree.structure(mine)
        for a, b in zip(jax.tree.leaves(theirs), jax.tree.leaves(mine)):
            np.testing.assert_array_equal(a, b)
    weights = [(jax.random.normal(k, (16, 4, 3)), jax.random.normal(k, (4, 3))) for k in keys]  # non-zero biases
    outs = fused_heads_projection(x, weights, jnp.float32)
    for (kernel, bias), out in zip(weights, outs):
        expected = dense.apply({"params": {"kernel": kernel, "bias": bias}}, x)
        assert out.shape == (2, 5, 4, 3)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("steps,blocks", [(37, None), (37, 1), (37, 3), (130, None), (255, 4)])
def test_heads_major_causal_attention_is_jax_causal_attention(steps, blocks):
    """The XLA path's attention (heads before steps, the queries in blocks that skip the
    score blocks above the diagonal) gives `jax.nn.dot_product_attention`'s causal output
    and gradients, whatever the block count, including blocks of unequal length."""
    from audiolm_jax.model import heads_major_causal_attention, query_blocks_for

    assert [query_blocks_for(n) for n in (37, 64, 130, 255, 2000)] == [1, 1, 2, 3, 4]
    q, k, v = (jax.random.normal(key, (2, steps, 4, 16)) for key in jax.random.split(jax.random.key(0), 3))
    ours = lambda q, k, v: heads_major_causal_attention(q, k, v, blocks)
    theirs = lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(ours(q, k, v), theirs(q, k, v), rtol=1e-5, atol=2e-6)
    loss = lambda fn: jax.grad(lambda *a: jnp.sum(jnp.sin(3.0 * fn(*a))), argnums=(0, 1, 2))(q, k, v)
    for mine, reference in zip(loss(ours), loss(theirs)):
        np.testing.assert_allclose(mine, reference, rtol=1e-4, atol=1e-5)
    # a query never sees a later key: changing the last step's key and value leaves every
    # earlier output as it was
    moved = ours(q, k.at[:, -1].add(5.0), v.at[:, -1].add(5.0))
    np.testing.assert_allclose(moved[:, :-1], ours(q, k, v)[:, :-1], rtol=1e-5, atol=2e-6)
    assert not np.allclose(moved[:, -1], ours(q, k, v)[:, -1])


def test_gelu_is_flax_gelu_forward_and_backward_storing_only_its_input():
    """The MLP's GELU is `nn.gelu` (tanh approximation) with a backward pass that recomputes
    the tanh: same values and gradients, and the backward pass keeps one activation (its
    input), where autodiff of `nn.gelu` keeps two (input and tanh)."""
    import flax.linen as nn

    from audiolm_jax.model import gelu

    x = jnp.linspace(-6.0, 6.0, 2001)
    np.testing.assert_allclose(gelu(x), nn.gelu(x), rtol=1e-6, atol=1e-7)
    ours = jax.grad(lambda v: (gelu(v) * jnp.cos(v)).sum())(x)
    theirs = jax.grad(lambda v: (nn.gelu(v) * jnp.cos(v)).sum())(x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    xb = x.astype(jnp.bfloat16)
    gb = jax.grad(lambda v: gelu(v).astype(jnp.float32).sum())(xb)
    assert gb.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(gb, np.float32), jax.grad(lambda v: nn.gelu(v).sum())(x), atol=0.02)
    stored = lambda f: jax.vjp(f, jnp.ones((8, 64)))[1]
    count = lambda f: sum(leaf.size for leaf in jax.tree.leaves(stored(f)) if hasattr(leaf, "size"))
    assert count(gelu) == 8 * 64 < count(nn.gelu), (count(gelu), count(nn.gelu))


def test_an_untrained_postnet_leaves_the_frames_and_a_trained_one_refines_from_both_sides():
    from audiolm_jax.model import refine_frames

    cfg = dataclasses.replace(CFG, postnet_layers=3, postnet_channels=16, postnet_kernel=3)
    params = init_params(cfg, N_MELS, jax.random.key(0))
    model = MelTransformer(cfg, N_MELS)
    x = jax.random.normal(jax.random.key(1), (2, 9, cfg.frames_per_step * N_MELS))
    out, _ = model.apply({"params": params}, x)
    np.testing.assert_array_equal(out["refined_mean"], out["mean"])  # the last convolution starts at zero
    assert "refined_mean" not in model.apply({"params": params}, x[:, :3], cache=init_cache(cfg, 2), start=0)[0]

    params = with_postnet_residual(params, jax.random.key(2))
    out, _ = model.apply({"params": params}, x)
    assert np.max(np.abs(out["refined_mean"] - out["mean"])) > 0.1
    frames = ungroup_frames(out["mean"], N_MELS)  # the full pass refines what refine_frames refines
    np.testing.assert_allclose(ungroup_frames(out["refined_mean"], N_MELS), refine_frames(cfg, params, frames),
                               atol=1e-5)
    later = x.at[:, 6:].add(1.0)  # only positions 6.. change: the decoder's earlier outputs cannot see it
    changed, _ = model.apply({"params": params}, later)
    np.testing.assert_allclose(changed["mean"][:, :6], out["mean"][:, :6], atol=1e-6)
    refined_frames, before = ungroup_frames(changed["refined_mean"], N_MELS), ungroup_frames(out["refined_mean"], N_MELS)
    assert np.max(np.abs(refined_frames[:, 11] - before[:, 11])) > 1e-3  # frame 11 (position 5) sees frame 12
    np.testing.assert_allclose(refined_frames[:, :9], before[:, :9], atol=1e-6)  # 3 layers of kernel 3: 3 frames
    np.testing.assert_array_equal(refine_frames(CFG, params, frames), frames)  # no post-net: as they are
