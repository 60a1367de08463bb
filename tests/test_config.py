import dataclasses
import json
import os
import subprocess
import sys

import pytest

from audiolm_jax.cli import apply_overrides
from audiolm_jax import config as C
from audiolm_jax.cli import parse
from experiments import demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_defaults_and_demo_validate():
    assert C.validate(C.ExperimentConfig()) == C.ExperimentConfig()
    cfg = demo.config()
    assert C.validate(cfg) is cfg


def test_override_sets_nested_fields_and_types():
    cfg = apply_overrides(demo.config(), ["--train.steps=200", "--model.num_layers", "2",
                                            "--workdir=runs/x", "--audio.fmax=none",
                                            "--model.head=gaussian", "--train.learning_rate=3e-4",
                                            "--model.remat=true"])
    assert cfg.train.steps == 200 and cfg.model.num_layers == 2 and cfg.workdir == "runs/x"
    assert cfg.audio.fmax is None and cfg.model.head == "gaussian" and cfg.model.remat is True
    assert cfg.train.learning_rate == pytest.approx(3e-4)
    assert isinstance(cfg.train.learning_rate, float)
    # the original is untouched (frozen dataclasses)
    assert demo.config().train.steps != 200


@pytest.mark.parametrize("args, field, fragment", [
    (["--audio.n_mels=0"], "audio.n_mels", "positive"),
    (["--train.stepz=3"], "train.stepz", "did you mean 'train.steps'"),
    (["--audio.hop_length=2048"], "audio.hop_length", "<= audio.n_fft"),
    (["--audio.n_mels=600"], "audio.n_mels", "n_fft // 2 + 1"),
    (["--audio.fmax=9000"], "audio.fmax", "sample_rate / 2"),
    (["--model.num_heads=5"], "model.d_model", "multiple of model.num_heads"),
    (["--model.head=mdn"], "model.head", "'mse', 'gaussian'"),
    (["--audio.center=false"], "audio.center", "centred frames"),
    (["--model.dtype=float16"], "model.dtype", "loss scaling"),
    (["--model.attention=cudnn"], "model.attention", "16 bits"),
    (["--model.attention=flash"], "model.attention", "'auto', 'xla'"),
    (["--train.num_processes=2", "--train.process_id=2"], "train.process_id", "< train.num_processes (2)"),
    (["--model.head=gaussian", "--train.loss=l1"], "train.loss", "negative log-likelihood"),
    (["--train.steps=ten"], "train.steps", "an integer"),
    (["--train.batch_size=-4"], "train.batch_size", "positive"),
    (["--sample.prompt_seconds=10"], "sample.prompt_seconds", "shorter than data.segment_seconds"),
    (["--data.segment_seconds=0"], "data.segment_seconds", "> 0"),
    (["--data.segment_seconds=0.02", "--sample.prompt_seconds=0.01"], "data.segment_seconds", "at least 3 mel frames"),
    (["--model.dropout=1.5"], "model.dropout", "[0, 1)"),
    (["--model.feedback=false"], "model.predict_residual", "no fed-back frame"),
    (["--train.heard_fraction=0"], "train.heard_fraction", "(0, 1]"),
    (["--model.postnet_layers=5", "--model.head=gaussian"], "model.postnet_layers", "the mse head's frames"),
    (["--model.head=mse", "--model.postnet_layers=5", "--model.postnet_kernel=4"], "model.postnet_kernel", "odd"),
    (["--model.postnet_layers=-1"], "model.postnet_layers", ">= 0"),
    (["--sample.component_temperature=0"], "sample.component_temperature", "> 0"),
    (["--sample.guidance_null=prompt"], "sample.guidance_null", "model.feedback is false"),
    (["--sample.guidance_null=voice"], "sample.guidance_null", "'conditions', 'prompt'"),
    (["--train"], "train", "a value"),
    (["--model=3"], "model", "leaf field"),
])
def test_bad_values_name_the_field(args, field, fragment):
    with pytest.raises(C.ConfigError) as err:
        apply_overrides(demo.config(), args)
    assert err.value.field == field
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_json_round_trip_is_exact(tmp_path):
    cfg = apply_overrides(demo.config(), ["--audio.fmax=7600.5", "--data.dir=/data/x", "--train.seed=7"])
    path = tmp_path / "config.json"
    C.save_json(cfg, str(path))
    assert C.load_json(str(path)) == cfg
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp file left


def test_a_config_saved_before_a_field_was_retired_still_loads(tmp_path):
    # checkpoints of earlier versions carry audio.n_mfcc (MFCC was removed: nothing used it)
    data = C.to_dict(demo.config())
    data["audio"]["n_mfcc"] = 20
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    assert C.load_json(str(path)) == demo.config()
    data["audio"]["n_mfccs"] = 20  # an unknown field is still an error
    path.write_text(json.dumps(data))
    with pytest.raises(C.ConfigError, match="audio.n_mfccs"):
        C.load_json(str(path))


def test_a_config_saved_with_eval_batches_loads_as_the_examples_it_evaluated(tmp_path):
    # before 2026-12-06 the evaluation set was train.eval_batches batches of train.batch_size
    data = C.to_dict(demo.config())
    del data["train"]["eval_examples"]
    data["train"]["eval_batches"] = 16
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    loaded = C.load_json(str(path))
    assert loaded.train.eval_examples == 16 * demo.config().train.batch_size == 64
    assert loaded == demo.config()


def test_hand_edited_json_with_wrong_type_names_field_and_file(tmp_path):
    path = tmp_path / "config.json"
    data = C.to_dict(demo.config())
    data["train"]["steps"] = "100"
    path.write_text(json.dumps(data))
    with pytest.raises(C.ConfigError, match=r"train\.steps.*an integer.*config\.json"):
        C.load_json(str(path))
    data["train"]["steps"] = True  # bool is not an int here
    path.write_text(json.dumps(data))
    with pytest.raises(C.ConfigError, match="train.steps"):
        C.load_json(str(path))


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        demo.config().train.steps = 3  # type: ignore[misc]


def test_parse_exits_2_on_bad_field(capsys):
    with pytest.raises(SystemExit) as code:
        parse(demo.config, ["--audio.n_mels=0"])
    assert code.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "audio.n_mels" in err[0]


@pytest.mark.parametrize("arg, field", [("--audio.n_mels=0", "audio.n_mels"), ("--train.stepz=3", "train.stepz")])
def test_demo_command_line_exits_2_with_one_line(arg, field):
    proc = subprocess.run([sys.executable, "-m", "experiments.demo", arg], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert field in lines[0] and "Traceback" not in proc.stderr
