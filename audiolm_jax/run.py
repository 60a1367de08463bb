"""The end-to-end entry point: train → evaluate → restore → continue prompts → report.

`run(config)` is what `python -m experiments.<name>` calls. Everything lands in
`config.workdir`: `config.json`, `norm_stats.json`, `checkpoints/`, `tensorboard/`,
`metrics.json` and `samples/` (wavs, PNGs, `index.html`).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Optional

import jax

from audiolm_jax import atomic, cli, conditioning, config as config_lib, continuation, data as data_lib, sample, train
from audiolm_jax.config import ExperimentConfig

log = logging.getLogger(__name__)


def write_samples(config: ExperimentConfig, prompts: list[continuation.Prompt], out_dir: str) -> str:
    """Restores the latest checkpoint of `config.workdir`, continues `prompts`, writes the report."""
    return sample.write_report(sample.restore_sampler(config.workdir), prompts, out_dir, progress="sample+invert")


def stats_path(config: ExperimentConfig) -> str:
    """Where a run keeps its normalisation statistics: `<workdir>/norm_stats.json`."""
    return os.path.join(config.workdir, "norm_stats.json")


def workdir_stats(config: ExperimentConfig) -> "data_lib.NormStats | None":
    """The normalisation statistics an earlier run of this workdir computed, if any (computed
    once: a resumed run normalises exactly as before, also on other data, unless
    `data.recompute_stats`). ConfigError when they do not fit."""
    path = stats_path(config)
    if not os.path.exists(path) or config.data.recompute_stats:
        return None
    try:
        stats = data_lib.NormStats.load(path)
    except (ValueError, OSError) as e:
        raise config_lib.ConfigError("workdir", config.workdir, f"a readable norm_stats.json ({e})") from None
    if len(stats.mean) != config.audio.n_mels:
        raise config_lib.ConfigError("audio.n_mels", config.audio.n_mels,
                                     f"{len(stats.mean)}, as in '{path}' (or use a new workdir)")
    return stats


# data.* fields that say how a dataset is read, prepared or normalised, not which audio it holds.
DATA_HOW_FIELDS = ("tfds_dir", "prefetch_batches", "cache", "prepare_workers", "beam_options", "download",
                   "recompute_stats")


def data_change_notice(config: ExperimentConfig, saved: ExperimentConfig) -> Optional[str]:
    """One line when a run resumes a workdir on other data than the run that started it
    (fine-tuning is legitimate): the changed `data.*` fields, and whose normalisation
    statistics it uses; None when the data are the same."""
    ours, theirs = config_lib.to_dict(config)["data"], config_lib.to_dict(saved)["data"]
    changed = [f"data.{k}={ours[k]!r} (was {theirs.get(k)!r})" for k in ours
               if k not in DATA_HOW_FIELDS and ours[k] != theirs.get(k)]
    if not changed:
        return None
    stats = ("this data's own statistics (data.recompute_stats)" if config.data.recompute_stats else
             "the checkpoint's statistics (data.recompute_stats=true computes this data's)")
    return f"resuming {config.workdir} on other data than it was trained on: {', '.join(changed)}; normalising with {stats}"


def save_label_set(config: ExperimentConfig, names: tuple[str, ...]) -> None:
    """Writes the dataset's label names as the run's label set (`<workdir>/labels.json`);
    a workdir that already holds a different set is a ConfigError (ids would change meaning)."""
    labels = conditioning.LabelSet(names)
    conditioning.check_label_set(labels, config.model.condition)
    if os.path.exists(os.path.join(config.workdir, conditioning.LABELS_FILE)):
        known = conditioning.LabelSet.load(config.workdir)
        if known.names != labels.names:
            raise config_lib.ConfigError("data.source", config.data.source,
                                         f"a dataset with this workdir's labels {known.names} (or a new workdir)")
        return
    labels.save(config.workdir)


def distributed_arguments(config: config_lib.TrainConfig, environ: dict[str, str]) -> dict[str, Any]:
    """`jax.distributed.initialize`'s arguments: each from `train.*` when set, else from the
    environment (`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`), else None,
    which JAX fills from the cluster it detects (Cloud TPU, SLURM, Open MPI)."""
    def number(field: int, unset: int, variable: str) -> Optional[int]:
        if field != unset:
            return field
        text = environ.get(variable, "")
        try:
            return int(text) if text else None
        except ValueError:
            raise config_lib.ConfigError(variable, text, "an integer (environment variable)") from None

    return {"coordinator_address": config.coordinator_address or environ.get("JAX_COORDINATOR_ADDRESS") or None,
            "num_processes": number(config.num_processes, 0, "JAX_NUM_PROCESSES"),
            "process_id": number(config.process_id, -1, "JAX_PROCESS_ID")}


def run(config: ExperimentConfig) -> dict[str, float]:
    """Trains `config`, evaluates it, samples continuations; returns the metrics it wrote."""
    from tensorboardX import SummaryWriter  # local: only the full run writes TensorBoard

    config = config_lib.validate(config)
    cli.configure_logging()
    if config.train.distributed:
        jax.distributed.initialize(**distributed_arguments(config.train, dict(os.environ)))
    workdir = config.workdir
    os.makedirs(workdir, exist_ok=True)
    config_path = os.path.join(workdir, "config.json")
    notice = data_change_notice(config, config_lib.load_json(config_path)) if os.path.exists(config_path) else None
    if notice:
        log.warning(notice)
    if jax.process_index() == 0:
        config_lib.save_json(config, config_path)
    started = time.perf_counter()
    log.info("preparing %s data", config.data.source)
    data = data_lib.prepare(config, stats=workdir_stats(config))
    if jax.process_index() == 0:
        data.stats.save(stats_path(config))
        if config.model.condition.label:
            save_label_set(config, data.label_names)
    writer = SummaryWriter(os.path.join(workdir, "tensorboard")) if jax.process_index() == 0 else None
    try:
        result = train.train(config, data, writer)
    finally:
        if writer is not None:
            writer.close()
    metrics = {**train.reported_eval_metrics(result.eval_metrics), "steps": config.train.steps,
               "train_seconds": time.perf_counter() - started}
    if jax.process_index() == 0:
        atomic.write_json(os.path.join(workdir, "metrics.json"), metrics)
        print(f"val_mse={metrics['val_mse']:.4f} baseline_mse={metrics['baseline_mse']:.4f} "
              f"baseline_ratio={metrics['baseline_ratio']:.3f} (copy-last-frame baseline; < 1 beats it)")
        clips = data.eval_waveforms(config.sample.num_prompts, config.sample.prompt_seconds + config.sample.seconds)
        held_out = continuation.held_out_prompts(config, clips, config.sample.num_prompts,
                                                 data.eval_metadata(config.sample.num_prompts))
        prompts = [prompt for prompt, _ in held_out]
        index = write_samples(config, prompts, os.path.join(workdir, "samples"))
        print(f"samples: {index}")
    if jax.process_count() > 1:  # the others wait while process 0 samples (JAX's shutdown barrier would time out)
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices("audiolm_jax run finished")
    return metrics
