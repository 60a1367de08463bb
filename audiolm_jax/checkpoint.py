"""Orbax checkpoints: a self-describing directory per step under `<workdir>/checkpoints`.

Each step holds three items: `state` (the TrainState pytree: step, params, optimizer state,
EMA params, PRNG key), `config` (the ExperimentConfig as JSON) and `norm_stats` (the
per-bin mean/std the model was trained on). Sampling needs nothing but this directory.
Orbax writes each step into a temporary directory and renames it when complete, so a run
killed mid-save never leaves a checkpoint that `latest_step` would pick up.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp
from flax import traverse_util

from audiolm_jax import config as config_lib
from audiolm_jax.model import init_params
from audiolm_jax.stats import NormStats

log = logging.getLogger(__name__)

ITEMS = ("state", "config", "norm_stats")
# Parameters added after checkpoints without them were written, each with the value that
# makes the model behave as it did before it: sampling and resumed training restore such a
# checkpoint with it (and, resuming, with zero optimizer moments for it, as at step 0).
LATER_PARAMS = {("text_prior", "log_duration_offset"): 0.0}  # text-alone durations: the medians


def checkpoint_dir(workdir: str) -> str:
    """`<workdir>/checkpoints`, absolute (Orbax requires absolute paths)."""
    return os.path.join(os.path.abspath(workdir), "checkpoints")


def manager(workdir: str, keep: int = 3, save_every: int = 1, read_only: bool = False
            ) -> ocp.CheckpointManager:
    """An Orbax CheckpointManager with async saves keeping the last `keep` steps.

    A `read_only` manager (restoring params to sample or evaluate) belongs to this process
    alone: in a multi-process run only process 0 samples, and Orbax's barriers must not
    wait for the others."""
    extra = {}
    if read_only and jax.process_count() > 1:
        alone = jax.process_index()
        extra["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
            primary_host=alone, active_processes={alone}, barrier_sync_key_prefix=f"reader{alone}")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, save_interval_steps=save_every, enable_async_checkpointing=True,
        create=not read_only, read_only=read_only, **extra)
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_names=ITEMS)


def save(mngr: ocp.CheckpointManager, step: int, state: Any, config: config_lib.ExperimentConfig,
         stats: NormStats, force: bool = False) -> bool:
    """Starts an async save of step `step`; returns whether a save was started."""
    return mngr.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        config=ocp.args.JsonSave(config_lib.to_dict(config)),
        norm_stats=ocp.args.JsonSave(stats.to_dict())), force=force)


def restore_state(mngr: ocp.CheckpointManager, step: int, abstract_state: Any) -> Any:
    """The TrainState of `step`, laid out as `abstract_state` (shapes, dtypes, shardings);
    a checkpoint written before one of the `LATER_PARAMS` resumes with it filled
    (`state_with_later_params`)."""
    stored = stored_tree(mngr, step)
    later = later_leaves(abstract_state, stored)
    if later:
        return state_with_later_params(mngr, step, abstract_state, stored, later)
    restored = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))
    return restored["state"]


def leaf_names(path: tuple) -> tuple[str, ...]:
    """A pytree key path as plain names, the same for a TrainState's attributes and the
    dicts and lists orbax stores them as: `opt_state[1][0].mu['text_prior']` ->
    ('opt_state', '1', '0', 'mu', 'text_prior')."""
    return tuple(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)


def later_leaves(abstract_state: Any, stored: dict) -> dict[tuple[str, ...], float]:
    """The leaves of `abstract_state` (a TrainState, or `{"params" or "ema_params": params}`;
    by `leaf_names`) that `stored` (the checkpoint's tree of the same) lacks and that are
    `LATER_PARAMS` (in params, EMA params or optimizer moments),
    each with its fill: the parameter's value in params, 0 in the optimizer state."""
    kept = {leaf_names(p) for p, _ in jax.tree_util.tree_flatten_with_path(stored)[0]}
    later = {}
    for names in (leaf_names(p) for p, _ in jax.tree_util.tree_flatten_with_path(abstract_state)[0]):
        for param, value in LATER_PARAMS.items():
            if names not in kept and names[-len(param):] == param:
                later[names] = value if names[0] in ("params", "ema_params") else 0.0
    return later


def state_with_later_params(mngr: ocp.CheckpointManager, step: int, abstract_state: Any, stored: dict,
                            later: dict[tuple[str, ...], float]) -> Any:
    """The TrainState of `step` as `restore_state` gives it, from a checkpoint that lacks the
    `later` leaves: every stored leaf read in the stored layout, each later leaf filled."""
    sharding = jax.tree.leaves(abstract_state)[0].sharding  # one for all: train's state is replicated
    item = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding), stored)
    restored = mngr.restore(step, args=ocp.args.Composite(  # Standard, as `mngr` saves it later
        state=ocp.args.StandardRestore(item)))["state"]
    by_name = {leaf_names(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(restored)[0]}
    for param, value in LATER_PARAMS.items():
        if any(names[-len(param):] == param for names in later):
            log.warning("checkpoint step %d predates parameter %s: resumed with %s and zero optimizer moments",
                        step, "/".join(param), value)
    paths, treedef = jax.tree_util.tree_flatten_with_path(abstract_state)
    named = [(leaf_names(path), shape) for path, shape in paths]
    missing = [names for names, _ in named if names not in by_name and names not in later]
    if missing:
        raise ValueError(f"checkpoint step {step} in {mngr.directory} lacks {'/'.join(missing[0])} "
                         f"({len(missing)} leaves): it was written by another model configuration")
    leaves = [jax.device_put(jax.numpy.full(shape.shape, later[names], shape.dtype), shape.sharding)
              if names in later else by_name[names] for names, shape in named]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def restore_params(mngr: ocp.CheckpointManager, step: int, config: config_lib.ExperimentConfig,
                   use_ema: bool) -> Any:
    """Only the EMA (or raw) params of `step`, onto the default device: what sampling needs,
    without the optimizer state and without building a TrainState (no `train` import)."""
    key = "ema_params" if use_ema else "params"
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    shapes = {key: jax.eval_shape(lambda: init_params(config.model, config.audio.n_mels, jax.random.key(0)))}
    later = later_leaves(shapes, {key: stored_tree(mngr, step)[key]})
    kept = {path: x for path, x in traverse_util.flatten_dict(shapes).items() if path not in later}
    item = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                        traverse_util.unflatten_dict(kept))
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item), partial_restore=True)))
    if not later:
        return restored["state"][key]
    flat = traverse_util.flatten_dict(restored["state"])
    for path, value in later.items():
        log.warning("checkpoint step %d predates parameter %s: restored with %s (the model as trained)",
                    step, "/".join(path[1:]), value)
        flat[path] = jax.device_put(jax.numpy.float32(value), device)
    return traverse_util.unflatten_dict(flat)[key]


