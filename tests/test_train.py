import os
import shutil
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiolm_jax import checkpoint, decode, sample, train
from audiolm_jax.model import MelTransformer, init_params
from tests.helpers import mel_dataset, random_walk_data, random_walk_mels, tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_loss_sums_mask_padding_and_baseline():
    import jax.numpy as jnp
    mel = jnp.arange(2 * 6 * 3, dtype=jnp.float32).reshape(2, 6, 3) / 10
    mask = jnp.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], jnp.float32)
    targets = mel[:, 2:].reshape(2, 2, 6)  # groups 1, 2 with r=2
    outputs = {"mean": targets + 1.0}  # error 1 everywhere
    sums = train.loss_sums(outputs, mel, mask, 2, "mse")
    assert float(sums["count"]) == (4 + 2) * 3  # padding frames never count
    assert float(sums["mse"]) == pytest.approx(18.0)
    # copy-last-frame: consecutive frames differ by 0.3 in every bin
    assert float(sums["baseline_mse"]) == pytest.approx(18 * 0.09, rel=1e-5)
    post = train.loss_sums({"mean": targets + 1.0, "refined_mean": targets + 0.5}, mel, mask, 2, "mse")
    assert float(post["postnet_mse"]) == pytest.approx(18 * 0.25)  # the post-net's frames, same targets and mask
    assert float(post["loss"]) == pytest.approx(18.0 + 18 * 0.25) and float(post["mse"]) == pytest.approx(18.0)
    gauss = train.loss_sums({"mean": targets, "log_scale": jnp.zeros_like(targets)}, mel, mask, 2, "mse")
    assert float(gauss["loss"]) == pytest.approx(18 * 0.5 * np.log(2 * np.pi), rel=1e-5)


