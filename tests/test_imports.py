"""Sampling, decoding, the train step, evaluation and restoring a checkpoint import neither
TensorFlow nor tfds (a GPU image with jax but no TensorFlow stack runs them), nor do the
dataset layouts config validation reads; only preparing and reading datasets does."""

import subprocess
import sys

CHECK = """
import sys
import audiolm_jax.checkpoint, audiolm_jax.continuation, audiolm_jax.decode, audiolm_jax.sample, audiolm_jax.train
import audiolm_jax.evaluate, audiolm_jax.data.files, audiolm_jax.data.pipeline  # the layouts validation reads
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorflow_datasets'))
print(len(loaded), loaded[:3])
"""


def test_sampling_and_the_train_step_import_no_tensorflow():
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] == "0", proc.stdout


AUDIO_FREE = """
import sys
import audiolm_jax.decibels, audiolm_jax.metrics, audiolm_jax.model, audiolm_jax.conditioning
import audiolm_jax.decode, audiolm_jax.train
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('librosa', 'soundfile'))
print(len(loaded), loaded[:3])
"""


def test_the_model_the_step_decoding_and_the_metrics_import_no_librosa():
    """The GPU image has no librosa: the model's path and the continuation metrics share the
    dB arithmetic of `decibels`, not of `audio` (which reads files with librosa/soundfile)."""
    proc = subprocess.run([sys.executable, "-c", AUDIO_FREE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] == "0", proc.stdout
