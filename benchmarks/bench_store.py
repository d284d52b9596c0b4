"""Store benchmark: landing ticks, landing them again (every row already stored: the
staged path that compares identities and content), writing bars, and reading one day of
1m bars, on SQLite, PostgreSQL and the Parquet tick store (SQLite for the rest).

Then the tick stores side by side on the real SPY day of ``../shared/data`` (250,601
ticks; the shipped fixture slice when it is absent): landing it, landing it again,
reading the partition, its last hour, counting it, and the bytes on disk; and the
Parquet store landing many partitions in one call (``parquet_partitions_per_s``).

Targets (issue 3): PostgreSQL >= 300k ticks/s, SQLite >= 100k ticks/s.
Each run uses a fresh SQLite file and Parquet folder in a temporary folder and a fresh
PostgreSQL schema (``PHASE1_BENCH_PG_URL``, default the local server's ``test``
database), all removed afterwards. Without a reachable PostgreSQL the pg figures are
reported as null.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from phase1_platform.core import trading_day_window
from phase1_platform.core.engine import sort_bars
from phase1_platform.core.normalizer import TickNormalizer, canonical_sort
from phase1_platform.core.partition import Partition
from phase1_platform.core.schema import BAR_COLUMNS, TICK_COLUMNS, notional_units, qty_units
from phase1_platform.readers import read_ticks
from phase1_platform.storage import BarRepository, Store

PG_URL = os.environ.get("PHASE1_BENCH_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DAYS = pd.bdate_range("2013-10-07", periods=60).strftime("%Y-%m-%d").tolist()
ROOT = Path(__file__).resolve().parents[1]
SPY_REL = Path("lean/equity/usa/tick/spy/20131007_trade.zip")
SHARED_SPY = ROOT.parent / "shared" / "data" / SPY_REL
FIXTURE_SPY = ROOT / "fixtures" / SPY_REL


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


def bench_backend(url: str, ticks: pd.DataFrame, parts, tick_store: str = "sql"
                  ) -> dict[str, float]:
    store = Store.from_url(url, tick_store=tick_store)
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


def median_ms(fn, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def bench_day(url: str, tick_store: str, ticks: pd.DataFrame, part: Partition,
              disk) -> dict[str, float]:
    """One tick store on one real day: land, land again, read, read the last hour,
    count; ``disk(store)`` its bytes on disk."""
    store = Store.from_url(url, tick_store=tick_store)
    try:
        t0 = time.perf_counter()
        assert store.ticks.land(ticks).new == len(ticks)
        land_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert store.ticks.land(ticks).already == len(ticks)
        again_s = time.perf_counter() - t0
        back = store.ticks.read(part)
        pd.testing.assert_frame_equal(back, ticks.reset_index(drop=True))
        last_hour = part.end_ns - 5 * 3600 * 10**9  # 19:00 New York (EDT)
        return {"land_per_s": len(ticks) / land_s, "again_per_s": len(ticks) / again_s,
                "read_ms": median_ms(lambda: store.ticks.read(part)),
                "read_hour_ms": median_ms(lambda: store.ticks.read_since(part, last_hour)),
                "count_ms": median_ms(lambda: store.ticks.count_canonical(part)),
                "bytes_per_tick": disk(store) / len(ticks)}
    finally:
        store.dispose()


def _sqlite_bytes(path: Path):
    def size(store: Store) -> int:
        conn = sqlite3.connect(path)  # the whole file, its WAL folded in
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return path.stat().st_size
    return size


def _pg_ticks_bytes(store: Store) -> int:
    with store.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_total_relation_size('ticks')").scalar())


def _folder_bytes(folder: Path):
    return lambda store: sum(p.stat().st_size for p in folder.rglob("*.parquet"))


def bench_parquet_partitions(folder: Path, n_symbols: int, per_symbol: int = 50
                             ) -> dict[str, float]:
    """Land ``n_symbols`` symbols' days (``per_symbol`` ticks each) in one call."""
    rng = np.random.default_rng(2)
    open_ns = trading_day_window(DAYS[0])[0] + (9 * 3600 + 1800) * 10**9
    n = n_symbols * per_symbol
    ticks = canonical_sort(pd.DataFrame({
        "ts": pd.to_datetime(open_ns + rng.integers(0, 23_400 * 10**9, n), utc=True),
        "symbol": np.repeat([f"S{i:05d}" for i in range(n_symbols)], per_symbol),
        "price": np.round(rng.uniform(5, 500, n), 2), "size": 100.0, "exchange": "Q",
        "conditions": "", "trade_id": "", "sequence": -1, "source": "bench",
        "source_row": np.arange(n, dtype="int64"),
    }).astype(TICK_COLUMNS)).reset_index(drop=True)
    store = Store.from_url(f"sqlite:///{folder / 'many.sqlite'}",
                           tick_store=f"parquet://{folder / 'many'}")
    try:
        t0 = time.perf_counter()
        assert store.ticks.land(ticks).new == n
        land_s = time.perf_counter() - t0
        read_ms = median_ms(lambda: store.ticks.read(Partition(DAYS[0], "S00000")))
    finally:
        store.dispose()
    return {"partitions_per_s": n_symbols / land_s, "ticks_per_s": n / land_s,
            "read_ms": read_ms}


