"""The GPU check runs where there is no TensorFlow, tfds, librosa or soundfile (the GPU image
has none of them): here, at toy sizes on the CPU, with those modules made unimportable."""

import importlib.util
import json
import os
import subprocess
import sys

BLOCK = """
import sys, runpy
class Hiding:  # every finder, made blind to the modules the GPU image lacks (as if not installed)
    def __init__(self, inner):
        self.inner = inner
    def __getattr__(self, attr):
        return getattr(self.inner, attr)
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'tensorflow_datasets', 'librosa', 'soundfile'):
            return None
        return self.inner.find_spec(name, path, target)
sys.meta_path[:] = [Hiding(f) for f in sys.meta_path]
sys.argv = ['gpu_check'] + sys.argv[1:]
runpy.run_module('benchmarks.gpu_check', run_name='__main__')
"""


def test_gpu_check_runs_at_toy_size_without_tensorflow_or_librosa(tmp_path):
    # librispeech_base's blocks: no biases, a bfloat16 residual stream (the reference's alike)
    args = ["--tiny", "--variants", "--quick", "--profile", "--then-check", "--experiment=librispeech_base"]
    args += [] if importlib.util.find_spec("torch") else ["--no-reference"]
    env = dict(os.environ, OUT=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", BLOCK, *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    by_benchmark = {}
    for line in lines:
        by_benchmark.setdefault(line["benchmark"], []).append(line)
    assert len(by_benchmark["gpu_decode"]) == 2  # batch 1 and 16
    assert by_benchmark["gpu_check"][0]["blocks"] == {"block_biases": False, "residual_dtype": "bfloat16"}
    mfu = [r for r in by_benchmark["gpu_train_step"] if r["unit"] == "fraction"][0]
    assert 0 < mfu["ours"] < 1.5, mfu  # a utilisation, against a peak measured in the same run
    for decoded in by_benchmark["gpu_decode"]:
        assert decoded["real_time_factor"] > 0
    # the traced step, summarised by kernel: where the time goes, with the trace beside it
    summary = (tmp_path / "profile_tiny_as_configured.txt").read_text()
    busy = float(summary.split("device busy ")[1].split(" ms")[0])
    assert busy > 0, summary
    assert (tmp_path / "trace_tiny_as_configured.json.gz").stat().st_size > 1000
    import gzip  # ... and what each fusion the profile names computes: the step's optimised HLO
    with gzip.open(tmp_path / "hlo_tiny_as_configured.txt.gz", "rt") as f:
        hlo = f.read()
    assert hlo.startswith("HloModule") and "fusion" in hlo


def test_profile_summary_groups_device_kernels_by_class():
    from benchmarks.gpu_profile import summarise, device_events

    trace = {"traceEvents": [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "/device:GPU:0"}},
        {"ph": "M", "name": "process_name", "pid": 2, "args": {"name": "/host:CPU"}},
        {"ph": "X", "pid": 1, "tid": 1, "name": "sm90_xmma_gemm_bf16", "dur": 30.0, "args": {"hlo_op": "dot.1"}},
        {"ph": "X", "pid": 1, "tid": 1, "name": "sm90_xmma_gemm_bf16", "dur": 50.0},
        {"ph": "X", "pid": 1, "tid": 1, "name": "loop_add_fusion", "dur": 20.0},
        {"ph": "X", "pid": 2, "tid": 1, "name": "PjitFunction", "dur": 999.0}]}
    summary = summarise(device_events(trace), calls=2)
    assert summary["device_us_per_call"] == 50.0  # the host's event is not device time
    assert summary["classes_us_per_call"] == {"matmul": 40.0, "elementwise fusion": 10.0}
    assert summary["top"][0] == {"kernel": "sm90_xmma_gemm_bf16", "us_per_call": 40.0, "launches_per_call": 1.0,
                                 "hlo_op": "dot.1"}


def test_projection_with_gradients_apart_matches_the_fused_projection():
    """The candidate q/k/v projection (gradients computed apart, not concatenated) is the
    model's fused projection in value and in every gradient, with biases and without."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from audiolm_jax.model import fused_heads_projection
    from benchmarks.gpu_check import projection_with_gradients_apart

    keys = jax.random.split(jax.random.key(0), 7)
    x = jax.random.normal(keys[0], (2, 5, 16))
    for biased in (True, False):
        weights = [(jax.random.normal(keys[1 + i], (16, 4, 3)),
                    jax.random.normal(keys[4 + i], (4, 3)) if biased else None) for i in range(3)]

        def loss(projection, x, weights):
            q, k, v = projection(x, weights, jnp.float32)
            return jnp.sum(jnp.sin(q) * k + v ** 2)  # each output's gradient different

        ours = jax.grad(lambda x, w: loss(projection_with_gradients_apart, x, w), argnums=(0, 1))(x, weights)
        model = jax.grad(lambda x, w: loss(fused_heads_projection, x, w), argnums=(0, 1))(x, weights)
        assert jax.tree.structure(ours) == jax.tree.structure(model)
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(model)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        for a, b in zip(projection_with_gradients_apart(x, weights, jnp.float32),
                        fused_heads_projection(x, weights, jnp.float32)):
            np.testing.assert_allclose(a, b, rtol=1e-6)


def test_flag_variants_time_each_named_variant_under_each_flag_set(tmp_path):
    """`--flag-variants --flags=WORD --flag-only=A,B`: each of A and B timed in a subprocess
    under every XLA flag set whose name holds WORD, one JSON row each naming its flags."""
    args = ["--tiny", "--no-reference", "--variants", "--only=as configured", "--no-forward", "--flag-variants",
            "--flags=+ cuBLASLt", "--flag-only=as configured,batch x2"]
    env = dict(os.environ, OUT=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", BLOCK, *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    flagged = [r for r in rows if "xla_flags" in r]
    assert [r["case"] for r in flagged] == ["tiny: as configured + cuDNN GEMM fusions + cuBLASLt",
                                            "tiny: batch x2 + cuDNN GEMM fusions + cuBLASLt"], flagged
    for row in flagged:
        assert "error" not in row and row["xla_flags"].split() == ["--xla_gpu_cudnn_gemm_fusion_level=3",
                                                                   "--xla_gpu_enable_cublaslt=true"]
        assert row["step_seconds"] > 0 and 0 < row["ours"] < 1.5


def test_profile_calls_writes_its_files_into_a_folder_it_makes(tmp_path):
    """`profile_calls` with an `out_dir` that does not exist yet (as `small_step`-style scripts
    pass one) made the trace and crashed in `shutil.copyfile`; it now makes the folder and
    writes the trace, the summary and the HLO atomically (no temporary file left behind)."""
    import gzip

    import jax
    import jax.numpy as jnp

    from benchmarks.gpu_profile import profile_calls, write_hlo

    x = jnp.ones((64, 64))
    step = jax.jit(lambda a: a @ a)
    out_dir = tmp_path / "new" / "profiles"
    summary = profile_calls(lambda: step(x), calls=2, out_dir=str(out_dir), tag="tiny")
    assert summary["device_us_per_call"] >= 0
    write_hlo(step.lower(x).compile().as_text(), str(out_dir), "tiny")
    assert sorted(os.listdir(out_dir)) == ["hlo_tiny.txt.gz", "profile_tiny.txt", "trace_tiny.json.gz"]
    with gzip.open(out_dir / "trace_tiny.json.gz", "rt") as f:
        assert "traceEvents" in json.load(f)
    assert (out_dir / "profile_tiny.txt").read_text().startswith("profile tiny")
