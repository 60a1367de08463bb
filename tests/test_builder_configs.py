"""Builder configs are named after their parameters: any sample rate and chunk length can be
asked of every builder, the registered one included, from a local copy or for download."""

import os

import pytest

from audiolm_jax.data import builders, sources
from audiolm_jax.data.files import DatasetError
from tests.helpers import tiny_config
from tests.layouts import write_librispeech

RATES_AND_CHUNKS = [(16000, 30), (16000, 10), (22050, 30), (8000, 7)]


def source_config(tmp_path, source, sample_rate, chunk_seconds, **data):
    """A tiny config reading `source` at `sample_rate` in chunks of `chunk_seconds`."""
    splits = {"train_split": "train_clean100", "eval_split": "dev_clean"} if source == "librispeech" else {}
    return tiny_config(str(tmp_path / "run"), audio={"sample_rate": sample_rate}, model={"max_frames": 256},
                       data={"source": source, "chunk_seconds": chunk_seconds, **splits, **data})


@pytest.mark.parametrize("source", ["librispeech", "maestro"])
@pytest.mark.parametrize("sample_rate,chunk_seconds", RATES_AND_CHUNKS)
@pytest.mark.parametrize("download", [False, True])
def test_every_rate_and_chunk_builds_a_builder(tmp_path, source, sample_rate, chunk_seconds, download):
    where = {"download": True} if download else {"dir": str(tmp_path)}
    cfg = source_config(tmp_path, source, sample_rate, chunk_seconds, **where)
    builder = sources.make_builder(cfg)  # tfds refused the registered 16 kHz/30 s config before
    assert builder.builder_config.sample_rate == sample_rate
    assert builder.builder_config.chunk_seconds == chunk_seconds
    assert builder.builder_config.name == f"sr{sample_rate}_chunk{chunk_seconds}s"


def test_the_registered_config_is_reused_and_a_clash_is_named():
    registered = builders.MaestroV3.BUILDER_CONFIGS[0]
    assert builders.registered_config(builders.MaestroV3, builders.audio_config(16000)) is registered
    fresh = builders.audio_config(22050)
    assert builders.registered_config(builders.MaestroV3, fresh) is fresh
    clash = builders.AudioBuilderConfig(name=registered.name, sample_rate=8000, chunk_seconds=30)
    with pytest.raises(ValueError, match="sr16000_chunk30s.*registered with"):
        builders.registered_config(builders.MaestroV3, clash)


def test_folder_and_synthetic_configs_at_the_registered_parameters(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    folder = sources.make_builder(source_config(tmp_path, "folder", 16000, 30, dir=str(tmp_path)))
    assert folder.builder_config.name.endswith("sr16000_chunk30s") and folder.builder_config.name != "sr16000_chunk30s"
    synthetic = builders.SyntheticPiano(config=builders.synthetic_config(16000, 4.0, 1024, 64),
                                        data_dir=str(tmp_path / "tfds"))
    assert synthetic.builder_config is builders.SyntheticPiano.BUILDER_CONFIGS[0]


def test_a_tfds_failure_is_one_line_naming_the_source_the_folders_and_what_to_do(tmp_path):
    root = write_librispeech(tmp_path / "ls", splits=("train-clean-100", "dev-clean"))
    cfg = source_config(tmp_path, "librispeech", 8000, 30, dir=str(root))
    builder = sources.build(cfg)
    info = os.path.join(builder.data_dir, "dataset_info.json")
    with open(info, "w") as f:
        f.write("{ not json")  # a prepared dataset damaged on disk: tfds raises its own error
    with pytest.raises(DatasetError) as caught:
        sources.build(cfg)
    message = str(caught.value)
    assert "\n" not in message
    assert "data.source=librispeech" in message and str(root) in message
    assert sources.tfds_dir(cfg) in message and "delete" in message


def test_constructing_an_unprepared_builder_leaves_no_temporary_directory(tmp_path, monkeypatch):
    """tfds made an empty `tmp…tfds` directory per construction (2971 were left in /tmp)."""
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    root = write_librispeech(tmp_path / "ls", splits=("train-clean-100", "dev-clean"))
    sources.make_builder(source_config(tmp_path, "librispeech", 8000, 30, dir=str(root)))
    builders.SyntheticPiano(config=builders.synthetic_config(16000, 4.0, 1024, 64), data_dir=str(tmp_path / "tfds"))
    assert os.listdir(scratch) == []
