"""Preemption: SIGKILL the demo's training in a subprocess — once provably in the middle of
an async checkpoint write, once mid-run — run the same command again, and end with exactly
the params and logged losses of an uninterrupted run. The uninterrupted run also shows that
nothing is written outside the given workdir (HOME and the working directory stay empty)."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from audiolm_jax import checkpoint, sample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = ["--train.steps=40", "--train.checkpoint_every=10", "--train.eval_every=20", "--train.log_every=5",
        "--data.synthetic_train_clips=16", "--data.synthetic_eval_clips=2", "--sample.num_prompts=1",
        "--sample.seconds=0.5", "--sample.griffin_lim_iters=2", "--model.num_layers=2", "--model.d_model=64"]


def demo(workdir, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "experiments.demo", *ARGS, f"--workdir={workdir}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kwargs)


def writes_in_progress(workdir) -> list[str]:
    """Orbax's temporary directories of saves not yet finalised (renamed to `<step>`)."""
    try:
        return [n for n in os.listdir(checkpoint.checkpoint_dir(workdir)) if ".orbax-checkpoint-tmp" in n]
    except FileNotFoundError:
        return []


def kill_during_a_checkpoint_write(workdir) -> int:
    """Runs the demo until a save is caught in flight, SIGKILLs it there; returns that step.

    Proof that the kill landed mid-write: after the process is gone, the save's temporary
    directory is still there and its final `<step>` directory never appeared. A save that
    finishes between seeing it and the kill is not proof; the run resumes and tries again.
    """
    for _ in range(5):
        proc = demo(workdir)
        while proc.poll() is None:
            pending = writes_in_progress(workdir)
            if pending:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                step = int(pending[0].split(".")[0])
                final = os.path.join(checkpoint.checkpoint_dir(workdir), str(step))
                if pending[0] in writes_in_progress(workdir) and not os.path.exists(final):
                    return step
                break
            time.sleep(0.001)
        assert proc.returncode != 0 or checkpoint.latest_step(workdir) != 40, "finished without a kill"
    raise AssertionError("no checkpoint write was caught in flight in 5 tries")


def listing(folder) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, n), folder) for d, dirs, names in os.walk(folder)
                  for n in dirs + names)


def losses(workdir) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(workdir, "tensorboard"))
    events.Reload()
    return {e.step: e.value for e in events.Scalars("train/loss")}  # the last value logged per step


def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path):
    whole, cut = str(tmp_path / "whole"), str(tmp_path / "cut")
    home, cwd, cache = tmp_path / "home", tmp_path / "cwd", tmp_path / "mplcache"
    for folder in (home, cwd):
        folder.mkdir()
    isolated = dict(os.environ, HOME=str(home), MPLCONFIGDIR=str(cache), PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, "-m", "experiments.demo", *ARGS, f"--workdir={whole}"], cwd=cwd,
                         env=isolated, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert listing(home) == [] and listing(cwd) == []  # every file went below --workdir
    assert {"checkpoints", "tfds", "samples", "config.json", "norm_stats.json"} <= set(os.listdir(whole))

    in_flight = kill_during_a_checkpoint_write(cut)
    assert checkpoint.latest_step(cut) is None or checkpoint.latest_step(cut) < in_flight  # never picked up

    proc = demo(cut)
    deadline = time.time() + 600
    while checkpoint.latest_step(cut) is None or checkpoint.latest_step(cut) < 20:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.time() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # often mid-way through the next async save
    proc.wait()
    killed_at = checkpoint.latest_step(cut)
    assert killed_at is not None and 20 <= killed_at < 40
    # and, deterministically, a save cut off half-way, as Orbax leaves one: never picked up
    partial = os.path.join(checkpoint.checkpoint_dir(cut), f"{killed_at + 10}.orbax-checkpoint-tmp-1764170000000000")
    os.makedirs(os.path.join(partial, "state"), exist_ok=True)
    with open(os.path.join(partial, "state", "manifest.ocdbt"), "wb") as f:
        f.write(b"\x00" * 100)
    assert checkpoint.latest_step(cut) == killed_at

    rerun = demo(cut)
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read()[-2000:]
    assert checkpoint.latest_step(cut) == 40

    a, b = sample.restore_sampler(whole, ["--sample.use_ema=false"]), sample.restore_sampler(cut, ["--sample.use_ema=false"])
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    ea, eb = sample.restore_sampler(whole), sample.restore_sampler(cut)
    for x, y in zip(jax.tree.leaves(ea.params), jax.tree.leaves(eb.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert losses(whole) == losses(cut)
    assert sorted(losses(whole)) == list(range(5, 41, 5))
