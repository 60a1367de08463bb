"""Session-wide set-up of the test process.

Apache Beam is never imported here: tfds's own builder test harness imports it when it is
installed (`DatasetBuilderTestCase` checks whether `_generate_examples` returned a Beam
transform), and with it grpc and pyarrow bring thread pools and native libraries into the
process; fresh-clone suites then segfaulted inside a later XLA compile (test_tts, twice).
Beam preparation is tested in child processes (tests/test_beam.py), where this does not
apply; tfds's harness takes the ImportError as "no Beam".
"""

import sys

sys.modules["apache_beam"] = None  # type: ignore[assignment]  # `import apache_beam` raises ImportError here
