"""Every shipped experiment starts on a tiny generated copy of its own dataset, in the official
layout, at its own audio, data and sample settings: preparation (`python -m audiolm_jax.data`),
two train steps, a checkpoint, evaluation and one short continuation. Only the model's
width and depth, the step count and the batch are shrunk.

The experiments are found by listing the `experiments` package, so one added later is
covered without editing this file.
"""

import dataclasses
import importlib
import json
import os
import pkgutil

import pytest

import experiments
from audiolm_jax import config as C, evaluate
from audiolm_jax.data import __main__ as data_main
from audiolm_jax.run import run
from tests.layouts import write_librispeech, write_maestro

EXPERIMENTS = sorted(m.name for m in pkgutil.iter_modules(experiments.__path__))


def write_dataset(source: str, config: C.ExperimentConfig, root) -> str | None:
    """A tiny copy of `source` in its official layout below `root`; its `data.dir` (None for
    the generated synthetic set). Clips are a little longer than the experiment's crops."""
    seconds = config.data.segment_seconds + 0.5
    if source == "librispeech":
        folders = [C.LIBRISPEECH_SPLITS[s] for s in (config.data.train_split, config.data.eval_split)]
        return str(write_librispeech(root, splits=tuple(folders), seconds=seconds) / "LibriSpeech")
    if source == "maestro":
        return str(write_maestro(root, seconds=seconds) / "maestro-v3.0.0")
    if source == "synthetic":
        return None
    raise AssertionError(f"no generated layout for data.source={source!r}: add one to this test")


def shrunk(config: C.ExperimentConfig, workdir: str, data_dir: str | None) -> C.ExperimentConfig:
    """`config` with a tiny model, two steps, a small batch, and the generated data."""
    model = dataclasses.replace(config.model, num_layers=1, d_model=32, num_heads=2, prenet_dim=32)
    train = dataclasses.replace(config.train, steps=2, batch_size=2, eval_every=2, eval_batches=1,
                                checkpoint_every=2, log_every=1, warmup_steps=1)
    data = config.data
    if data_dir is not None:
        data = dataclasses.replace(data, dir=data_dir, download=False)
    else:
        data = dataclasses.replace(data, synthetic_train_clips=4, synthetic_eval_clips=2)
    data = dataclasses.replace(data, tfds_dir=os.path.join(workdir, "tfds"))
    sample = dataclasses.replace(config.sample, num_prompts=1, num_samples=1)
    return C.validate(dataclasses.replace(config, workdir=workdir, model=model, train=train, data=data,
                                          sample=sample))


def overrides(config: C.ExperimentConfig, base: C.ExperimentConfig) -> list[str]:
    """The dotted command-line overrides that turn `base` into `config`."""
    args, ours, theirs = [], C.to_dict(config), C.to_dict(base)
    for section, fields in ours.items():
        if not isinstance(fields, dict):
            if fields != theirs[section]:
                args.append(f"--{section}={fields}")
            continue
        for name, value in fields.items():
            if value != theirs[section][name]:
                args.append(f"--{section}.{name}={'none' if value is None else value}")
    return args


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_starts_on_its_own_dataset(name, tmp_path, capsys):
    module = importlib.import_module(f"experiments.{name}")
    base = module.config()
    data_dir = write_dataset(base.data.source, base, tmp_path / "copy")
    config = shrunk(base, str(tmp_path / "run"), data_dir)
    assert (config.audio, config.data.segment_seconds, config.sample.seconds, config.sample.prompt_seconds) == (
        base.audio, base.data.segment_seconds, base.sample.seconds, base.sample.prompt_seconds)

    # Preparation alone, as a user would run it before training, with the same overrides.
    data_main.main([f"experiments.{name}", *overrides(config, base)])
    printed = capsys.readouterr().out
    assert f"prepared: {config.data.tfds_dir}" in printed
    assert f"{config.data.train_split}: " in printed and f"{config.data.eval_split}: " in printed

    metrics = run(config)  # finds the dataset prepared, trains, evaluates, samples
    assert metrics["steps"] == 2 and metrics["val_mse"] > 0
    assert sorted(os.listdir(os.path.join(config.workdir, "checkpoints"))) == ["2"]
    wavs = [f for f in os.listdir(os.path.join(config.workdir, "samples")) if f.endswith("_sample0.wav")]
    assert len(wavs) == 1

    result = evaluate.evaluate_checkpoint(config.workdir, num_prompts=1, dnsmos="off")
    assert result["step"] == 2 and result["num_prompts"] == 1
    assert json.loads(open(os.path.join(config.workdir, "metrics.json")).read())["steps"] == 2
