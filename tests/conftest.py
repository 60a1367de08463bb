"""Session-wide set-up of the test process.

Apache Beam is never imported here: tfds's own builder test harness imports it when it is
installed (`DatasetBuilderTestCase` checks whether `_generate_examples` returned a Beam
transform), and with it grpc and pyarrow bring thread pools and native libraries into the
process; fresh-clone suites then segfaulted inside a later XLA compile (test_tts, twice).
Beam preparation is tested in child processes (tests/test_beam.py), where this does not
apply; tfds's harness takes the ImportError as "no Beam".
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
