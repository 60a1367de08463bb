"""Datasets on disk in their official layouts: finding the files, and saying clearly what
was expected when a directory is missing or laid out wrongly. The tfds builders
(`builders.py`) read through these.

Layouts, as the datasets ship them:
- LibriSpeech: `LibriSpeech/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac` with
  `<speaker>-<chapter>.trans.txt`, plus `SPEAKERS.TXT` and `CHAPTERS.TXT`; split folders such
  as `train-clean-100` are named as tfds names them (`train_clean100`, `dev_clean`, ...).
- MAESTRO v3: `maestro-v3.0.0/maestro-v3.0.0.csv` (columns include `split`,
  `audio_filename`, `midi_filename`, `canonical_composer`, `canonical_title`, `year`,
  `duration`) and `<year>/*.wav`, `*.midi`; splits `train`, `validation`, `test`.
- ESC-50: `audio/<filename>.wav` and `meta/esc50.csv` (columns `filename`, `fold` 1-5,
  `target`, `category`); splits by fold (`LABELLED_SPLIT_FOLDS`).
- UrbanSound8K: `audio/fold<k>/<slice_file_name>` and `metadata/UrbanSound8K.csv` (columns
  `slice_file_name`, `fold` 1-10, `classID`, `class`); splits by fold.
- folder: any wav/flac/ogg/mp3 below a directory; ~5% by path hash form `validation`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os

# tfds's LibriSpeech split names and the folders of the official archives they stand for.
LIBRISPEECH_SPLITS = {
    "train_clean100": "train-clean-100", "train_clean360": "train-clean-360",
    "train_other500": "train-other-500", "dev_clean": "dev-clean", "dev_other": "dev-other",
    "test_clean": "test-clean", "test_other": "test-other",
}
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
MAESTRO_CSV = "maestro-v3.0.0.csv"
MAESTRO_JSON = "maestro-v3.0.0.json"
MAESTRO_COLUMNS = ("split", "audio_filename")


# Labelled sets: (metadata csv, audio path of a row, label column, id column), and which folds
# form each split. ESC-50's 5 folds: 1-3 train, 4 validation, 5 test; UrbanSound8K's 10: 1-8,
# 9, 10 (both sets ship folds so that clips cut from one recording share a fold).
LABELLED_LAYOUTS = {
    "esc50": ("meta/esc50.csv", lambda row: os.path.join("audio", row["filename"]), "category", "target"),
    "urbansound8k": ("metadata/UrbanSound8K.csv",
                     lambda row: os.path.join("audio", f"fold{row['fold']}", row["slice_file_name"]), "class", "classID"),
}
LABELLED_SPLIT_FOLDS = {
    "esc50": {"train": (1, 2, 3), "validation": (4,), "test": (5,)},
    "urbansound8k": {"train": tuple(range(1, 9)), "validation": (9,), "test": (10,)},
}


class DatasetError(ValueError):
    """A dataset directory is missing, laid out wrongly or holds no usable audio."""


def librispeech_layout_message(root: str, split: str | None = None) -> str:
    """What a LibriSpeech local copy should look like, and where to get it."""
    folder = LIBRISPEECH_SPLITS.get(split or "", "<split>")
    archive = f"{folder}.tar.gz" if split else "e.g. dev-clean.tar.gz"
    return (f"data.dir '{root}': expected an extracted LibriSpeech tree with "
            f"LibriSpeech/{folder}/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac, the "
            f"<speaker>-<chapter>.trans.txt transcripts, SPEAKERS.TXT and CHAPTERS.TXT "
            f"(the OpenSLR resource 12 archives, {archive})")


def _named_folder(root: str, name: str) -> str:
    """`root/name` when that folder exists (`root` is its parent), else `root` itself."""
    return os.path.join(root, name) if os.path.isdir(os.path.join(root, name)) else root


def librispeech_root(root: str) -> str:
    """The `LibriSpeech/` folder given it or its parent; DatasetError when neither."""
    base = os.path.normpath(_named_folder(root, "LibriSpeech"))
    if os.path.basename(base) != "LibriSpeech" or not os.path.isdir(base):
        raise DatasetError(librispeech_layout_message(root))
    return base


def check_librispeech_split(root: str, split: str) -> None:
    """Raises DatasetError unless `split`'s folder holds flac files below `root`."""
    if split not in LIBRISPEECH_SPLITS:
        raise DatasetError(f"LibriSpeech split {split!r}: expected one of {sorted(LIBRISPEECH_SPLITS)}")
    base = os.path.normpath(_named_folder(root, "LibriSpeech"))
    folder = os.path.join(base, LIBRISPEECH_SPLITS[split])
    if os.path.basename(base) != "LibriSpeech" or not os.path.isdir(folder):
        raise DatasetError(librispeech_layout_message(root, split))
    if not any(f.endswith(".flac") for _, _, names in os.walk(folder) for f in names):
        raise DatasetError(f"data.dir '{root}': no .flac files under '{folder}'")


def maestro_root(root: str) -> str:
    """The folder holding `maestro-v3.0.0.csv` (or `.json`), given it or its parent;
    DatasetError when neither."""
    base = _named_folder(root, "maestro-v3.0.0")
    if not any(os.path.isfile(os.path.join(base, name)) for name in (MAESTRO_CSV, MAESTRO_JSON)):
        raise DatasetError(
            f"data.dir '{root}': expected the MAESTRO v3 folder (maestro-v3.0.0/{MAESTRO_CSV} with "
            "<year>/*.wav and *.midi beside it, from the maestro-v3.0.0.zip archive at "
            "https://magenta.tensorflow.org/datasets/maestro)")
    return base


