"""Two processes on loopback (jax.distributed with CPU gloo collectives), two simulated devices
each, prepare one dataset (process 0 builds it while process 1 waits), train a few steps and
end with the params and the validation metrics of one process on one device."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np

from audiolm_jax import train
from tests.helpers import random_walk_data, tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import jax, numpy as np
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address="127.0.0.1:{port}", num_processes=2, process_id={pid})
    from audiolm_jax import train
    from tests.helpers import random_walk_data, tiny_config
    assert jax.process_count() == 2 and jax.device_count() == 4
    from audiolm_jax.data import prepare
    prepared = prepare(tiny_config({prepdir!r}))  # process 0 builds the tfds dataset, process 1 waits
    cfg = tiny_config({workdir!r}, train={{"steps": 5, "checkpoint_every": 5}})
    result = train.train(cfg, random_walk_data())
    params = [np.asarray(x.addressable_data(0)).ravel().tolist() for x in jax.tree.leaves(result.state.params)]
    print(json.dumps({{"losses": [h["loss"] for h in result.history], "params": params, "eval": result.eval_metrics,
                      "stats": prepared.stats.mean.tolist(), "clips": len(prepared.train)}}))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process(tmp_path):
    port = free_port()
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    # Output goes to files: a full pipe would block one process inside a collective.
    logs = [(open(tmp_path / f"out{pid}", "w+"), open(tmp_path / f"err{pid}", "w+")) for pid in (0, 1)]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER.format(root=ROOT, port=port, pid=pid,
                                                                   workdir=str(tmp_path / "multi"),
                                                                   prepdir=str(tmp_path / "prep"))],
                              cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
             for pid, (out, err) in zip((0, 1), logs)]
    outs = []
    for proc, (out, err) in zip(procs, logs):
        proc.wait(timeout=300)
        out.seek(0)
        err.seek(0)
        assert proc.returncode == 0, err.read()[-3000:]
        outs.append(json.loads(out.read().strip().splitlines()[-1]))
    assert outs[0] == outs[1]  # both processes hold the same replicated state and the same data
    assert outs[0]["clips"] == 8 and len(os.listdir(tmp_path / "prep" / "tfds" / "synthetic_piano")) == 2  # config + .config

    single = train.train(tiny_config(str(tmp_path / "single"), train={"steps": 5, "checkpoint_every": 5}),
                         random_walk_data(), mesh=train.make_mesh(jax.devices()[:1]))
    np.testing.assert_allclose(outs[0]["losses"], [h["loss"] for h in single.history], rtol=1e-5)
    for key, value in single.eval_metrics.items():  # the same evaluation set, not 2 copies of half of it
        np.testing.assert_allclose(outs[0]["eval"][key], value, rtol=1e-5, err_msg=key)
    for multi, one in zip(outs[0]["params"], jax.tree.leaves(single.state.params)):
        np.testing.assert_allclose(multi, np.asarray(one).ravel(), atol=1e-5)


RUN_WORKER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    from audiolm_jax import run
    from tests.helpers import tiny_config
    cfg = tiny_config({workdir!r}, train={{"steps": 4, "checkpoint_every": 2, "eval_every": 4, "distributed": True,
                                           "num_processes": 2, "process_id": {pid}}})
    metrics = run.run(cfg)  # the coordinator from $JAX_COORDINATOR_ADDRESS
    assert jax.process_count() == 2
    print(json.dumps({{k: v for k, v in metrics.items() if k != "train_seconds"}}))
""")


def test_the_whole_run_on_two_processes(tmp_path):
    # run.run end to end on 2 processes: process 0 prepares the data while process 1 waits,
    # both train and evaluate, process 0 alone writes the workdir's files and samples.
    port = free_port()
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
               JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}")
    workdir = tmp_path / "run"
    logs = [(open(tmp_path / f"out{pid}", "w+"), open(tmp_path / f"err{pid}", "w+")) for pid in (0, 1)]
    procs = [subprocess.Popen([sys.executable, "-c", RUN_WORKER.format(root=ROOT, pid=pid, workdir=str(workdir))],
                              cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
             for pid, (out, err) in zip((0, 1), logs)]
    outs = []
    for proc, (out, err) in zip(procs, logs):
        try:
            proc.wait(timeout=400)
        except subprocess.TimeoutExpired:  # a hung process: stop both, then fail
            for other in procs:
                other.kill()
            raise
        out.seek(0)
        err.seek(0)
        assert proc.returncode == 0, err.read()[-3000:]
        outs.append(json.loads(out.read().strip().splitlines()[-1]))
    assert outs[0] == outs[1]  # the same validation metrics on both processes
    assert np.isfinite(outs[0]["val_mse"])
    assert json.loads((workdir / "metrics.json").read_text())["val_mse"] == outs[0]["val_mse"]
    assert (workdir / "samples" / "index.html").exists() and list((workdir / "samples").glob("*.wav"))
    assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]


def test_distributed_arguments_come_from_the_config_else_the_environment():
    from audiolm_jax import config as C, run

    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "8", "JAX_PROCESS_ID": "3"}
    assert run.distributed_arguments(C.TrainConfig(), env) == {
        "coordinator_address": "10.0.0.1:1234", "num_processes": 8, "process_id": 3}
    given = C.TrainConfig(coordinator_address="host:99", num_processes=2, process_id=0)
    assert run.distributed_arguments(given, env) == {"coordinator_address": "host:99", "num_processes": 2,
                                                     "process_id": 0}
    assert run.distributed_arguments(C.TrainConfig(), {}) == {  # a TPU pod / SLURM: JAX detects them
        "coordinator_address": None, "num_processes": None, "process_id": None}
