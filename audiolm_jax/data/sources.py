"""Dataset sources, chosen by `DataConfig.source`, each a tfds builder (`builders.py`).

`prepare(config)` builds the source's dataset once into the tfds data dir
(`data.tfds_dir`, default `<workdir>/tfds`) in ArrayRecord format — from a local copy
(`data.dir`), a download by tfds (`data.download`), or generated (synthetic) — then opens
the train and eval splits with the one reader, `records.Dataset`, keeping in memory what
`data.cache` says (`cache_mode`).
"""

from __future__ import annotations

import logging
import os
import shlex

import jax
import tensorflow_datasets as tfds

from audiolm_jax.config import GENERATED_SOURCES, ExperimentConfig
from audiolm_jax.data import builders, files
from audiolm_jax.data.files import DatasetError
from audiolm_jax.data.pipeline import NormStats
from audiolm_jax.data.records import Dataset

log = logging.getLogger(__name__)


def tfds_dir(config: ExperimentConfig) -> str:
    """Where the source's dataset is prepared: `data.tfds_dir` or `<workdir>/tfds`."""
    return os.path.abspath(config.data.tfds_dir or os.path.join(config.workdir, "tfds"))


def prepare_threads(config: ExperimentConfig) -> int:
    """Threads decoding a recorded dataset's files: `data.prepare_workers`, 0 meaning one per core."""
    return config.data.prepare_workers or os.cpu_count() or 1


def download_config(config: ExperimentConfig) -> tfds.download.DownloadConfig:
    """tfds's preparation settings: with `data.beam_options`, the Beam pipeline's options
    (a cluster runner's flags, or the local runner's, e.g. `--direct_num_workers=8
    --direct_running_mode=multi_processing`)."""
    if not config.data.beam_options or config.data.source in GENERATED_SOURCES:
        return tfds.download.DownloadConfig()
    try:
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError:
        raise DatasetError("data.beam_options prepares with Apache Beam: pip install -e '.[beam]' "
                           "(or leave data.beam_options unset to prepare on this machine's cores)") from None
    return tfds.download.DownloadConfig(beam_options=PipelineOptions(flags=shlex.split(config.data.beam_options)))


def make_builder(config: ExperimentConfig) -> tfds.core.DatasetBuilder:
    """The tfds builder of `config.data.source`, at `config.audio.sample_rate`, in `tfds_dir`."""
    data, rate = config.data, config.audio.sample_rate
    data_dir = tfds_dir(config)
    if data.source == "synthetic":
        cfg = builders.synthetic_config(rate, data.synthetic_clip_seconds, data.synthetic_train_clips,
                                        data.synthetic_eval_clips)
        return builders.SyntheticPiano(config=cfg, data_dir=data_dir)
    if data.source == "sounds":
        cfg = builders.sounds_config(rate, data.synthetic_clip_seconds, data.synthetic_train_clips,
                                     data.synthetic_eval_clips)
        return builders.SyntheticSounds(config=cfg, data_dir=data_dir)
    if data.source == "voices":
        cfg = builders.voices_config(rate, data.synthetic_train_clips, data.synthetic_eval_clips)
        return builders.SyntheticVoices(config=cfg, data_dir=data_dir)
    cfg = builders.audio_config(rate, data.chunk_seconds)
    recorded = {"librispeech": builders.LibrispeechAudio, "maestro": builders.MaestroV3, "esc50": builders.Esc50,
                "urbansound8k": builders.UrbanSound8k, "folder": builders.AudioFolder}[data.source]
    return recorded(config=cfg, source_dir=data.dir, data_dir=data_dir, beam=bool(data.beam_options),
                    workers=prepare_threads(config))


def check_local_copy(config: ExperimentConfig) -> None:
    """Fails at once, naming what was expected, when `data.dir` cannot hold the splits."""
    data = config.data
    if data.dir is None:
        return
    if data.source == "librispeech":
        for split in (data.train_split, data.eval_split):
            files.check_librispeech_split(data.dir, split)
    elif data.source == "maestro":
        for split in (data.train_split, data.eval_split):
            files.check_maestro_split(data.dir, split)
    elif data.source in ("esc50", "urbansound8k"):
        files.labelled_rows(data.dir, data.source)
    elif data.source == "folder":
        files.folder_paths(data.dir)