def maestro_table(base: str) -> str:
    """The metadata file MAESTRO rows are read from: the csv, or the json where there is none."""
    csv_path = os.path.join(base, MAESTRO_CSV)
    return csv_path if os.path.isfile(csv_path) else os.path.join(base, MAESTRO_JSON)


def maestro_rows(base: str) -> list[dict]:
    """The rows of `maestro_table(base)` (json: column → {row: value}); DatasetError when
    columns are missing or the file is malformed."""
    table = maestro_table(base)
    if table.endswith(".csv"):
        with open(table, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    else:
        try:
            with open(table, encoding="utf-8") as f:
                columns = json.load(f)
            keys = sorted(next(iter(columns.values())), key=int)
            rows = [{name: values[k] for name, values in columns.items()} for k in keys]
        except (ValueError, AttributeError, KeyError, StopIteration) as e:
            raise DatasetError(f"'{table}': expected {{column: {{row: value}}}} as MAESTRO ships it ({e})") from None
    if not rows:
        raise DatasetError(f"'{table}': no rows")
    missing = [c for c in MAESTRO_COLUMNS if c not in rows[0]]
    if missing:
        raise DatasetError(f"'{table}': expected columns {list(MAESTRO_COLUMNS)}, missing {missing}")
    return rows


def check_maestro_split(root: str, split: str) -> None:
    """Raises DatasetError unless the metadata under `root` has rows of `split`."""
    base = maestro_root(root)
    splits = sorted({r["split"] for r in maestro_rows(base)})
    if split not in splits:
        raise DatasetError(f"MAESTRO split {split!r}: '{maestro_table(base)}' has splits {splits}")


def folder_paths(root: str) -> list[str]:
    """Every wav/flac/ogg/mp3 below `root`, recursively, sorted."""
    if not os.path.isdir(root):
        raise DatasetError(f"data.dir '{root}': not a directory (expected a folder of "
                           f"{'/'.join(AUDIO_EXTENSIONS)} files for source 'folder')")
    paths = sorted(os.path.join(d, f) for d, _, names in os.walk(root) for f in names
                   if f.lower().endswith(AUDIO_EXTENSIONS))
    if not paths:
        raise DatasetError(f"data.dir '{root}': no {'/'.join(AUDIO_EXTENSIONS)} files found")
    return paths


def split_paths_by_hash(paths: list[str], root: str, split: str) -> list[str]:
    """'validation': the ~5% of `paths` whose path relative to `root` hashes low (at least one
    file, the same on every machine); 'train': the rest."""
    digests = {p: hashlib.sha1(os.path.relpath(p, root).encode()).digest() for p in paths}
    validation = {p for p in paths if digests[p][0] < 13}
    if not validation and len(paths) > 1:
        validation = {min(digests, key=digests.__getitem__)}
    return [p for p in paths if (p in validation) == (split == "validation")]


def labelled_rows(root: str, layout: str) -> list[dict]:
    """The metadata rows of an ESC-50 or UrbanSound8K copy at `root`, each with `path` (the
    audio file), `label` (its class name), `label_id` and `fold` (int); DatasetError naming the
    file and what was expected when the table is missing or lacks columns."""
    table_name, audio_path, label_column, id_column = LABELLED_LAYOUTS[layout]
    table = os.path.join(root, table_name)
    if not os.path.isfile(table):
        raise DatasetError(f"data.dir '{root}': no {table_name} (expected the {layout} layout: {table_name} "
                           f"and the audio it lists)")
    with open(table, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    needed = ("fold", label_column, id_column)
    if not rows or any(c not in rows[0] for c in needed):
        raise DatasetError(f"'{table}': expected columns {list(needed)} and at least one row")
    out = []
    for row in rows:
        try:
            out.append({"path": os.path.join(root, audio_path(row)), "label": row[label_column],
                        "label_id": int(row[id_column]), "fold": int(row["fold"])})
        except (KeyError, ValueError) as e:
            raise DatasetError(f"'{table}': a row with a bad fold or class id ({e}): {row}") from None
    return out


def label_names(rows: list[dict]) -> tuple[str, ...]:
    """Class names in class-id order (ids 0..K-1, each with one name); DatasetError otherwise."""
    names: dict[int, str] = {}
    for row in rows:
        if names.setdefault(row["label_id"], row["label"]) != row["label"]:
            raise DatasetError(f"class id {row['label_id']} is named both {names[row['label_id']]!r} and {row['label']!r}")
    if sorted(names) != list(range(len(names))):
        raise DatasetError(f"class ids {sorted(names)}: expected 0..{len(names) - 1}")
    return tuple(names[i] for i in range(len(names)))


UNLABELLED = "unlabelled"  # the label of files directly in a folder source's root


def folder_label(relative_path: str) -> str:
    """A folder source's label of a file: its top-level subfolder (`rain/a.wav` → 'rain'),
    UNLABELLED for a file at the root."""
    parts = relative_path.replace(os.sep, "/").split("/")
    return parts[0] if len(parts) > 1 else UNLABELLED


def folder_labels(root: str) -> tuple[str, ...]:
    """The sorted labels of every audio file below `root` (see `folder_label`)."""
    return tuple(sorted({folder_label(os.path.relpath(p, root)) for p in folder_paths(root)}))
