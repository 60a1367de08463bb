"""Prepares an experiment's dataset without training (as `tfds build` would):

    python -m audiolm_jax.data experiments.maestro_base --data.dir=/data/maestro-v3.0.0 [--data.tfds_dir=/data/tfds]

Prints each split's example count and where the dataset lies; training with the same
`data.*`, `audio.sample_rate` and `data.tfds_dir` then finds it prepared.
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

from audiolm_jax import cli


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print("usage: python -m audiolm_jax.data <experiment module, e.g. experiments.demo> [--field=value ...]",
              file=sys.stderr)
        raise SystemExit(2)
    try:
        module = importlib.import_module(argv[0])
    except ImportError as e:
        print(f"error: cannot import experiment '{argv[0]}' ({e})", file=sys.stderr)
        raise SystemExit(2) from None
    config = cli.parse(module.config, argv[1:])
    cli.configure_logging()
    from audiolm_jax.data import sources
    from audiolm_jax.data.files import DatasetError

    try:
        builder = sources.build(config)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    for split, info in sorted(builder.info.splits.items()):
        print(f"{split}: {info.num_examples} examples")
    print(f"prepared: {builder.data_dir}")


if __name__ == "__main__":
    main()
