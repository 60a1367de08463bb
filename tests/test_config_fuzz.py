"""Random command-line overrides either fail validation with a ConfigError naming a field,
or give a config whose model initialises and trains one step."""

import jax
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from audiolm_jax.cli import apply_overrides
from audiolm_jax import config as C, train
from audiolm_jax.model import MelTransformer
from tests.helpers import tiny_config

FIELDS = {
    "audio.n_mels": st.integers(-2, 140),
    "audio.hop_length": st.integers(-1, 300),
    "audio.n_fft": st.sampled_from([0, 128, 256, 255]),
    "audio.fmax": st.one_of(st.none(), st.floats(-10, 6000, allow_nan=False)),
    "model.num_layers": st.integers(-1, 3),
    "model.d_model": st.sampled_from([0, 8, 12, 16, 24, 33]),
    "model.num_heads": st.integers(0, 5),
    "model.frames_per_step": st.integers(0, 4),
    "model.head": st.sampled_from(["mse", "gaussian", "mdn"]),
    "model.dtype": st.sampled_from(["float32", "bfloat16", "int8"]),
    "model.max_frames": st.integers(0, 80),
    "train.batch_size": st.integers(-1, 4),
    "train.learning_rate": st.floats(-1e-3, 1e-2, allow_nan=False),
    "data.segment_seconds": st.floats(-0.1, 0.6, allow_nan=False),
    "sample.prompt_seconds": st.floats(0.0, 0.6, allow_nan=False),
    "data.chunk_seconds": st.integers(-1, 3),
    "data.download": st.booleans(),
    "data.prefetch_batches": st.integers(-1, 70),
    "data.augment_gain_db": st.floats(-1.0, 30.0, allow_nan=False),
    "data.augment_snr_db": st.one_of(st.none(), st.floats(-20.0, 120.0, allow_nan=False)),
    "data.augment_pitch_semitones": st.floats(-1.0, 15.0, allow_nan=False),
}


def text(value):
    return "none" if value is None else str(value).lower()


def check_overrides(workdir: str, overrides: dict) -> str:
    """'rejected' (a clean ConfigError) or 'ran' (initialised and trained one step)."""
    base = tiny_config(workdir)
    argv = [f"--{k}={text(v)}" for k, v in overrides.items()]
    try:
        cfg = apply_overrides(base, argv)
    except C.ConfigError as e:
        assert e.field.split(".")[0] in ("audio", "model", "data", "train", "sample", "workdir")
        assert "\n" not in str(e)
        return "rejected"
    mesh = train.make_mesh(jax.devices()[:1])
    tx = train.optimizer(cfg.train)
    state = train.init_state(cfg, tx)
    step = train.make_train_step(MelTransformer(cfg.model, cfg.audio.n_mels), tx, cfg, mesh)
    frames = 2 * cfg.model.frames_per_step
    batch = {"mel": np.zeros((cfg.train.batch_size, frames, cfg.audio.n_mels), np.float32),
             "mask": np.ones((cfg.train.batch_size, frames), np.float32)}
    state, metrics = step(state, train.shard_batch(batch, mesh))
    assert int(state.step) == 1 and np.isfinite(float(metrics["loss"]))
    return "ran"


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(FIELDS)), st.just(None), min_size=1, max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({k: FIELDS[k] for k in keys})))
def test_random_overrides_are_rejected_or_run(tmp_path_factory, overrides):
    assert check_overrides(str(tmp_path_factory.mktemp("fuzz")), overrides) in ("rejected", "ran")


def test_both_outcomes_are_reachable(tmp_path):
    assert check_overrides(str(tmp_path), {"model.head": "gaussian", "model.dtype": "bfloat16",
                                           "model.frames_per_step": 1}) == "ran"
    assert check_overrides(str(tmp_path), {"model.d_model": 33}) == "rejected"
