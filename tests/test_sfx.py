"""Sound from a label, end to end at toy size: the embedded labelled sound set as a tfds
dataset, batches carrying each example's label and caption, a label-conditioned run that
saves its label set, `python -m audiolm_jax.generate`, and the label metrics of evaluate."""

import dataclasses
import json
import os

import jax
import numpy as np
import pytest
import soundfile as sf

from audiolm_jax import config as C, data as data_lib, evaluate, generate, sample
from audiolm_jax.classifier import frechet_distance, mean_pairwise_distance, train_classifier
from audiolm_jax.conditioning import ConditionError, decode_ids
from audiolm_jax.data import sounds
from audiolm_jax.run import run
from tests.helpers import tiny_config


def sounds_config(workdir, **condition):
    cfg = tiny_config(workdir, data={"source": "sounds", "synthetic_train_clips": 20, "synthetic_eval_clips": 10,
                                     "synthetic_clip_seconds": 1.0, "segment_seconds": 1.0, "go_frames": 2},
                      train={"steps": 4, "checkpoint_every": 4, "eval_every": 4},
                      sample={"prompt_seconds": 0.25, "seconds": 0.5, "num_prompts": 2, "num_samples": 2})
    return C.validate(dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, condition=C.ConditionConfig(label=True, max_labels=12, **condition)),
        sample=dataclasses.replace(cfg.sample, guidance=3.0)))


def test_every_sound_class_is_distinct_and_deterministic():
    waves = {label: sounds.synthesize_sound(label, 0, 3, 1.0, 16000) for label in sounds.CLASSES}
    for label, (wave, caption) in waves.items():
        assert wave.shape == (16000,) and np.isfinite(wave).all() and 0.25 < np.abs(wave).max() <= 0.9
        again, same_caption = sounds.synthesize_sound(label, 0, 3, 1.0, 16000)
        np.testing.assert_array_equal(wave, again)
        assert caption == same_caption and caption
    other, _ = sounds.synthesize_sound("rain", 0, 4, 1.0, 16000)
    assert not np.allclose(other, waves["rain"][0])


