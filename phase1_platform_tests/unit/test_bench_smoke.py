"""The engine benchmark runs end to end on a small size and its parity check passes.

No timing assertions: only that every figure is there and the engine's bars equal the
pandas, polars and streaming results inside the benchmark.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

pytest.importorskip("polars")

from benchmarks import bench_engine  # noqa: E402

REQUIRED = (
    "engine_ticks_per_s",
    "engine_vs_polars",
    "engine_vs_pandas",
    "normalize_ticks_per_s",
    "stream_tick_ticks_per_s",
    "stream_batch_ticks_per_s",
    "peak_rss_mb",
)


def test_quick_engine_benchmark_reports_every_figure_and_parity(capsys):
    figures = bench_engine.run(quick=True)
    for key in REQUIRED:
        assert key in figures, key
        assert isinstance(figures[key], float) and math.isfinite(figures[key]) and figures[key] > 0
    assert figures["engine_parity_ok"] is True
    assert figures["engine_bench_ticks"] == 200_000
    out = capsys.readouterr().out
    assert "BarEngine.build" in out and "OK, every bar of every timeframe" in out


def test_synthetic_ticks_are_canonical_regular_session_ticks():
    from phase1_platform.core.calendar import sessions_between
    from phase1_platform.core.engine import ensure_canonical
    from phase1_platform.core.schema import TICK_COLUMNS, ts_ns

    ticks = bench_engine.synthetic_ticks(20_000, days=4)
    assert list(ticks.columns) == list(TICK_COLUMNS)
    pd.testing.assert_frame_equal(ticks, ticks.astype(TICK_COLUMNS))
    assert ensure_canonical(ticks) is ticks
    ts = ts_ns(ticks["ts"])
    sessions = sessions_between(int(ts.min()), int(ts.max()))
    assert (sessions.locate(ts) >= 0).all()
    assert len(set(sessions.locate(ts).tolist())) == 4
    assert ((ticks["price"] * 100).round(6) % 1 == 0).all()
    assert (ticks["size"] % 100 == 0).mean() > 0.7
