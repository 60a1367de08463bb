"""Labelled sound collections as tfds builders from local copies in their official layouts:
ESC-50 and UrbanSound8K (splits by their folds) and a folder whose subfolders are labels;
unreadable files are skipped with a warning naming them; batches carry the labels."""

import dataclasses
import logging

import numpy as np
import pytest
import soundfile as sf

from audiolm_jax import config as C, data as data_lib
from audiolm_jax.data.files import DatasetError
from tests.helpers import tiny_config
from tests.layouts import write_esc50, write_urbansound8k


def labelled_config(workdir, source, data_dir):
    cfg = tiny_config(workdir, data={"source": source, "dir": str(data_dir), "segment_seconds": 0.5, "chunk_seconds": 5,
                                     "eval_split": "validation"})
    return C.validate(dataclasses.replace(cfg, model=dataclasses.replace(
        cfg.model, condition=C.ConditionConfig(label=True, max_labels=8))))


def check_labels_follow_examples(dataset, names):
    assert dataset.label_names == names
    batch = dataset.train_batch(0, 0, 4, 16)
    from audiolm_jax.data.pipeline import batch_examples
    indices, _ = batch_examples(0, 0, 4, len(dataset.train))
    np.testing.assert_array_equal(batch["label"], [dataset.train[int(i)]["label"] for i in indices])


def test_esc50_splits_by_fold_and_skips_the_unreadable_file(tmp_path, caplog):
    base = write_esc50(tmp_path / "copy")
    with caplog.at_level(logging.WARNING):
        dataset = data_lib.prepare(labelled_config(str(tmp_path / "run"), "esc50", base))
    assert "1-999-A-0.wav" in caplog.text  # named, and counted in its split
    assert len(dataset.train) == 9 and len(dataset.eval) == 3  # folds 1-3 × 3 classes; fold 4
    assert sorted(int(dataset.eval[i]["fold"]) for i in range(3)) == [4, 4, 4]
    check_labels_follow_examples(dataset, ("dog", "rain", "siren"))


def test_urbansound8k_splits_by_fold(tmp_path):
    base = write_urbansound8k(tmp_path / "copy")
    dataset = data_lib.prepare(labelled_config(str(tmp_path / "run"), "urbansound8k", base))
    assert len(dataset.train) == 24 and len(dataset.eval) == 3  # folds 1-8; fold 9
    check_labels_follow_examples(dataset, ("air_conditioner", "car_horn", "siren"))


def test_a_folders_subfolders_are_its_labels(tmp_path):
    root = tmp_path / "mine"
    for label in ("bells", "birds"):
        (root / label).mkdir(parents=True)
        for i in range(12):
            sf.write(root / label / f"{i}.wav", np.sin(np.arange(8000) * (0.05 + 0.01 * i)) * 0.5, 8000)
    sf.write(root / "loose.wav", np.zeros(8000) + 0.1, 8000)
    dataset = data_lib.prepare(labelled_config(str(tmp_path / "run"), "folder", root))
    assert dataset.label_names == ("bells", "birds", "unlabelled")
    labels = {dataset.train[i]["path"].decode(): dataset.label_names[int(dataset.train[i]["label"])]
              for i in range(len(dataset.train))}
    assert all(path.split("/")[0] == label or (label == "unlabelled" and "/" not in path)
               for path, label in labels.items())


def test_a_copy_without_its_table_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no meta/esc50.csv"):
        data_lib.prepare(labelled_config(str(tmp_path / "run"), "esc50", tmp_path / "empty"))


def test_conditioning_on_labels_a_source_without_them_is_refused(tmp_path):
    cfg = tiny_config(str(tmp_path))
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, condition=C.ConditionConfig(label=True)))
    with pytest.raises(DatasetError, match="no labels or text"):
        data_lib.prepare(cfg)
