"""Command-line plumbing shared by every experiment: overrides, clean errors, exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import types
import typing
from typing import Any, Callable, Literal, Optional, Sequence

from audiolm_jax import config as config_lib, runtime
from audiolm_jax.config import ConfigError, ExperimentConfig


def configure_logging() -> None:
    """INFO for this package, errors only for the chatty libraries (absl/Orbax, JAX, TF)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("audiolm_jax").setLevel(logging.INFO)
    for name in ("absl", "orbax", "jax", "tensorflow", "matplotlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse(config_fn: Callable[[], ExperimentConfig], argv: Optional[Sequence[str]] = None) -> ExperimentConfig:
    """`config_fn()` with `--dotted.field=value` overrides from `argv` applied and validated.

    `-h`/`--help` prints every field with its current value and exits 0. A bad field prints
    one line naming it and exits with status 2, before anything compiles.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        base = config_fn()
        if any(a in ("-h", "--help") for a in argv):
            print(help_text(base))
            raise SystemExit(0)
        return apply_overrides(base, argv)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def help_text(config: ExperimentConfig) -> str:
    """Every overridable field and its value, one per line."""
    lines = [f"usage: python -m experiments.{config.name} [--section.field=value ...]", "", "fields:"]

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, prefix + key + ".")
            else:
                lines.append(f"  --{prefix}{key}={value}")

    walk(config_lib.to_dict(config), "")
    return "\n".join(lines)


def main(config_fn: Callable[[], ExperimentConfig], argv: Optional[Sequence[str]] = None) -> None:
    """Parses overrides and runs the experiment end to end (train, evaluate, sample)."""
    runtime.keep_freed_memory()  # before JAX starts its threads: see runtime.py
    config = parse(config_fn, argv)
    from audiolm_jax.data.files import DatasetError
    from audiolm_jax.run import run  # after validation: importing JAX is the slow part

    try:
        run(config)
    except (ConfigError, DatasetError) as e:  # a batch size the devices cannot split, a bad data.dir
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def split_overrides(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]],
                    sections: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """A command's own flags (parsed by `parser`) and the rest: its dotted config overrides.

    Every command speaks the experiments' convention: `--section.field=value` (or
    `--section.field value`) for any field of the allowed `sections` of the checkpoint's
    config, beside its few own flags; `apply_overrides` parses and validates them.
    A flag of another section exits 2 with one usage line.
    """
    runtime.keep_freed_memory()  # every command starts here, before JAX starts its threads: see runtime.py
    args, rest = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    for arg in rest:
        path = arg[2:].split("=", 1)[0] if arg.startswith("--") else None
        if path is not None and ("." not in path or path.split(".", 1)[0] not in sections):
            allowed = ", ".join(f"--{s}.<field>=value" for s in sections)
            parser.error(f"unrecognised argument {arg!r} (config overrides here: {allowed})")
    return args, rest


def sample_shorthands(args: argparse.Namespace, fields: Sequence[str]) -> list[str]:
    """A command's shorthand flags (`--num-samples` for `args.num_samples`, ...) as the dotted
    `--sample.<field>=value` overrides they stand for, those given only."""
    return [f"--sample.{name}={getattr(args, name)}" for name in fields if getattr(args, name) is not None]


def report_command(action: Callable[[], str]) -> int:
    """Runs a command's `action` (which returns the report it wrote) and gives its exit
    status: 0 after printing 'wrote <path>', or 2 after one line naming the bad input
    (a missing workdir, a bad value, an unknown label: FileNotFoundError or ValueError,
    which ConfigError, DatasetError and ConditionError are)."""
    try:
        index = action()
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {index}")
    return 0


# ---------------------------------------------------------------------------------------
# Dotted overrides: command-line text → typed config fields


def _parse_text(path: str, text: str, tp: Any) -> Any:
    """Turns command-line text into a value of annotation `tp`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null"):
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _parse_text(path, text, inner)
    if origin is Literal:
        return config_lib.coerce(path, text, tp)
    if tp is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError(path, text, config_lib.type_name(tp))
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(path, text, config_lib.type_name(tp)) from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(path, text, config_lib.type_name(tp)) from None
    if tp is str:
        return text
    raise ConfigError(path, text, "a leaf field (not a whole section)")


def override(config: ExperimentConfig, path: str, text: str) -> ExperimentConfig:
    """Returns `config` with the field at dotted `path` (e.g. 'train.steps') set from `text`."""
    parts = path.split(".")
    nodes = [config]
    for i, part in enumerate(parts):
        node = nodes[-1]
        ftypes = config_lib.field_types(type(node))
        prefix = ".".join(parts[:i]) + ("." if i else "")
        if part not in ftypes:
            config_lib.raise_unknown(prefix + part, list(ftypes), prefix)
        if i < len(parts) - 1:
            child = getattr(node, part)
            if not dataclasses.is_dataclass(child):
                raise ConfigError(path, text, f"'{prefix}{part}' has no sub-fields")
            nodes.append(child)
    value = _parse_text(path, text, config_lib.field_types(type(nodes[-1]))[parts[-1]])
    for node, part in zip(reversed(nodes), reversed(parts)):
        value = dataclasses.replace(node, **{part: value})
    return value


def apply_overrides(config: ExperimentConfig, argv: list[str]) -> ExperimentConfig:
    """Applies `--dotted.path=value` (or `--dotted.path value`) arguments, then validates."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(arg, arg, "arguments of the form --section.field=value")
        body = arg[2:]
        if "=" in body:
            path, text = body.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(argv):
                raise ConfigError(body, None, "a value after --" + body)
            path, text = body, argv[i + 1]
            i += 2
        config = override(config, path.replace("-", "_"), text)
    return config_lib.validate(config)
