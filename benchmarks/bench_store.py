"""Store benchmark: landing ticks, landing them again (every row already stored: the
staged path that compares identities and content), writing bars, and reading one day of
1m bars, on SQLite and PostgreSQL.

Targets (issue 3): PostgreSQL >= 300k ticks/s, SQLite >= 100k ticks/s.
Each run uses a fresh SQLite file in a temporary folder and a fresh PostgreSQL schema
(``PHASE1_BENCH_PG_URL``, default the local server's ``test`` database), both removed
afterwards. Without a reachable PostgreSQL the pg figures are reported as null.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from phase1_platform.core import trading_day_window
from phase1_platform.core.engine import sort_bars
from phase1_platform.core.normalizer import canonical_sort
from phase1_platform.core.partition import Partition
from phase1_platform.core.schema import BAR_COLUMNS, TICK_COLUMNS, notional_units, qty_units
from phase1_platform.storage import BarRepository, Store

PG_URL = os.environ.get("PHASE1_BENCH_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DAYS = pd.bdate_range("2013-10-07", periods=60).strftime("%Y-%m-%d").tolist()


def make_ticks(n: int, symbols=("SPY", "QQQ", "IWM", "DIA"), seed: int = 0) -> pd.DataFrame:
    """n normalized ticks: one regular session per (symbol, day) file, canonical order."""
    rng = np.random.default_rng(seed)
    per_file = 250_000
    frames = []
    made = 0
    for day, symbol in ((d, s) for d in DAYS for s in symbols):
        k = min(per_file, n - made)
        if k <= 0:
            break
        open_ns = trading_day_window(day)[0] + (9 * 3600 + 1800) * 10**9
        ts = open_ns + np.sort(rng.integers(0, 23_400 * 10**9, k))
        frames.append(pd.DataFrame({
            "ts": pd.to_datetime(ts, utc=True).as_unit("ns"),
            "symbol": symbol,
            "price": np.round(100 + np.cumsum(rng.normal(0, 0.01, k)), 4),
            "size": rng.integers(1, 1000, k).astype("float64"),
            "exchange": rng.choice(["P", "Q", "N", "Z"], k),
            "conditions": rng.choice(["", "@", "@ F", "T"], k),
            "trade_id": "",
            "sequence": -1,
            "source": f"{day}/{symbol}.csv",
            "source_row": np.arange(k, dtype="int64"),
        }))
        made += k
    ticks = pd.concat(frames, ignore_index=True).astype(TICK_COLUMNS)
    return canonical_sort(ticks).reset_index(drop=True)  # as the normalizer delivers them


def make_bar_partitions(n_bars: int, seed: int = 1) -> list[tuple[str, str, pd.DataFrame]]:
    """(day, symbol, bars) partitions of ~500 bars each (1m..1d of one session)."""
    rng = np.random.default_rng(seed)
    parts = []
    total = 0
    symbols = [f"S{i:03d}" for i in range(200)]
    for day in DAYS:
        for symbol in symbols:
            if total >= n_bars:
                return parts
            start = trading_day_window(day)[0] + (9 * 3600 + 1800) * 10**9
            frames = []
            for tf, step, count in (("1m", 60, 390), ("5m", 300, 78), ("15m", 900, 26),
                                    ("1h", 3600, 7)):
                count = min(count, n_bars - total)
                if count <= 0:
                    break
                ts = start + np.arange(count, dtype="int64") * step * 10**9
                price = np.round(100 + rng.normal(0, 1, count), 4)
                size = rng.integers(100, 10_000, count).astype("float64")
                frames.append(pd.DataFrame({
                    "symbol": symbol, "timeframe": tf, "ts": ts,
                    "open": price, "high": price + 0.05, "low": price - 0.05, "close": price,
                    "qty": qty_units(size), "notional": notional_units(price, size),
                    "trade_count": rng.integers(1, 50, count),
                }))
                total += count
            parts.append((day, symbol, sort_bars(pd.concat(frames, ignore_index=True)
                                                 .astype(BAR_COLUMNS))))
    return parts


def _pg_schema():
    """(url, drop) of a fresh schema, or (None, reason) when PostgreSQL is unreachable."""
    try:
        import psycopg

        admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
    except Exception as exc:  # noqa: BLE001 - reported, the pg figures become null
        return None, str(exc).strip().splitlines()[0]

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{name}", drop


def bench_backend(url: str, ticks: pd.DataFrame, parts) -> dict[str, float]:
    store = Store.from_url(url)
    try:
        repo_ticks = store.ticks
        t0 = time.perf_counter()
        landed = repo_ticks.land(ticks)
        tick_s = time.perf_counter() - t0
        assert landed.new == len(ticks), (landed, len(ticks))
        t0 = time.perf_counter()
        again = repo_ticks.land(ticks)
        again_s = time.perf_counter() - t0
        assert again.already == len(ticks) and again.refused == 0, again
        repo = BarRepository(store)
        n_bars = 0
        t0 = time.perf_counter()
        for day, symbol, bars in parts:
            n_bars += repo.write_partition(bars, Partition(day, symbol), "default", "bench")
        bar_s = time.perf_counter() - t0
        return {"ticks_per_s": len(ticks) / tick_s, "ticks_s": tick_s,
                "again_per_s": len(ticks) / again_s,
                "bars_per_s": n_bars / bar_s, "bars_s": bar_s, "bars": n_bars,
                "read_ms": bench_read(store, parts[0])}
    finally:
        store.dispose()


def bench_read(store: Store, part) -> float:
    """Median ms to read one partition's 1m bars from the store."""
    day, symbol, bars = part
    repo = BarRepository(store)
    samples = []
    for _ in range(20):
        t0 = time.perf_counter()
        got = repo.read_partition(Partition(day, symbol), ["1m"])
        samples.append((time.perf_counter() - t0) * 1000)
    assert len(got) == (bars["timeframe"] == "1m").sum()
    return statistics.median(samples)


