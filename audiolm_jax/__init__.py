"""audiolm-jax: AudioLM-style audio generation in JAX/Flax (see README.md)."""