def test_overfits_a_fixed_batch(tmp_path):
    cfg = tiny_config(str(tmp_path), train={"steps": 300, "learning_rate": 1e-2, "warmup_steps": 20})
    train_mels, _ = random_walk_mels()
    batch = {"mel": np.stack([c[:32] for c in train_mels[:4]]), "mask": np.ones((4, 32), np.float32)}
    mesh = train.make_mesh(jax.devices()[:1])
    tx = train.optimizer(cfg.train)
    state = jax.device_put(train.init_state(cfg, tx), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
    step = train.make_train_step(MelTransformer(cfg.model, 16), tx, cfg, mesh)
    losses = []
    for _ in range(cfg.train.steps):
        state, metrics = step(state, train.shard_batch(batch, mesh))
        losses.append(float(metrics["mse"]))
    assert losses[-1] < 0.01 * losses[0]


def _params_equal(a, b, atol=0.0):
    return all(np.allclose(x, y, atol=atol, rtol=0) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_resume_replays_an_uninterrupted_run(tmp_path):
    data = random_walk_data()
    full = train.train(tiny_config(str(tmp_path / "a"), train={"steps": 20, "checkpoint_every": 10}), data)
    cfg_b = tiny_config(str(tmp_path / "b"), train={"steps": 20, "checkpoint_every": 10})
    train.train(cfg_b, data)
    shutil.rmtree(os.path.join(checkpoint.checkpoint_dir(cfg_b.workdir), "20"))  # as if killed after step 10
    assert checkpoint.latest_step(cfg_b.workdir) == 10
    resumed = train.train(cfg_b, data)
    assert [h["step"] for h in resumed.history] == list(range(11, 21))
    full_losses = [h["loss"] for h in full.history if h["step"] > 10]
    assert [h["loss"] for h in resumed.history] == full_losses  # bit-for-bit on CPU
    assert _params_equal(full.state.params, resumed.state.params)
    assert _params_equal(full.state.ema_params, resumed.state.ema_params)


def test_loss_falls_and_eval_reports_the_baseline(tmp_path):
    train_mels, eval_mels = random_walk_mels(clips=64, frames=48)
    data = mel_dataset(train_mels, eval_mels)
    cfg = tiny_config(str(tmp_path), model={"frames_per_step": 1},
                      train={"steps": 60, "eval_every": 60, "checkpoint_every": 60})
    result = train.train(cfg, data)
    losses = [h["loss"] for h in result.history]
    assert np.mean(losses[-10:]) < 0.1 * np.mean(losses[:3])
    ev = result.eval_metrics
    assert set(ev) == {"loss", "mse", "baseline_mse", "baseline_ratio"}
    assert ev["baseline_ratio"] == pytest.approx(ev["mse"] / ev["baseline_mse"])
    # the copy-last-frame MSE of the evaluation crops, computed here independently
    length = 32
    crops = [c[:length] for c in eval_mels[:cfg.train.batch_size]]
    expected = np.mean([np.mean((c[1:] - c[:-1]) ** 2) for c in crops])
    assert ev["baseline_mse"] == pytest.approx(expected, rel=1e-4)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    train_mels, eval_mels = random_walk_mels()
    data = mel_dataset(train_mels, eval_mels)
    poisoned = [c.copy() for c in train_mels]
    for clip in poisoned:
        clip[5, 3] = np.nan
    cfg = tiny_config(str(tmp_path), train={"steps": 10, "checkpoint_every": 5, "log_every": 1})
    train.train(tiny_config(str(tmp_path), train={"steps": 5, "checkpoint_every": 5}), data)
    bad = mel_dataset(poisoned, eval_mels)
    with pytest.raises(train.TrainingDiverged, match=r"at step 6.*last good checkpoint is step 5"):
        train.train(cfg, bad)
    assert checkpoint.latest_step(cfg.workdir) == 5
    sampler = sample.restore_sampler(cfg.workdir)
    out = decode.generate(sampler.config.model, sampler.params, eval_mels[0][None, :8], 6, jax.random.key(0),
                          window=decode.trained_window(sampler.config)).frames
    assert np.all(np.isfinite(out))


MULTI_DEVICE_SCRIPT = textwrap.dedent("""
    import os, sys, json
    import jax, numpy as np
    sys.path.insert(0, {root!r})
    from audiolm_jax import train
    from tests.helpers import random_walk_data, tiny_config
    assert jax.device_count() == 8, jax.devices()
    data = random_walk_data()
    out = {{}}
    for name, devices in (("one", jax.devices()[:1]), ("eight", jax.devices())):
        cfg = tiny_config(os.path.join({workdir!r}, name),
                          model={{"prenet_dropout": 0.5, "dropout": 0.1, "head": "mixture", "mixture_components": 2}},
                          train={{"steps": 5, "checkpoint_every": 5, "input_noise": 0.3, "input_drift": 0.02, "self_feed": 0.5,
                                  "self_feed_passes": 2}})
        result = train.train(cfg, data, mesh=train.make_mesh(devices))
        out[name] = {{"losses": [h["loss"] for h in result.history],
                     "params": [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(result.state.params)]}}
    print(json.dumps(out))
""")


def test_eight_devices_equal_one_device_and_restore_onto_one(tmp_path):
    script = MULTI_DEVICE_SCRIPT.format(root=ROOT, workdir=str(tmp_path))
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(out["eight"]["losses"], out["one"]["losses"], rtol=1e-5)
    for a, b in zip(out["eight"]["params"], out["one"]["params"]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # the checkpoint trained on 8 devices restores onto this process's single device and samples
    assert jax.device_count() == 1
    sampler = sample.restore_sampler(str(tmp_path / "eight"))
    assert sampler.step == 5
    prompt = random_walk_mels()[1][0][None, :8]
    out_mel = decode.generate(sampler.config.model, sampler.params, prompt, 6, jax.random.key(0),
                              window=decode.trained_window(sampler.config)).frames
    assert out_mel.shape == (1, 14, 16) and np.all(np.isfinite(out_mel))


def test_rerunning_a_finished_run_evaluates_its_final_checkpoint(tmp_path):
    """A finished workdir re-run (or re-run with fewer steps) trained nothing and returned no
    evaluation, so `run` raised KeyError: 'mse'."""
    data = random_walk_data()
    cfg = tiny_config(str(tmp_path), train={"steps": 4, "checkpoint_every": 4, "eval_every": 4})
    first = train.train(cfg, data)
    again = train.train(cfg, data)
    assert again.eval_metrics == first.eval_metrics and again.history == []
    fewer = tiny_config(str(tmp_path), train={"steps": 2, "checkpoint_every": 2, "eval_every": 2})
    assert train.train(fewer, data).eval_metrics == first.eval_metrics


def test_gate_labels_mark_the_last_real_group_of_a_clip():
    mask = jnp.asarray([[1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]], jnp.float32)  # r = 2: 4 groups
    counted, ended, weight = train.gate_labels(mask, 2, positive_weight=5.0)
    np.testing.assert_array_equal(counted, [[1, 1, 1], [1, 1, 1]])  # input groups 0..2 are real
    np.testing.assert_array_equal(ended, [[0, 0, 1], [0, 0, 0]])  # group 3 of row 0 is padding
    np.testing.assert_array_equal(weight, [[1, 1, 5], [1, 1, 1]])


def test_the_gate_learns_where_recordings_end_and_sampling_stops_there(tmp_path):
    """Clips end with a distinctive fade (to -3.5): crops placed over clip ends teach
    the gate; a prompt ending in that fade stops at once, one that does not runs on."""
    train_mels, eval_mels = random_walk_mels(clips=8, frames=40)
    fade = np.repeat(np.linspace(-1.0, -3.5, 6, dtype=np.float32)[:, None], 16, axis=1)  # last frame unique
    cfg = tiny_config(str(tmp_path), model={"gate": True}, data={"end_crop_fraction": 0.5},
                      train={"steps": 150, "eval_every": 150, "checkpoint_every": 150, "log_every": 50})
    ending = [np.concatenate([c[:30], fade]) for c in train_mels]
    data = mel_dataset(ending, [np.concatenate([c[:30], fade]) for c in eval_mels], cfg.data)
    result = train.train(cfg, data)
    assert result.eval_metrics["gate_accuracy"] > 0.9
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    window = decode.trained_window(cfg)
    params = result.state.ema_params
    ended = decode.generate(cfg.model, params, ending[0][None, 20:36], 20, jax.random.key(0), window=window)
    running = decode.generate(cfg.model, params, ending[0][None, 8:24], 20, jax.random.key(0), window=window)
    assert ended.lengths(2)[0] <= 16 + 2  # stops within a group of the prompt's end
    assert running.lengths(2)[0] > 16 + 4


def test_mixture_of_one_gaussian_is_the_gaussian_loss():
    rng = np.random.default_rng(0)
    targets = jnp.asarray(rng.standard_normal((2, 5, 2, 4)), jnp.float32)  # [B, T, r, M]
    mask = jnp.asarray(rng.random((2, 5, 2, 1)) > 0.3, jnp.float32)
    mean = jnp.asarray(rng.standard_normal((2, 5, 8)), jnp.float32)
    log_scale = jnp.asarray(0.3 * rng.standard_normal((2, 5, 8)), jnp.float32)
    sq = (mean.reshape(targets.shape) - targets) ** 2
    ls = log_scale.reshape(targets.shape)
    expected = jnp.sum((0.5 * sq * jnp.exp(-2 * ls) + ls + 0.5 * np.log(2 * np.pi)) * mask)
    one = {"mixture_logits": jnp.zeros((2, 5, 1)), "component_means": mean[:, :, None],
           "component_log_scales": log_scale[:, :, None]}
    np.testing.assert_allclose(train.mixture_nll_sum(one, targets, mask), expected, rtol=1e-5)
    two = {"mixture_logits": jnp.zeros((2, 5, 2)), "component_means": jnp.stack([mean, mean + 50.0], axis=2),
           "component_log_scales": jnp.stack([log_scale, log_scale], axis=2)}
    groups_with_data = jnp.sum(jnp.max(mask.reshape(2, 5, -1), axis=-1))  # a far second component halves the weight
    np.testing.assert_allclose(train.mixture_nll_sum(two, targets, mask), expected + np.log(2) * groups_with_data,
                               rtol=1e-5)


def test_mixture_head_trains(tmp_path):
    cfg = tiny_config(str(tmp_path), model={"head": "mixture", "mixture_components": 4},
                      train={"steps": 30, "eval_every": 30, "checkpoint_every": 30, "log_every": 10})
    result = train.train(cfg, random_walk_data())
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0] - 0.3 and np.isfinite(result.eval_metrics["mse"])


def test_input_noise_and_the_mean_mse_term():
    x = jnp.zeros((4, 300, 16))
    assert train.corrupt_inputs(x, jax.random.key(0), 0.0, jnp.arange(4)) is x
    noisy = np.asarray(train.corrupt_inputs(x, jax.random.key(0), 0.5, jnp.arange(4)))
    assert abs(noisy.std() - 0.5) < 0.01 and abs(noisy.mean()) < 0.01
    rng = np.random.default_rng(1)
    mel, mask = jnp.asarray(rng.standard_normal((2, 8, 4)), jnp.float32), jnp.ones((2, 8))
    outputs = {"mean": jnp.zeros((2, 3, 8)), "log_scale": jnp.zeros((2, 3, 8))}
    plain = train.loss_sums(outputs, mel, mask, 2, "mse")
    weighted = train.loss_sums(outputs, mel, mask, 2, "mse", mean_mse_weight=10.0)
    np.testing.assert_allclose(weighted["loss"], plain["loss"] + 10.0 * plain["mse"], rtol=1e-6)


def test_flux_term_is_the_predicted_change_from_the_previous_real_frame():
    """MELLE's spectrogram flux: |mean − frame t−1| over valid target frames, subtracted at
    `flux_weight` (with r = 2 the group's second frame is measured from the first's real value)."""
    mel = jnp.asarray([[[0.0, 1.0], [1.0, 3.0], [2.0, 2.0], [5.0, 0.0]]])  # [1, 4 frames, 2 bins]
    mask = jnp.ones((1, 4))
    outputs = {"mean": jnp.asarray([[[1.0, 1.0, 1.0, 1.0]]])}  # predicts frames 2 and 3 as [1, 1]
    flux = lambda out, m: float(train.loss_sums(out, mel, m, 2, "mse")["loss"]
                                - train.loss_sums(out, mel, m, 2, "mse", flux_weight=0.5)["loss"]) / 0.5
    # frame 2 from real frame 1 [1, 3]: |0| + |-2|; frame 3 from real frame 2 [2, 2]: |-1| + |-1|
    assert flux(outputs, mask) == 4.0
    assert flux({"mean": jnp.asarray([[[1.0, 3.0, 2.0, 2.0]]])}, mask) == 0.0  # holding every previous frame
    assert flux(outputs, mask.at[:, 3].set(0.0)) == 2.0  # padded frames do not count
    assert set(train.loss_sums(outputs, mel, mask, 2, "mse", flux_weight=0.5)) == {
        "loss", "mse", "baseline_mse", "count"}  # a loss term, not another sum to report


def test_input_drift_is_a_random_walk_in_level_per_example():
    x = jnp.zeros((64, 200, 6))
    assert train.drift_inputs(x, jax.random.key(0), 0.0, jnp.arange(64)) is x
    drifted = np.asarray(train.drift_inputs(x, jax.random.key(0), 0.05, jnp.arange(64)))
    np.testing.assert_array_equal(drifted[:, 0], 0.0)  # group 0 clean
    assert np.all(drifted == drifted[..., :1])  # one level offset for every value of a group
    steps = np.diff(drifted[..., 0], axis=1)
    assert abs(steps.std() - 0.05) < 0.003 and abs(steps.mean()) < 0.003
    assert abs(drifted[:, -1, 0].std() - 0.05 * np.sqrt(199)) < 0.2  # wanders like √n
    alone = np.asarray(train.drift_inputs(x[5:6], jax.random.key(0), 0.05, jnp.asarray([5])))
    np.testing.assert_array_equal(alone[0], drifted[5])  # keyed by global example id


def test_input_stripes_walk_each_mel_bin_apart_the_same_over_a_groups_frames():
    x = jnp.zeros((32, 150, 2 * 5))  # r = 2 frames of M = 5 bins per group
    assert train.stripe_inputs(x, jax.random.key(0), 0.0, jnp.arange(32), 5) is x
    striped = np.asarray(train.stripe_inputs(x, jax.random.key(0), 0.05, jnp.arange(32), 5))
    np.testing.assert_array_equal(striped[:, 0], 0.0)  # group 0 clean
    np.testing.assert_array_equal(striped[..., :5], striped[..., 5:])  # one offset per bin for both frames of a group
    steps = np.diff(striped[..., :5], axis=1)
    assert abs(steps.std() - 0.05) < 0.002 and abs(steps.mean()) < 0.002
    across_bins = np.corrcoef(steps.reshape(-1, 5).T)[np.triu_indices(5, 1)]
    assert np.all(np.abs(across_bins) < 0.05)  # every bin walks on its own (input_drift moves them together)
    assert abs(striped[:, -1, :5].std() - 0.05 * np.sqrt(149)) < 0.1  # wanders like √n
    alone = np.asarray(train.stripe_inputs(x[7:8], jax.random.key(0), 0.05, jnp.asarray([7]), 5))
    np.testing.assert_array_equal(alone[0], striped[7])  # keyed by global example id


def test_self_fed_inputs_replace_chosen_groups_by_the_previous_positions_draw():
    inputs = jnp.arange(2 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 3)
    draws = -inputs - 100.0
    chosen = jnp.asarray([[True, True, False, True], [False, False, True, False]])
    fed = np.asarray(train.self_fed_inputs(inputs, draws, chosen))
    np.testing.assert_array_equal(fed[0, 0], inputs[0, 0])  # group 0 is always the data's
    np.testing.assert_array_equal(fed[0, 1], draws[0, 0])  # the draw made at position 0 predicts group 1
    np.testing.assert_array_equal(fed[0, 2], inputs[0, 2])
    np.testing.assert_array_equal(fed[0, 3], draws[0, 2])
    np.testing.assert_array_equal(fed[1], np.concatenate([inputs[1, :2], draws[1, 1:2], inputs[1, 3:]]))


def test_scheduled_sampling_compounds_errors_over_its_passes():
    """A model that predicts 2 × its input: one pass feeds group i + 1 = 2·x_i, a second
    pass 2·(2·x_{i-1}) — the errors of two free-running steps, as decoding makes them."""
    inputs = jnp.tile(jnp.arange(1.0, 6.0)[None, :, None], (3, 1, 2))  # [3, 5, 2]
    apply = lambda fed: {"mean": 2.0 * fed}
    ids = jnp.arange(3)
    one = np.asarray(train.scheduled_sampling_inputs(apply, inputs, jax.random.key(0), 1.0, 1, 0.3, ids))
    two = np.asarray(train.scheduled_sampling_inputs(apply, inputs, jax.random.key(0), 1.0, 2, 0.3, ids))
    np.testing.assert_array_equal(one[0, :, 0], [1, 2, 4, 6, 8])
    np.testing.assert_array_equal(two[0, :, 0], [1, 2, 4, 8, 12])
    none = train.scheduled_sampling_inputs(apply, inputs, jax.random.key(0), 0.0, 2, 0.3, ids)
    np.testing.assert_array_equal(none, inputs)
    half = np.asarray(train.scheduled_sampling_inputs(apply, jnp.ones((64, 50, 1)), jax.random.key(1), 0.5, 1, 0.3,
                                                      jnp.arange(64)))
    assert 0.4 < np.mean(half[:, 1:] == 2.0) < 0.6  # each later group chosen with probability 0.5


def test_scheduled_sampling_draws_from_the_mixture_like_sampling():
    """Its draws are the sampler's: a component by weight, then its Gaussian at the temperature;
    row by row from the global example id (the same on any device count)."""
    means = jnp.stack([jnp.full((2, 6, 4), -3.0), jnp.full((2, 6, 4), 3.0)], axis=2)  # [B, T, K, W]
    outputs = {"mean": jnp.zeros((2, 6, 4)), "mixture_logits": jnp.log(jnp.asarray([0.5, 0.5]))[None, None].repeat(2, 0).repeat(6, 1),
               "component_means": means, "component_log_scales": jnp.full((2, 6, 2, 4), -10.0)}
    draws = np.asarray(train.own_draws(outputs, jax.random.key(0), 0.3, jnp.asarray([7, 9])))
    np.testing.assert_allclose(np.abs(draws), 3.0, atol=1e-3)  # a component's mean, never the mixture mean 0
    assert len(np.unique(np.sign(draws[..., 0]))) == 2
    alone = np.asarray(train.own_draws(jax.tree.map(lambda v: v[1:], outputs), jax.random.key(0), 0.3, jnp.asarray([9])))
    np.testing.assert_array_equal(alone[0], draws[1])


def test_resuming_may_change_compute_settings_but_not_shapes(tmp_path):
    data = random_walk_data()
    train.train(tiny_config(str(tmp_path), train={"steps": 2, "checkpoint_every": 2}), data)
    changed = tiny_config(str(tmp_path), model={"dtype": "bfloat16", "remat": True, "dropout": 0.1},
                          train={"steps": 4, "checkpoint_every": 2})
    assert train.train(changed, data).state.step == 4  # these were refused before
    wider = tiny_config(str(tmp_path), model={"d_model": 64}, train={"steps": 6, "checkpoint_every": 2})
    with pytest.raises(train.ConfigError, match="model.d_model"):
        train.train(wider, data)


def test_weight_decay_skips_norms_and_biases():
    cfg = tiny_config("unused", train={"weight_decay": 0.5, "learning_rate": 1e-2, "warmup_steps": 0})
    params = init_params(cfg.model, 16, jax.random.key(0))
    mask = train.decays(params)
    flat = {"/".join(str(getattr(k, "key", k)) for k in path): v
            for path, v in jax.tree_util.tree_flatten_with_path(mask)[0]}
    assert flat["block_0/mlp/up/kernel"] and not flat["block_0/mlp/up/bias"]
    assert not flat["block_0/norm_attn/scale"] and not flat["norm_out/scale"]
    tx = train.optimizer(cfg.train)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    assert float(jnp.max(jnp.abs(updates["norm_out"]["scale"]))) == 0.0  # no gradient, no decay
    assert float(jnp.max(jnp.abs(updates["block_0"]["mlp"]["up"]["kernel"]))) > 0.0


def test_resuming_on_other_data_says_so_and_keeps_the_checkpoints_statistics(tmp_path):
    """Fine-tuning a workdir on other data is legitimate: `run` logs one line naming the
    changed data.* fields and normalises with the checkpoint's statistics, or with the new
    data's own when `data.recompute_stats` asks; how data are read changes nothing."""
    from audiolm_jax import run
    from audiolm_jax.data import NormStats

    cfg = tiny_config(str(tmp_path))
    os.makedirs(cfg.workdir, exist_ok=True)
    stats = NormStats(np.full(16, -40.0, np.float32), np.full(16, 10.0, np.float32))
    stats.save(run.stats_path(cfg))
    assert run.data_change_notice(cfg, cfg) is None
    read_otherwise = tiny_config(str(tmp_path), data={"prefetch_batches": 0, "cache": "audio", "prepare_workers": 1})
    assert run.data_change_notice(read_otherwise, cfg) is None
    other = tiny_config(str(tmp_path), data={"synthetic_train_clips": 16})
    notice = run.data_change_notice(other, cfg)
    assert "data.synthetic_train_clips=16 (was 8)" in notice and "the checkpoint's statistics" in notice
    np.testing.assert_array_equal(run.workdir_stats(other).mean, stats.mean)
    own = tiny_config(str(tmp_path), data={"synthetic_train_clips": 16, "recompute_stats": True})
    assert "this data's own statistics" in run.data_change_notice(own, cfg)
    assert run.workdir_stats(own) is None  # computed afresh from the new data by `prepare`


def test_a_postnet_trains_beside_the_decoder_and_is_evaluated(tmp_path):
    train_mels, eval_mels = random_walk_mels(clips=64, frames=48)
    cfg = tiny_config(str(tmp_path), model={"postnet_layers": 2, "postnet_channels": 16},
                      train={"steps": 60, "eval_every": 60, "checkpoint_every": 60})
    result = train.train(cfg, mel_dataset(train_mels, eval_mels))
    post = [h["postnet_mse"] for h in result.history if "postnet_mse" in h]
    assert len(post) == len(result.history) and np.mean(post[-10:]) < 0.5 * np.mean(post[:3])
    ev = result.eval_metrics
    assert {"postnet_mse", "mse"} <= set(ev) and ev["loss"] == pytest.approx(ev["mse"] + ev["postnet_mse"], rel=1e-5)
    assert ev["postnet_mse"] < ev["mse"]  # it sees the decoder's outputs on both sides of each frame


def test_heard_prompts_are_nothing_or_the_go_frames_and_a_share_of_the_audio():
    """`model.feedback` false: about `share` of rows hear a prompt of their go positions and
    1 to `fraction` of their audio positions, the rest nothing; keyed by example id."""
    positions = jnp.concatenate([jnp.full(300, 40.0), jnp.full(300, 12.0)])  # valid positions per row
    mask = (jnp.arange(50)[None, :] < positions[:, None]).astype(jnp.float32)[:, :, None, None]
    mask = jnp.tile(mask, (1, 1, 2, 1))  # [B, T, r, 1]
    ids = jnp.arange(600)
    heard = np.asarray(train.heard_prompts(jax.random.key(0), ids, mask, 1, 0.5, 0.5))
    chosen = heard > 0
    assert 0.42 < chosen.mean() < 0.58
    assert heard[:300][chosen[:300]].min() >= 2 and heard[:300].max() <= 1 + 0.5 * 39 + 1
    assert heard[300:][chosen[300:]].max() <= 1 + 0.5 * 11 + 1
    assert len(np.unique(heard[:300][chosen[:300]])) > 10  # drawn, not fixed
    np.testing.assert_array_equal(train.heard_prompts(jax.random.key(0), ids[:10], mask[:10], 1, 0.5, 0.5),
                                  heard[:10])