def run_day(tmp: Path, tick_file: Path) -> dict[str, dict[str, float] | None]:
    ticks = TickNormalizer(symbols=["SPY"]).normalize(read_ticks(tick_file)).ticks
    part = Partition("2013-10-07", "SPY")
    out: dict[str, dict[str, float] | None] = {
        "sqlite": bench_day(f"sqlite:///{tmp / 'day.sqlite'}", "sql", ticks, part,
                            _sqlite_bytes(tmp / "day.sqlite")),
        "parquet": bench_day(f"sqlite:///{tmp / 'day-pq.sqlite'}", f"parquet://{tmp / 'day'}",
                             ticks, part, _folder_bytes(tmp / "day")),
    }
    url, drop = _pg_schema()
    if url is None:
        out["pg"] = None
    else:
        try:
            out["pg"] = bench_day(url, "sql", ticks, part, _pg_ticks_bytes)
        finally:
            drop()
    print(f"real day {tick_file.name} ({len(ticks):,} ticks) per tick store:")
    print(f"{'store':<10}{'land/s':>12}{'again/s':>12}{'read ms':>10}{'hour ms':>10}"
          f"{'count ms':>10}{'B/tick':>8}")
    for name, r in out.items():
        if r is None:
            print(f"{name:<10}{'n/a':>12}")
            continue
        print(f"{name:<10}{r['land_per_s']:>12,.0f}{r['again_per_s']:>12,.0f}"
              f"{r['read_ms']:>10.1f}{r['read_hour_ms']:>10.1f}{r['count_ms']:>10.2f}"
              f"{r['bytes_per_tick']:>8.1f}")
    return out


def run(quick: bool = False) -> dict:
    n_ticks = 100_000 if quick else 1_000_000
    n_bars = 10_000 if quick else 100_000
    ticks = make_ticks(n_ticks)
    parts = make_bar_partitions(n_bars)
    results: dict[str, dict[str, float] | None] = {}
    with tempfile.TemporaryDirectory(prefix="phase1-bench-") as tmp:
        results["sqlite"] = bench_backend(f"sqlite:///{Path(tmp) / 'bench.sqlite'}", ticks, parts)
        results["parquet"] = bench_backend(f"sqlite:///{Path(tmp) / 'bench-pq.sqlite'}", ticks,
                                           parts, f"parquet://{Path(tmp) / 'ticks'}")
        tick_file = FIXTURE_SPY if quick or not SHARED_SPY.is_file() else SHARED_SPY
        day = run_day(Path(tmp), tick_file)
        many = bench_parquet_partitions(Path(tmp), 200 if quick else 8_000)
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
    print(f"parquet: one landing of {200 if quick else 8_000:,} partitions: "
          f"{many['partitions_per_s']:,.0f} partitions/s ({many['ticks_per_s']:,.0f} ticks/s), "
          f"read of one {many['read_ms']:.2f} ms")
    sq, pg, pq = results["sqlite"], results["pg"], results["parquet"]
    figures = {
        "parquet_ticks_per_s": round(pq["ticks_per_s"]),
        "parquet_reland_ticks_per_s": round(pq["again_per_s"]),
        "parquet_partitions_per_s": round(many["partitions_per_s"]),
        **{f"day_{name}_{key}": (round(r[key], 3) if r else None)
           for name, r in day.items()
           for key in ("land_per_s", "again_per_s", "read_ms", "read_hour_ms", "count_ms",
                       "bytes_per_tick")},
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