def build(config: ExperimentConfig) -> tfds.core.DatasetBuilder:
    """Prepares the source's dataset (once; later calls find it) and returns its builder.

    The local copy is checked (every process, so all fail together on a bad layout) only
    while the dataset is not prepared: a prepared one needs neither the walk nor the copy.
    With several processes, process 0 prepares while the others wait at a barrier.
    Anything tfds raises reaches the caller as one DatasetError saying what to do.
    """
    try:
        return _build(config)
    except DatasetError:
        raise
    except Exception as e:  # tfds and its readers raise many types; the user needs one line
        raise DatasetError(_failure_message(config, e)) from e


def _failure_message(config: ExperimentConfig, error: Exception) -> str:
    """One line: the source, where it was read from and prepared into, tfds's reason, and what to do."""
    data = config.data
    origin = f"local copy '{data.dir}'" if data.dir else ("download" if data.download else "generated")
    reason = (str(error).strip().splitlines() or [""])[0][:300]
    return (f"data.source={data.source} ({origin}, prepared into '{tfds_dir(config)}'): tfds failed with "
            f"{type(error).__name__}: {reason} — check the copy's layout (README, 'Train on LibriSpeech, "
            f"MAESTRO or your own audio'), or delete '{tfds_dir(config)}' to prepare it again")


def _build(config: ExperimentConfig) -> tfds.core.DatasetBuilder:
    builder = make_builder(config)
    if not builder.is_prepared():
        check_local_copy(config)
        if jax.process_index() == 0:
            log.info("%s: preparing (once) in %s", builder.name, builder.data_dir)
            builder.download_and_prepare(file_format="array_record",
                                         download_dir=os.path.join(tfds_dir(config), "downloads"),
                                         download_config=download_config(config))
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices("audiolm_jax dataset prepared")
        builder = make_builder(config)  # re-reads the dataset info process 0 wrote
    for split in (config.data.train_split, config.data.eval_split):
        if split not in builder.info.splits:
            raise DatasetError(f"{builder.name} prepared in '{builder.data_dir}' has no split {split!r} "
                                     f"(it has {sorted(builder.info.splits)}); it was prepared from another "
                                     "copy: delete that folder to prepare it again, or set data.tfds_dir")
    return builder


def cache_mode(config: ExperimentConfig) -> str:
    """What the reader keeps in memory: `data.cache`, or for "auto" whole log-mels for the
    embedded piano set read plainly (no augmentation, conditioning or utterance crops), the
    decoded audio for the other generated sets (small, and the same batches as from the
    records), and nothing for recorded datasets."""
    data = config.data
    if data.cache != "auto":
        return data.cache
    if data.source == "synthetic" and not data.augments and not config.model.condition.active and data.crop == "random":
        return "log_mel"
    return "audio" if data.source in GENERATED_SOURCES else "none"


def prepare(config: ExperimentConfig, stats: NormStats | None = None) -> Dataset:
    """The dataset of `config.data`, with normalisation statistics (computed unless given)."""
    data = config.data
    builder = build(config)
    train_source = builder.as_data_source(data.train_split)
    eval_source = builder.as_data_source(data.eval_split)
    condition = config.model.condition
    if data.source == "synthetic" and (condition.label or condition.text):
        raise DatasetError("data.source=synthetic has no labels or text to condition on (model.condition): "
                           "use data.source=sounds, librispeech or a labelled set")
    label_key = getattr(type(builder), "LABEL_KEY", None)
    dataset = Dataset(train_source, eval_source, type(builder).AUDIO_KEY, config.audio, data, cache=cache_mode(config),
                      stats=stats, seed=config.train.seed, condition=condition, label_key=label_key,
                      text_key=getattr(type(builder), "TEXT_KEY", None),
                      label_names=tuple(builder.info.features[label_key].names) if label_key else (),
                      notes_key=getattr(type(builder), "NOTES_KEY", None),
                      speaker_key=getattr(type(builder), "SPEAKER_KEY", None))
    log.info("%s: %d training and %d evaluation examples (in memory: %s)", builder.name, len(train_source),
             len(eval_source), dataset.cache)
    return dataset
