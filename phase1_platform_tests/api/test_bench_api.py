"""The read API benchmark runs end to end on its quick size: every figure is there and its
own checks hold (the JSON page holds every bar of the day, the CSV equals ``phase1 export``).
No timing assertion: benchmarks report, issues set the bar."""

from __future__ import annotations

import math

from benchmarks import bench_api

FIGURES = ("api_bars_p50_ms", "api_bars_p99_ms", "api_bars_rps", "api_vs_store_ratio",
           "api_bars_csv_p50_ms", "api_bars_csv_p99_ms", "api_bars_csv_rps",
           "api_csv_vs_store_ratio", "store_read_p50_ms", "store_read_rps")


def test_quick_api_benchmark_reports_every_figure(capsys):
    figures = bench_api.run(quick=True)
    for key in FIGURES:
        assert isinstance(figures[key], float) and math.isfinite(figures[key]) \
            and figures[key] > 0, key
    assert figures["api_bars_p99_ms"] >= figures["api_bars_p50_ms"]
    assert figures["api_bench_bars"] > 0
    out = capsys.readouterr().out
    assert "GET /v1/bars JSON" in out and "store read (direct)" in out
