"""Runs every benchmark module as `python -m benchmarks.<name>` and prints a table.

    python -m benchmarks            # all
    python -m benchmarks features   # some
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Not CPU benchmarks: corpora writes data; gpu_check is the GPU check (run it on a GPU, where
# its base-size step takes milliseconds, not minutes); gpu_profile is its profiler.
SKIP = {"__init__", "__main__", "common", "corpora", "gpu_check", "gpu_profile"}


def names() -> list[str]:
    return sorted(f[:-3] for f in os.listdir(HERE) if f.endswith(".py") and f[:-3] not in SKIP)


def main(argv: list[str]) -> int:
    chosen = argv or names()
    records, failed = [], []
    for name in chosen:
        print(f"== benchmarks.{name}", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], stdout=subprocess.PIPE,
                              cwd=os.path.dirname(HERE), text=True)
        for line in proc.stdout.splitlines():
            print(line, flush=True)
            if line.startswith("{"):
                records.append(json.loads(line))
        if proc.returncode:
            failed.append(name)
    print(table(records))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def met(record: dict) -> bool:
    """Whether a row meets its target: with a measured spread, at its worst end."""
    return record.get("ratio_low", record["ratio"]) >= record["target"]


def table(records: list[dict]) -> str:
    rows = [("benchmark", "case", "ours", "reference", "unit", "ratio", "target", "met")]
    for r in records:
        rows.append((r["benchmark"], r["case"], f"{r['ours']:.4g}", f"{r['reference']:.4g}", r["unit"],
                     f"{r['ratio']:.2f}", f"{r['target']:.2f}", "yes" if met(r) else "no"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