def stored_tree(mngr: ocp.CheckpointManager, step: int) -> dict:
    """The `state` tree that `step` holds, as metadata (names, shapes, dtypes; nothing read)."""
    path = mngr.directory / str(step) / "state"  # an etils epath.Path, as orbax takes it
    return ocp.PyTreeCheckpointHandler().metadata(path).tree


def restore_metadata(mngr: ocp.CheckpointManager, step: int
                     ) -> tuple[config_lib.ExperimentConfig, NormStats]:
    """The config and normalisation statistics stored with `step`."""
    restored = mngr.restore(step, args=ocp.args.Composite(
        config=ocp.args.JsonRestore(), norm_stats=ocp.args.JsonRestore()))
    where = os.path.join(str(mngr.directory), str(step))
    try:
        cfg = config_lib.from_dict(restored["config"])
    except config_lib.ConfigError as e:
        raise config_lib.ConfigError(e.field, e.value, f"{e.expected} (in checkpoint '{where}')") from None
    return cfg, NormStats.from_dict(restored["norm_stats"], f"checkpoint '{where}' norm_stats")


def latest_step(workdir: str) -> Optional[int]:
    """The newest complete checkpoint step in `workdir`, or None if there is none."""
    if not os.path.isdir(checkpoint_dir(workdir)):
        return None
    mngr = manager(workdir, read_only=True)
    try:
        return mngr.latest_step()
    finally:
        mngr.close()


def replicated(tree: Any, mesh: jax.sharding.Mesh) -> Any:
    """`tree` of ShapeDtypeStructs with a fully replicated sharding on `mesh`."""
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
