"""``python -m benchmarks.bench_scale`` keeps working: a tiny day through the platform
(ticks in the Parquet store, or the SQL one), its PostgreSQL sample and the DuckDB
baseline, every figure reported. No timing is asserted."""

from __future__ import annotations

import json

import pytest

from phase1_platform_tests.support.stores import require_postgres

pytest.importorskip("duckdb")

from benchmarks import bench_scale  # noqa: E402

STAGES = ("normalize_in", "land", "read", "normalize", "build", "store")


@pytest.mark.postgres
@pytest.mark.parametrize("tick_store", ["parquet", "sql"])
def test_tiny_day_reports_every_figure(tick_store, tmp_path, capsys):
    require_postgres()
    args = ["--ticks", "3000", "--symbols", "12", "--slice-ticks", "1000", "--pg-every", "2",
            "--database-url", f"sqlite:///{tmp_path / 'bars.sqlite'}",
            "--tick-store", f"parquet://{tmp_path / 'ticks'}" if tick_store == "parquet"
            else "sql"]
    assert bench_scale.main(args) == 0
    out = capsys.readouterr().out
    fig = json.loads(out.strip().splitlines()[-1])
    assert fig["scale_ticks"] == 3000 and fig["scale_symbols"] == 12
    assert ("ParquetTicks" in fig["scale_tick_store"]) == (tick_store == "parquet")
    for prefix in ("scale_", "scale_pg_"):
        for stage in STAGES:
            assert fig[f"{prefix}{stage}_s"] > 0, (prefix, stage)
            assert fig[f"{prefix}{stage}_ticks_per_s"] > 0, (prefix, stage)
        assert fig[f"{prefix}other_s"] >= 0
        assert fig[f"{prefix}ticks_per_s"] > 0
    assert 0 < fig["scale_pg_sample_ticks"] < 3000  # every 2nd slice
    assert fig["scale_bars"] > fig["scale_pg_bars"] > 0
    assert fig["scale_duckdb_ticks_per_s"] > 0 and fig["scale_vs_duckdb_ratio"] > 0
    # the baseline computes the same 1m bars as the platform: a like-for-like comparison
    assert fig["scale_duckdb_1m_match_pct"] == 100.0
    assert fig["scale_peak_rss_mb"] > 0
    assert "platform/duckdb" in out
    assert fig["scale_pg_tick_bytes_per_tick"] > 0 and fig["scale_pg_bar_bytes_per_bar"] > 0
    if tick_store == "parquet":
        assert any((tmp_path / "ticks").rglob("*.parquet"))
        assert fig["scale_parquet_bytes_per_tick"] > 0
    else:
        assert fig["scale_parquet_bytes_per_tick"] is None
