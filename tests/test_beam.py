"""Preparing a recorded dataset on several threads (`data.prepare_workers`) or through
Apache Beam's local runner on two processes (`data.beam_options`) gives the dataset one
thread prepares, example for example, and still skips a corrupt file.

Beam runs in a child process of the test (`prepare_in_child`): its runner leaves thread
pools and native libraries in the process that ran it, and the rest of the suite should not
share a process with them; reading the prepared dataset back needs no Beam.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from audiolm_jax import config as C
from audiolm_jax.data import build, sources
from audiolm_jax.data.files import DatasetError
from tests.helpers import tiny_config
from tests.layouts import write_maestro
from tests.signals import piano_like


LOCAL_BEAM = "--direct_num_workers=2 --direct_running_mode=multi_processing"  # Beam's local runner, 2 processes


def examples_by_id(builder, split: str) -> dict[str, dict]:
    source = builder.as_data_source(split)
    return {source[i]["id"].decode(): source[i] for i in range(len(source))}


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD = """
import json, sys
from audiolm_jax.data import build
from tests.helpers import tiny_config
args = json.loads(sys.argv[1])
build(tiny_config(args["workdir"], data=args["data"]))
"""


def data_fields(source: str, data_dir, **data) -> dict:
    return {"source": source, "dir": str(data_dir), "chunk_seconds": 1, **data}


def prepare_in_child(tmp_path, name: str, source: str, data_dir, **data) -> None:
    """Prepares the dataset in a child process (see the module docstring)."""
    args = json.dumps({"workdir": str(tmp_path / name), "data": data_fields(source, data_dir, **data)})
    proc = subprocess.run([sys.executable, "-c", CHILD, args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]


def prepared(tmp_path, name: str, source: str, data_dir, **data) -> dict:
    """The dataset's examples by split and id (prepared here unless a child prepared it)."""
    builder = build(tiny_config(str(tmp_path / name), data=data_fields(source, data_dir, **data)))
    return {split: examples_by_id(builder, split) for split in builder.info.splits}


@pytest.mark.parametrize("parallel", [{"prepare_workers": 3}, {"beam_options": LOCAL_BEAM}], ids=["threads", "beam"])
def test_parallel_preparation_gives_the_serial_dataset(tmp_path, parallel):
    root = write_maestro(tmp_path / "m")
    serial = prepared(tmp_path, "serial", "maestro", root, prepare_workers=1)
    if "beam_options" in parallel:
        prepare_in_child(tmp_path, "parallel", "maestro", root, **parallel)
    other = prepared(tmp_path, "parallel", "maestro", root, **parallel)
    assert {s: sorted(e) for s, e in other.items()} == {s: sorted(e) for s, e in serial.items()}
    assert sum(len(e) for e in other.values()) == 10  # 5 pieces of 1.5 s in chunks of 1 s + 0.5 s
    for split, examples in serial.items():
        for key, example in examples.items():
            np.testing.assert_array_equal(other[split][key]["audio"], example["audio"])
            np.testing.assert_array_equal(other[split][key]["notes"], example["notes"])
            assert other[split][key]["start_seconds"] == example["start_seconds"]
            assert other[split][key]["title"] == example["title"]


def test_beam_preparation_skips_a_corrupt_file(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(6):
        sf.write(folder / f"{i}.wav", piano_like(0.6, 8000, seed=i), 8000)
    (folder / "broken.wav").write_bytes(b"RIFF not really audio")
    prepare_in_child(tmp_path, "beam", "folder", folder, beam_options=LOCAL_BEAM)
    beam = prepared(tmp_path, "beam", "folder", folder, beam_options=LOCAL_BEAM)
    serial = prepared(tmp_path, "serial", "folder", folder, prepare_workers=1)
    assert {s: sorted(e) for s, e in beam.items()} == {s: sorted(e) for s, e in serial.items()}
    assert not any("broken" in key for examples in beam.values() for key in examples)


OPTIONS_CHILD = """
import json, sys
from audiolm_jax.data import sources
from tests.helpers import tiny_config
options = sources.download_config(tiny_config(sys.argv[1], data=json.loads(sys.argv[2]))).beam_options
print(json.dumps(options.get_all_options()))
"""


def beam_options_in_child(tmp_path, data: dict) -> dict:
    """`sources.download_config`'s Beam options for these `data` fields, built in a child."""
    proc = subprocess.run([sys.executable, "-c", OPTIONS_CHILD, str(tmp_path), json.dumps(data)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_test_process_never_imports_apache_beam():
    """Beam runs in child processes only (tests/conftest.py says why)."""
    with pytest.raises(ImportError):
        import apache_beam  # noqa: F401
    assert sys.modules["apache_beam"] is None


def test_beam_settings_reach_tfds_and_are_validated(tmp_path, monkeypatch):
    folder = {"source": "folder", "dir": str(tmp_path)}
    options = beam_options_in_child(tmp_path, {**folder, "beam_options": LOCAL_BEAM})
    assert options["direct_num_workers"] == 2 and options["direct_running_mode"] == "multi_processing"
    options = beam_options_in_child(tmp_path, {**folder, "beam_options": "--runner=FlinkRunner --parallelism=64"})
    assert options["runner"] == "FlinkRunner" and options["parallelism"] == 64
    assert sources.download_config(tiny_config(str(tmp_path))).beam_options is None  # this machine by default
    assert sources.prepare_threads(tiny_config(str(tmp_path))) == os.cpu_count()  # 0: one thread per core
    with pytest.raises(C.ConfigError, match="data.prepare_workers"):
        tiny_config(str(tmp_path), data={"prepare_workers": -1})
    monkeypatch.setitem(sys.modules, "apache_beam.options.pipeline_options", None)  # Beam not installed
    with pytest.raises(DatasetError, match=r"pip install -e '\.\[beam\]'"):
        sources.download_config(tiny_config(str(tmp_path), data={**folder, "beam_options": LOCAL_BEAM}))
