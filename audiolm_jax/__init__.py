"""audiolm-jax: AudioLM-style audio generation in JAX/Flax (see README.md)."""

from audiolm_jax import runtime as _runtime

# Before any XLA computation allocates: reuse freed memory instead of page-faulting it in
# on every call (runtime.py; AUDIOLM_JAX_SYSTEM_MALLOC=1 opts out).
_runtime.keep_freed_memory()