def run(quick: bool = False) -> dict:
    n_ticks = 100_000 if quick else 1_000_000
    n_bars = 10_000 if quick else 100_000
    ticks = make_ticks(n_ticks)
    parts = make_bar_partitions(n_bars)
    results: dict[str, dict[str, float] | None] = {}
    with tempfile.TemporaryDirectory(prefix="phase1-bench-") as tmp:
        results["sqlite"] = bench_backend(f"sqlite:///{Path(tmp) / 'bench.sqlite'}", ticks, parts)
    url, drop = _pg_schema()
    if url is None:
        print(f"PostgreSQL skipped: {drop}")
        results["pg"] = None
    else:
        try:
            results["pg"] = bench_backend(url, ticks, parts)
        finally:
            drop()

    print(f"{'backend':<12}{'ticks':>10}{'ticks/s':>12}{'again/s':>12}{'bars':>9}"
          f"{'bars/s':>11}{'read ms':>10}")
    for name, r in results.items():
        if r is None:
            print(f"{name:<12}{'n/a':>10}")
            continue
        print(f"{name:<12}{n_ticks:>10}{r['ticks_per_s']:>12,.0f}{r['again_per_s']:>12,.0f}"
              f"{r['bars']:>9}{r['bars_per_s']:>11,.0f}{r['read_ms']:>10.2f}")
    sq, pg = results["sqlite"], results["pg"]
    figures = {
        "sqlite_ticks_per_s": round(sq["ticks_per_s"]),
        "pg_ticks_per_s": round(pg["ticks_per_s"]) if pg else None,
        "sqlite_reland_ticks_per_s": round(sq["again_per_s"]),
        "pg_reland_ticks_per_s": round(pg["again_per_s"]) if pg else None,
        "sqlite_bars_per_s": round(sq["bars_per_s"]),
        "pg_bars_per_s": round(pg["bars_per_s"]) if pg else None,
        "sqlite_read_1m_day_ms": round(sq["read_ms"], 3),
        "pg_read_1m_day_ms": round(pg["read_ms"], 3) if pg else None,
    }
    print("targets: pg >= 300,000 ticks/s, sqlite >= 100,000 ticks/s")
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in os.sys.argv), sort_keys=True))
