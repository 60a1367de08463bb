"""Session-wide set-up of the test process.

Apache Beam is never imported here: tfds's own builder test harness imports it when it is
installed (`DatasetBuilderTestCase` checks whether `_generate_examples` returned a Beam
transform), bringing grpc's and pyarrow's thread pools and native libraries into the
process. Beam preparation is tested in child processes (tests/test_beam.py); tfds's harness
takes the ImportError as "no Beam". (Keeping Beam out did not stop the XLA-compile
segfault of fresh-clone runs; releasing compiled programs per module, below, is what the
passing run had.)
"""

import gc
import sys

import jax
import pytest

sys.modules["apache_beam"] = None  # type: ignore[assignment]  # `import apache_beam` raises ImportError here


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test module, drop JAX's compiled programs. One process compiles thousands
    of them over the suite; a fresh-clone run segfaulted inside XLA's compiler after ~250
    tests (test_tts, which passes alone), with every earlier executable still mapped."""
    yield
    jax.clear_caches()
    gc.collect()
