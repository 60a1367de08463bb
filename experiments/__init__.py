"""Experiments: one module each, a `config()` and a `__main__` that runs it."""
