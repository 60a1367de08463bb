"""The download path of the LibriSpeech and MAESTRO builders, through tfds's own test harness
(`tfds.testing.DatasetBuilderTestCase`): it mocks the DownloadManager so that
`download_and_extract` returns fake extracted archives written here in the official layouts,
prepares every split, reads it back with `as_dataset` and checks counts, registration,
shapes and that no example is in two splits."""

import os
import pathlib
import tempfile

import tensorflow_datasets as tfds

from audiolm_jax.data.files import LIBRISPEECH_SPLITS
from audiolm_jax.data import builders
from tests.layouts import write_librispeech, write_maestro


class _GeneratedExamples:
    """Mixin: writes the fake downloads into a temporary EXAMPLE_DIR before tfds looks for them."""

    MOCK_OUT_FORBIDDEN_OS_FUNCTIONS = False  # the builders read local files with os/soundfile

    @classmethod
    def write_examples(cls, root):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        cls.EXAMPLE_DIR = cls._tmp.name
        cls.write_examples(pathlib.Path(cls._tmp.name))
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls._tmp.cleanup()


class LibrispeechDownloadTest(_GeneratedExamples, tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = builders.LibrispeechAudio
    BUILDER_CONFIG_NAMES_TO_TEST = [builders.audio_config(8000)]
    # One fake extracted archive per split, as tfds's download_and_extract returns them.
    DL_EXTRACT_RESULT = {split: split for split in LIBRISPEECH_SPLITS}
    SPLITS = {split: 6 for split in LIBRISPEECH_SPLITS}  # 2 speakers × 3 utterances each
    SKIP_CHECKSUMS = False  # every URL it downloads has tfds's registered checksum

    @classmethod
    def write_examples(cls, root):
        for i, (split, folder) in enumerate(LIBRISPEECH_SPLITS.items()):
            write_librispeech(root / split, splits=(folder,), first_speaker=19 + 1000 * i)


class MaestroDownloadTest(_GeneratedExamples, tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = builders.MaestroV3
    BUILDER_CONFIG_NAMES_TO_TEST = [builders.audio_config(8000, chunk_seconds=1)]
    DL_EXTRACT_RESULT = "maestro_zip"  # the extracted maestro-v3.0.0.zip
    SKIP_CHECKSUMS = True  # no checksum of MAESTRO's zip is registered here (its size is ~101 GB; not verified)
    SPLITS = {"train": 6, "validation": 2, "test": 2}  # 1.5 s pieces in chunks of 1 s and 0.5 s

    @classmethod
    def write_examples(cls, root):
        write_maestro(root / "maestro_zip")


def test_librispeech_downloads_are_checked_against_tfds_checksums():
    infos = builders.LibrispeechAudio.url_infos
    assert infos["http://www.openslr.org/resources/12/dev-clean.tar.gz"].size == 337926286
    assert len(infos) == len(LIBRISPEECH_SPLITS)


def test_builders_are_registered_under_their_tfds_names():
    assert {"synthetic_piano", "librispeech_audio", "maestro_v3", "audio_folder"} <= set(tfds.list_builders())
    assert os.path.basename(str(builders.MaestroV3.code_path)) == "builders.py"
