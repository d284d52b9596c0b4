"""``benchmarks.bench_dagster`` end to end on the shipped SPY slice: ``dagster asset
materialize`` and ``phase1 replay --database-url`` as a user runs them (real processes),
their exports byte-identical (the benchmark checks it), every figure reported. No timing
assertion: the figures are the benchmark's to report."""

from __future__ import annotations

import math

from benchmarks import bench_dagster


def test_materialize_and_replay_export_the_same_bytes_and_report_the_ratio(capsys):
    figures = bench_dagster.run(quick=True, tick_file=bench_dagster.FIXTURE)
    assert set(figures) == {"dagster_vs_replay_ratio", "dagster_materialize_s", "replay_s",
                            "event_log_ms_stock", "event_log_ms_kept"}
    assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in figures.values())
    assert "exports identical" in capsys.readouterr().out
