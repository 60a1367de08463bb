"""Op-level profile of a jit-compiled step: a `jax.profiler` trace of a few calls, summarised
by kernel (device time per kernel name and per kernel class), so a GPU lease answers where
the step's time goes and not only how long it takes.

    summary = profile_calls(step_fn, calls=3, out_dir=OUT, tag="base")

writes `OUT/trace_<tag>.json.gz` (Perfetto JSON; open it in ui.perfetto.dev) and
`OUT/profile_<tag>.txt` (the summary below), and returns the summary rows.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import shutil
import tempfile
from typing import Any, Callable

from audiolm_jax.atomic import atomic_path, write_text

# Kernel classes by substrings of the kernel's name (first match wins), checked in order.
KERNEL_CLASSES = (
    ("attention (cuDNN fused)", ("cudnn", "fmha", "flash", "sdpa")),
    ("matmul", ("gemm", "xmma", "cutlass", "cublas", "matmul", "dot", "wgmma", "sm90_", "nvjet")),
    ("matmul (XLA:CPU's YNNPACK/XNNPACK fusions)", ("ynn_fusion", "xnn_fusion")),
    ("copy / transpose", ("copy", "transpose", "memcpy", "memset")),
    ("reduction", ("reduce", "reduction")),
    ("elementwise fusion", ("fusion", "loop_", "input_", "convert", "multiply", "add")),
)


def kernel_class(name: str) -> str:
    """The class of a kernel by its name (see `KERNEL_CLASSES`), 'other' when none matches."""
    lowered = name.lower()
    for label, needles in KERNEL_CLASSES:
        if any(n in lowered for n in needles):
            return label
    return "other"


def device_events(trace: dict) -> list[dict]:
    """The complete ('X') events of the trace's device processes (`/device:…`); on a CPU,
    where XLA runs on host threads, the kernels of its compute threads instead (without the
    executor's enclosing events, which would count their kernels twice)."""
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {e["pid"]: e.get("args", {}).get("name", "") for e in events
             if e.get("ph") == "M" and e.get("name") == "process_name"}
    threads = {(e["pid"], e["tid"]): e.get("args", {}).get("name", "") for e in events
               if e.get("ph") == "M" and e.get("name") == "thread_name"}
    complete = [e for e in events if e.get("ph") == "X" and "dur" in e]
    on_device = [e for e in complete if names.get(e["pid"], "").startswith("/device:")]
    if on_device:
        return on_device
    wrappers = ("ThunkExecutor", "ThreadPool")  # events that enclose the kernels below them
    return [e for e in complete if "XLAEigen" in threads.get((e["pid"], e["tid"]), "")
            and not any(w in e["name"] for w in wrappers)]


def summarise(events: list[dict], calls: int) -> dict[str, Any]:
    """Device time per call: total, per kernel class, and the 40 costliest kernel names
    (microseconds per call, launches per call, and the HLO op where the trace names it)."""
    by_name: dict[str, list[float]] = {}
    hlo: dict[str, str] = {}
    for e in events:
        by_name.setdefault(e["name"], []).append(float(e["dur"]))
        op = e.get("args", {}).get("hlo_op")
        if op:
            hlo.setdefault(e["name"], op)
    by_class: dict[str, float] = {}
    for name, durs in by_name.items():
        by_class[kernel_class(name)] = by_class.get(kernel_class(name), 0.0) + sum(durs) / calls
    top = sorted(by_name.items(), key=lambda kv: -sum(kv[1]))[:40]
    return {"device_us_per_call": sum(float(e["dur"]) for e in events) / calls,
            "launches_per_call": len(events) / calls,
            "classes_us_per_call": dict(sorted(by_class.items(), key=lambda kv: -kv[1])),
            "top": [{"kernel": name[:160], "us_per_call": sum(d) / calls, "launches_per_call": len(d) / calls,
                     "hlo_op": hlo.get(name, "")} for name, d in top]}


def format_summary(tag: str, summary: dict[str, Any], wall_seconds: float) -> str:
    """The summary as a short text table."""
    lines = [f"profile {tag}: wall {wall_seconds * 1e3:.2f} ms/call, device busy "
             f"{summary['device_us_per_call'] / 1e3:.2f} ms/call, {summary['launches_per_call']:.0f} kernels/call"]
    for label, us in summary["classes_us_per_call"].items():
        lines.append(f"  {label:28s} {us / 1e3:8.3f} ms")
    lines.append("  costliest kernels (ms/call, launches/call, name, hlo op):")
    for row in summary["top"]:
        lines.append(f"  {row['us_per_call'] / 1e3:8.3f} {row['launches_per_call']:6.0f}  {row['kernel'][:90]}  "
                     f"{row['hlo_op'][:40]}")
    return "\n".join(lines)


def write_hlo(text: str, out_dir: str, tag: str) -> str:
    """Writes a compiled program's optimised HLO text, gzipped, to `out_dir/hlo_<tag>.txt.gz`
    (the profile names each fusion kernel; this says what each fusion computes) → the path."""
    path = os.path.join(out_dir, f"hlo_{tag}.txt.gz")
    with atomic_path(path, suffix=".gz") as tmp:
        with gzip.open(tmp, "wt") as f:
            f.write(text)
    return path


def profile_calls(fn: Callable[[], Any], calls: int, out_dir: str | None, tag: str) -> dict[str, Any]:
    """Traces `calls` calls of `fn` (already compiled) and summarises the device's kernels;
    with `out_dir`, writes the Perfetto trace and the text summary there."""
    import time

    import jax

    jax.block_until_ready(fn())
    log_dir = tempfile.mkdtemp(prefix="audiolm_profile_")
    try:
        with jax.profiler.trace(log_dir, create_perfetto_trace=True):
            start = time.perf_counter()
            for _ in range(calls):
                out = fn()
            jax.block_until_ready(out)
            wall = (time.perf_counter() - start) / calls
        (path,) = glob.glob(os.path.join(log_dir, "**", "perfetto_trace.json.gz"), recursive=True)
        with gzip.open(path, "rt") as f:
            summary = summarise(device_events(json.load(f)), calls)
        summary["wall_us_per_call"] = wall * 1e6
        text = format_summary(tag, summary, wall)
        print(text, flush=True)
        if out_dir:
            with atomic_path(os.path.join(out_dir, f"trace_{tag}.json.gz")) as tmp:
                shutil.copyfile(path, tmp)
            write_text(os.path.join(out_dir, f"profile_{tag}.txt"), text + "\n")
        return summary
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
