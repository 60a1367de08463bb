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
