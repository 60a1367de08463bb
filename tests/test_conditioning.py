"""Conditioning: metadata → arrays, the Conditioner and its null, guided decoding against its
reference, a conditioned model that learns to use its label, and the labelled sound set."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiolm_jax import conditioning as K, config as C, decode, train
from audiolm_jax.model import MelTransformer, init_cache, init_params

COND = C.ConditionConfig(label=True, text=True, max_labels=8, max_text_chars=12, text_layers=1)
MODEL = C.ModelConfig(num_layers=2, d_model=32, num_heads=2, prenet_dim=16, max_frames=32, head="mixture",
                      mixture_components=2, condition=COND)
N_MELS = 8


def conditions(labels, texts, cond=COND):
    return {k: jnp.asarray(v) for k, v in K.condition_arrays(cond, np.asarray(labels), texts).items()}


def test_texts_become_ids_cut_at_a_word_boundary():
    ids, mask = K.encode_texts(["Heavy  RAIN!", "a thunderstorm rolling in", "é"], 12)
    assert ids.shape == (3, 12) and mask.dtype == np.float32
    assert K.decode_ids(ids[0]) == "heavy rain!" and mask[0].sum() == 11
    assert K.decode_ids(ids[1]) == "a"  # "a thunderstorm" is 14 characters: cut after the word that fits
    assert ids[2, 0] == K.UNKNOWN and mask[2].sum() == 1
    assert K.cut_text("abcdefghijklmnop", 5) == "abcde"  # one long word is cut inside


def test_two_transcripts_join_with_one_break_mark_that_encodes():
    assert K.join_transcripts("RED  Green", "blue") == "red green. blue"
    assert K.join_transcripts("Is it red?", " Blue! ") == "is it red. blue!"  # its own closing mark gives way
    assert K.join_transcripts("Is it red?", " Blue! ", marked=False) == "is it red? blue!"  # as before the mark
    ids, mask = K.encode_texts([K.join_transcripts("red", "blue")], 16)
    assert K.decode_ids(ids[0]) == "red. blue" and mask.sum() == len("red. blue")  # no unknown id


def test_label_set_round_trips_and_names_known_labels(tmp_path):
    labels = K.LabelSet(["rain", "wind"])
    labels.save(str(tmp_path))
    again = K.LabelSet.load(str(tmp_path))
    assert again.names == ("rain", "wind") and list(again.ids(["wind", "rain"])) == [1, 0]
    with pytest.raises(K.ConditionError, match="knows rain, wind"):
        again.id("thunder")
    with pytest.raises(K.ConditionError, match="no label set"):
        K.LabelSet.load(str(tmp_path / "empty"))
    with pytest.raises(K.ConditionError, match="max_labels is 1"):
        K.check_label_set(labels, C.ConditionConfig(label=True, max_labels=1))


def test_missing_conditions_are_named():
    with pytest.raises(K.ConditionError, match="give a label"):
        K.condition_arrays(COND, None, ["x"])
    with pytest.raises(ValueError, match="pass `conditions`"):
        MelTransformer(MODEL, N_MELS).apply({"params": init_params(MODEL, N_MELS, jax.random.key(0))},
                                            jnp.zeros((1, 3, 2 * N_MELS)))


def test_outputs_follow_the_conditions_and_the_null_ignores_them():
    params = init_params(MODEL, N_MELS, jax.random.key(0))
    model = MelTransformer(MODEL, N_MELS)
    x = jax.random.normal(jax.random.key(1), (2, 5, 2 * N_MELS))
    base = conditions([0, 3], ["rain", "wind"])
    out = lambda c: np.asarray(model.apply({"params": params}, x, conditions=c)[0]["mean"])
    assert np.abs(out(base) - out(conditions([1, 2], ["rain", "wind"]))).max() > 1e-4  # labels matter
    assert np.abs(out(base) - out(conditions([0, 3], ["bell", "siren"]))).max() > 1e-4  # texts matter
    dropped = out({**base, "drop": jnp.array([True, True])})
    other = out({**conditions([5, 1], ["knock", "x"]), "drop": jnp.array([True, True])})
    np.testing.assert_array_equal(dropped, other)  # the null sees no condition at all
    assert np.abs(dropped - out(base)).max() > 1e-4


def test_a_config_saved_before_sinusoidal_text_positions_loads_with_learned_ones():
    """The default became sinusoids; a config.json written before (no such field) meant
    learned positions, and its checkpoint has them: it loads as it was written."""
    model = dataclasses.replace(MODEL, max_frames=1024)
    saved = C.to_dict(C.ExperimentConfig(model=model))
    del saved["model"]["condition"]["text_positions"]
    assert C.from_dict(saved).model.condition.text_positions == "learned"
    assert C.ConditionConfig().text_positions == "sinusoid"
    assert C.from_dict(C.to_dict(C.ExperimentConfig(model=model))).model.condition.text_positions == "sinusoid"


def test_sinusoidal_text_positions_tell_character_order_apart():
    """`text_positions="sinusoid"` (the default): no learned vector per position, one learned scale whose
    sinusoids start at the character embeddings' size; the order of the characters still
    changes the output."""
    cond = dataclasses.replace(COND, text_positions="sinusoid")
    model_cfg = dataclasses.replace(MODEL, condition=cond)
    params = init_params(model_cfg, N_MELS, jax.random.key(0))
    names = set(params["conditioner"])
    assert "text_position_scale" in names and "text_positions" not in names, names
    learned = dataclasses.replace(MODEL, condition=dataclasses.replace(COND, text_positions="learned"))
    assert "text_positions" in init_params(learned, N_MELS, jax.random.key(0))["conditioner"]
    np.testing.assert_allclose(params["conditioner"]["text_position_scale"], 0.02 * np.sqrt(2), rtol=1e-6)
    model = MelTransformer(model_cfg, N_MELS)
    x = jax.random.normal(jax.random.key(1), (1, 5, 2 * N_MELS))
    out = lambda text: np.asarray(model.apply({"params": params}, x, conditions=conditions([0], [text], cond))[0]["mean"])
    assert np.abs(out("ab") - out("ba")).max() > 1e-5  # the same characters in another order


def test_incremental_decoding_with_cached_context_equals_the_full_pass():
    params = init_params(MODEL, N_MELS, jax.random.key(0))
    model = MelTransformer(MODEL, N_MELS)
    x = jax.random.normal(jax.random.key(1), (2, 6, 2 * N_MELS))
    c = conditions([0, 3], ["hello there", "rain"])
    full = model.apply({"params": params}, x, conditions=c)[0]["mean"]
    first, cache = model.apply({"params": params}, x[:, :4], cache=init_cache(MODEL, 2, 8), start=0, conditions=c)
    assert "context_k" in cache[0]  # computed once, at the prefill
    steps = [first["mean"]]
    for t in (4, 5):  # later steps pass no conditions: the cache holds the context
        out, cache = model.apply({"params": params}, x[:, t : t + 1], cache=cache, start=t)
        steps.append(out["mean"])
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


def test_guide_mixes_conditioned_and_null_outputs():
    outputs = {"mean": jnp.array([[1.0], [3.0], [0.0], [1.0]]), "log_scale": jnp.array([[5.0], [6.0], [7.0], [8.0]])}
    mixed = decode.guide(outputs, 3.0)
    np.testing.assert_allclose(mixed["mean"], [[3.0], [7.0]])  # u + 3 (c - u)
    np.testing.assert_allclose(mixed["log_scale"], [[5.0], [6.0]])  # the conditioned half


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_guided_cached_decoding_equals_its_reference(guidance):
    params = init_params(MODEL, N_MELS, jax.random.key(0))
    prompt = np.random.default_rng(0).standard_normal((2, 4, N_MELS)).astype(np.float32)
    c = K.condition_arrays(COND, np.array([0, 3]), ["hello there", "rain"])
    kwargs = dict(window=8, temperature=0.5, prenet_dropout=True, conditions=c, guidance=guidance)
    cached = decode.generate(MODEL, params, prompt, 30, jax.random.key(1), **kwargs)  # 2 window slides
    slow = decode.generate_by_recompute(MODEL, params, prompt, 30, jax.random.key(1), **kwargs)
    np.testing.assert_allclose(cached.frames, slow.frames, atol=1e-4)
    other = decode.generate(MODEL, params, prompt, 30, jax.random.key(1),
                            **{**kwargs, "conditions": K.condition_arrays(COND, np.array([1, 2]), ["x", "y"])})
    assert np.abs(other.frames[:, 4:] - cached.frames[:, 4:]).max() > 1e-3


def test_a_sweep_of_guidance_scales_compiles_decoding_once():
    """The scale is traced: evaluation's guidance sweep (0, 1, 2, 3, 5) compiles the guided
    prefill and decode once, not once per scale; only guided or not changes the program."""
    params = init_params(MODEL, N_MELS, jax.random.key(0))
    prompt = np.random.default_rng(0).standard_normal((2, 4, N_MELS)).astype(np.float32)
    c = K.condition_arrays(COND, np.array([0, 3]), ["hello there", "rain"])
    run = lambda g: decode.generate(MODEL, params, prompt, 6, jax.random.key(1), window=8, temperature=0.0,
                                    conditions=c, guidance=g).frames
    first = run(2.0)
    compiled = (decode._prefill._cache_size(), decode._decode._cache_size())
    others = [run(g) for g in (0.0, 3.0, 5.0)]
    assert (decode._prefill._cache_size(), decode._decode._cache_size()) == compiled
    for other in others:  # and each scale still mixes its own way
        assert np.abs(other[:, 4:] - first[:, 4:]).max() > 1e-4


def test_decoding_refuses_missing_or_unexpected_conditions():
    params = init_params(MODEL, N_MELS, jax.random.key(0))
    prompt = np.zeros((1, 2, N_MELS), np.float32)
    with pytest.raises(ValueError, match="pass `conditions`"):
        decode.generate(MODEL, params, prompt, 4, jax.random.key(0), window=8)
    plain = dataclasses.replace(MODEL, condition=C.ConditionConfig())
    with pytest.raises(ValueError, match="without conditioners"):
        decode.generate(plain, init_params(plain, N_MELS, jax.random.key(0)), prompt, 4, jax.random.key(0), window=8,
                        conditions=K.condition_arrays(COND, np.array([0]), ["x"]))


def test_condition_dropout_is_a_function_of_the_example():
    key = jax.random.key(3)
    ids = jnp.arange(4000)
    mask = np.asarray(K.drop_mask(key, 0.1, ids))
    assert 0.08 < mask.mean() < 0.12
    np.testing.assert_array_equal(mask[2000:], np.asarray(K.drop_mask(key, 0.1, ids[2000:])))  # another device's rows
    assert not np.asarray(K.drop_mask(key, 0.0, ids)).any()


def test_training_drops_each_conditioner_at_its_own_rate_with_its_own_draw():
    ids = jnp.arange(4000)
    cond = C.ConditionConfig(label=True, text=True, voice=True, dropout=0.1, each_dropout=0.3, voice_dropout=0.2)
    drops = {name: np.asarray(mask) for name, mask in train.condition_drops(jax.random.key(5), cond, ids).items()}
    assert sorted(drops) == ["drop", "drop_label", "drop_text", "drop_voice"]
    for name, rate in (("drop", 0.1), ("drop_label", 0.3), ("drop_text", 0.3), ("drop_voice", 0.2)):
        assert abs(drops[name].mean() - rate) < 0.03, (name, drops[name].mean())
    assert 0.05 < np.mean(drops["drop_label"] & drops["drop_text"]) < 0.13  # independent draws: 0.09
    # rates of 0 (and no voice conditioner) draw nothing: the model's defaults keep every condition
    quiet = train.condition_drops(jax.random.key(5), dataclasses.replace(cond, each_dropout=0.0, voice=False), ids)
    assert sorted(quiet) == ["drop"]
    np.testing.assert_array_equal(np.asarray(quiet["drop"]), drops["drop"])


def test_a_label_conditioned_model_learns_to_use_its_label():
    """Each label is a different stationary spectrum; a sequence's first group is noise, so
    only the label says what follows. After training, the true label predicts far better
    than a wrong one."""
    cond = C.ConditionConfig(label=True, max_labels=4, dropout=0.1)
    cfg = C.validate(C.ExperimentConfig(
        audio=C.AudioConfig(sample_rate=8000, n_fft=256, win_length=256, hop_length=128, n_mels=N_MELS),
        model=C.ModelConfig(num_layers=1, d_model=32, num_heads=2, prenet_dim=16, frames_per_step=1,
                            prenet_dropout=0.0, max_frames=32, condition=cond),
        data=C.DataConfig(segment_seconds=0.25, synthetic_clip_seconds=1.0),
        train=C.TrainConfig(steps=150, batch_size=16, learning_rate=1e-2, warmup_steps=5),
        sample=C.SampleConfig(prompt_seconds=0.1)))
    rng = np.random.default_rng(0)
    patterns = rng.standard_normal((4, N_MELS)).astype(np.float32) * 2

    def batch(step):
        r = np.random.default_rng(step)
        labels = r.integers(0, 4, 16)
        mel = np.repeat(patterns[labels][:, None], 16, axis=1) + 0.05 * r.standard_normal((16, 16, N_MELS))
        mel[:, 0] = r.standard_normal((16, N_MELS))
        return {"mel": mel.astype(np.float32), "mask": np.ones((16, 16), np.float32), "label": labels.astype(np.int32)}

    mesh = train.make_mesh(jax.devices()[:1])
    tx = train.optimizer(cfg.train)
    state = train.init_state(cfg, tx)
    step = train.make_train_step(MelTransformer(cfg.model, N_MELS), tx, cfg, mesh)
    losses = []
    for s in range(150):
        state, metrics = step(state, train.shard_batch(batch(s), mesh))
        losses.append(float(metrics["mse"]))
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])
    held_out = batch(10_000)
    forward = train.make_forward(MelTransformer(cfg.model, N_MELS))
    error = lambda labels: float(np.mean((np.asarray(forward(state.params, jnp.asarray(held_out["mel"][:, :-1]),
                                                             {"label": jnp.asarray(labels)})["mean"])
                                          - held_out["mel"][:, 1:]) ** 2))
    right, wrong = error(held_out["label"]), error((held_out["label"] + 1) % 4)
    assert right < 0.25 * wrong, (right, wrong)


def test_label_or_text_alone_when_trained_for_it():
    cond = dataclasses.replace(COND, each_dropout=0.3)
    model_cfg = dataclasses.replace(MODEL, condition=cond)
    text_only = K.condition_arrays(cond, None, ["heavy rain", "a bell"])
    assert list(text_only["drop_label"]) == [True, True] and list(text_only["drop_text"]) == [False, False]
    label_only = K.condition_arrays(cond, np.array([2, 3]), None)
    assert list(label_only["drop_text"]) == [True, True] and label_only["text_mask"].sum() == 0
    with pytest.raises(K.ConditionError, match="give one or both"):
        K.condition_arrays(cond, None, None)
    params = init_params(model_cfg, N_MELS, jax.random.key(0))
    model = MelTransformer(model_cfg, N_MELS)
    x = jax.random.normal(jax.random.key(1), (2, 5, 2 * N_MELS))
    out = lambda c: np.asarray(model.apply({"params": params}, x, conditions={k: jnp.asarray(v) for k, v in c.items()}
                                           )[0]["mean"])
    # without its label, the label id given does not matter; the text does
    np.testing.assert_array_equal(out(text_only), out({**text_only, "label": np.array([5, 6], np.int32)}))
    assert np.abs(out(text_only) - out(K.condition_arrays(cond, None, ["wind", "knock"]))).max() > 1e-4
    with pytest.raises(C.ConfigError, match="each_dropout"):
        C.validate(C.ExperimentConfig(model=C.ModelConfig(condition=C.ConditionConfig(label=True, each_dropout=0.2))))
