"""`python -m benchmarks` runs the CPU benchmarks only and judges rows by their spread."""

from benchmarks import __main__ as bench


def test_the_suite_runs_cpu_benchmarks_only():
    chosen = bench.names()
    assert {"features", "inversion", "train_step", "sampling", "input_pipeline"} <= set(chosen)
    assert not {"gpu_check", "gpu_profile", "corpora", "common"} & set(chosen)


def test_a_row_is_met_only_when_its_spread_clears_the_target():
    row = {"benchmark": "b", "case": "c", "ours": 1.0, "reference": 2.4, "unit": "s", "ratio": 2.4, "target": 2.0}
    assert bench.met(row)
    assert not bench.met({**row, "ratio_low": 1.85})
    assert "| no " in bench.table([{**row, "ratio_low": 1.85}])


def test_a_benchmark_run_as_the_program_sets_up_the_process_like_a_run():
    """`python -m benchmarks.train_step` must get the allocator set-up every run gets
    (runtime.keep_freed_memory): the check looked at `__main__.__spec__`, which is None
    while `-m` imports the package, so no benchmark got it (tiny step 0.214 s, 0.131 s with it)."""
    from benchmarks import is_the_program

    python = "/usr/bin/python3"
    assert is_the_program([python, "-m", "benchmarks.train_step"])
    assert is_the_program([python, "-X", "importtime", "-m", "benchmarks"])
    assert not is_the_program([python, "-m", "pytest", "tests/test_benchmarks_table.py"])
    assert not is_the_program([python, "-c", "import benchmarks"])
    assert not is_the_program([python, "-m"])


def test_the_matmul_peak_is_a_timed_side_like_the_steps():
    """The train-step benchmark times the matmul peak in the same interleaved rounds as the
    steps (a peak read once before them put the small step at 0.67 of it in one run and
    0.80 in another): `matmul_calls` is one timed sample, with the FLOPs it does."""
    import numpy as np

    from benchmarks.train_step import matmul_calls

    run, flops = matmul_calls(64, calls=3)
    assert flops == 2 * 64**3 * 3
    np.testing.assert_allclose(np.asarray(run()), np.full((64, 64), 64.0))