def test_batches_carry_each_examples_label_and_caption(tmp_path):
    cfg = sounds_config(str(tmp_path / "run"), text=True, max_text_chars=40)
    dataset = data_lib.prepare(cfg)
    assert dataset.label_names == sounds.CLASSES
    batch = dataset.train_batch(0, 0, 8, 32)
    assert batch["mel"].shape == (8, 32, 16) and batch["label"].shape == (8,) and batch["text"].shape == (8, 40)
    np.testing.assert_array_equal(batch["mel"][:, :2], 0.0)  # the go frames
    from audiolm_jax.data.pipeline import batch_examples
    indices, _ = batch_examples(0, 0, 8, len(dataset.train))
    for row, index in enumerate(indices):
        example = dataset.train[int(index)]
        assert batch["label"][row] == example["label"]
        assert decode_ids(batch["text"][row]) == example["caption"].decode()
    # the evaluation's classifier clips: each example's start, as long as asked (at most all of it)
    waves, labels = dataset.labelled_clips("eval", 3, seconds=5.0)
    assert [len(w) for w in waves] == [cfg.audio.sample_rate] * 3 and labels.shape == (3,)
    short, same = dataset.labelled_clips("eval", 3, seconds=0.5)
    assert [len(w) for w in short] == [cfg.audio.sample_rate // 2] * 3
    np.testing.assert_array_equal(same, labels)
    np.testing.assert_array_equal(short[0], waves[0][: cfg.audio.sample_rate // 2])


@pytest.mark.slow
def test_label_conditioned_run_generates_and_is_evaluated(tmp_path, capsys):
    cfg = sounds_config(str(tmp_path / "run"))
    run(cfg)
    assert json.load(open(tmp_path / "run" / "labels.json"))["labels"] == list(sounds.CLASSES)

    out = tmp_path / "gen"
    code = generate.main(["--workdir", cfg.workdir, "--label", "siren", "--seconds", "0.5", "--num-samples", "3",
                          "--guidance", "2", "--sample.griffin_lim_iters=2", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    waves = sorted(f for f in os.listdir(out) if "_sample" in f and f.endswith(".wav"))
    assert waves == ["siren_sample0.wav", "siren_sample1.wav", "siren_sample2.wav"]
    data, rate = sf.read(out / waves[0])
    assert rate == 8000 and len(data) == 4000
    assert "guidance 2" in (out / "index.html").read_text()

    assert generate.main(["--workdir", cfg.workdir, "--label", "sirens", "--out", str(tmp_path / "x")]) == 2
    assert "knows rain, wind" in capsys.readouterr().err

    metrics = evaluate.evaluate_checkpoint(cfg.workdir, num_prompts=1, dnsmos="off")
    for key in ("classifier_real_accuracy", "classifier_resynth_accuracy", "label_by_likelihood", "label_accuracy",
                "label_accuracy_g0", "label_accuracy_g5"):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
    assert metrics["diversity_ratio"] > 0  # sampled variations of one label differ from each other
    for name in sounds.CLASSES:  # each label's clips are taken for a known label; for itself when most are right
        assert metrics[f"label_taken_for[{name}]"] in sounds.CLASSES
        if metrics[f"label_accuracy[{name}]"] > 0.5:
            assert metrics[f"label_taken_for[{name}]"] == name
    assert metrics["frechet_distance"] >= 0
    # the judged clips: generated ones as long as sample.seconds, like the real ones the classifier saw
    waves, ids = evaluate.generated_by_label(sample.restore_sampler(cfg.workdir), 2.0, 1, jax.random.PRNGKey(0))
    assert {len(w) for w in waves} == {int(round(cfg.sample.seconds * cfg.audio.sample_rate))}
    np.testing.assert_array_equal(ids, np.arange(len(sounds.CLASSES)))


def test_generate_refuses_an_unconditioned_run(tmp_path, capsys):
    from audiolm_jax import train
    from tests.helpers import random_walk_data

    cfg = tiny_config(str(tmp_path), train={"steps": 2, "checkpoint_every": 2})
    train.train(cfg, random_walk_data())
    assert generate.main(["--workdir", str(tmp_path), "--label", "rain", "--out", str(tmp_path / "o")]) == 2
    assert "not a conditioned run" in capsys.readouterr().err


def test_classifier_and_distances_on_known_data():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 10)) * 3
    labels = np.repeat(np.arange(3), 40)
    features = centres[labels] + rng.standard_normal((120, 10))
    import jax

    clf = train_classifier(features, labels, 3, jax.random.PRNGKey(0), steps=200)
    test_labels = np.repeat(np.arange(3), 10)
    assert np.mean(clf.predict(centres[test_labels] + rng.standard_normal((30, 10))) == test_labels) > 0.9
    a = rng.standard_normal((200, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 2.0) == pytest.approx(16.0, rel=1e-3)  # |Δμ|² = 4 × 2²
    assert mean_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)


def test_likeliest_label_is_the_one_whose_predictions_fit_the_clip(tmp_path):
    """`evaluate.likeliest_labels`: each clip goes through the model once per label (after the
    go frames) and takes the label of the smallest summed loss. A forward whose prediction is
    its label's id everywhere makes a clip of constant value v likeliest under label v."""
    import jax.numpy as jnp

    cfg = sounds_config(str(tmp_path / "run"))
    r, n_mels = cfg.model.frames_per_step, cfg.audio.n_mels
    seen = []

    def forward(params, groups, conditions, mel=None):  # `train.make_forward`'s call: mel to align by durations
        seen.append((groups.shape, np.asarray(conditions["label"])))
        value = jnp.asarray(conditions["label"], jnp.float32)[:, None, None]
        return {"mean": jnp.broadcast_to(value, groups.shape)}

    clips = [np.full((40, n_mels), v, np.float32) for v in (3.0, 0.0, 7.0)] + [np.full((9, n_mels), 5.0, np.float32)]
    likeliest = evaluate.likeliest_labels(forward, None, cfg, clips, num_labels=10)
    np.testing.assert_array_equal(likeliest, [3, 0, 7, 5])
    crop = C.segment_frames(cfg.data.segment_seconds, cfg.audio, r)
    # every label in one batch; inputs: the go frames and the crop (whole groups) less its last group
    assert seen[0][0] == (10, (cfg.data.go_frames + min(40, crop)) // r - 1, r * n_mels)
    assert seen[3][0] == (10, (cfg.data.go_frames + 8) // r - 1, r * n_mels)
    np.testing.assert_array_equal(seen[0][1], np.arange(10))
    # a model that needs its caption beside the label has no label-alone likelihood: refused by name
    with pytest.raises(ConditionError, match="give a text"):
        evaluate.likeliest_labels(forward, None, sounds_config(str(tmp_path / "t"), text=True), clips, 10)
