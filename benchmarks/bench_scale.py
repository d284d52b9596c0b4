"""A full-tape day, measured: a synthetic day of the US equity tape landed and built into
bars through the platform, beside PostgreSQL (COPY) on a sample and a DuckDB-only baseline.

    python -m benchmarks.bench_scale                          # 40M trades, 8,000 symbols
    python -m benchmarks.bench_scale --ticks 4000000 --symbols 800
    python -m benchmarks.bench_scale --tick-store sql         # ticks in the SQL store

The day comes from ``benchmarks.synth_tape`` (its docstring states the shape), one symbol
slice at a time (at most ``--slice-ticks`` trades and ``--slice-symbols`` symbols), so
memory stays bounded by a slice. Each slice goes, in this process, through:

1. **platform** (bars in the store of ``--database-url``, default a fresh SQLite file;
   ticks in the columnar store, ``--tick-store``, default ``parquet:///`` a fresh folder,
   ``sql`` for the database's table): the application layer every entry point calls, as a
   Dagster run of the slice's partitions does it: ``TickNormalizer`` over the raw trades
   (``normalize_in``), ``app.land.land_ticks`` (``land``), ``app.run_build.prepare_builds``
   (``read`` the landed ticks back, ``normalize`` them) and ``app.run_build.build_all``
   (``build`` every default timeframe, ``store`` the bars), with the rule set
   ``--rule-set`` (default ``lean-equity``: the generated conditions are LEAN's flags);
2. **duckdb**: one SQL query over the same raw trades (handed over as an Arrow table):
   1m OHLCV bars, the rule set's eligibility written as SQL list predicates on the
   conditions' tokens (``rules_sql``). What it does not do: validation, deduplication,
   quarantine, storing anything, timeframes other than 1m, exact integer sums (doubles).
   Its 1m bars are compared with the platform's (``duckdb_1m_match_pct``: bars equal in
   open, high, low, close, volume and trade count);
3. **pg** (every ``--pg-every``-th slice: the sample): step 1 again on a fresh PostgreSQL
   schema, ticks in its table (landed with the COPY path of ``storage/bulk.py``).

Figures (the last line is one JSON object): ``scale_ticks``, ``scale_ticks_per_s`` (the
platform end to end: trades / the wall seconds of step 1 over every slice; generation is
not the platform's), ``scale_<stage>_s`` and ``scale_<stage>_ticks_per_s`` per stage
(``scale_other_s``: the platform's time between the stages: pending landings, planning,
splitting per partition), ``scale_peak_rss_mb`` (the process's peak
resident memory: ``getrusage``), ``scale_duckdb_ticks_per_s`` and
``scale_vs_duckdb_ratio`` (platform end to end ticks/s over DuckDB's 1m aggregation
ticks/s: below 1, DuckDB is faster), and the same per stage for the PostgreSQL sample
(``scale_pg_*``). No timing is asserted; the test runs it at a tiny size.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from benchmarks.bench_store import _pg_schema
from benchmarks.synth_tape import TapeShape, describe, generate_slice, slices, trades_per_symbol
from phase1_platform.app.land import land_ticks, quarantine_partitions
from phase1_platform.app.replay import touched_partitions
from phase1_platform.app.run_build import build_all, prepare_builds
from phase1_platform.app.stage_clock import StageClock
from phase1_platform.core.calendar import trading_day_window
from phase1_platform.core.normalizer import TickNormalizer
from phase1_platform.core.rules import EligibilityRules, get_rules, parse_entry
from phase1_platform.core.schema import QTY_SCALE, ts_ns
from phase1_platform.core.timeframes import DEFAULT_TIMEFRAMES
from phase1_platform.storage import Store

PLATFORM_STAGES = ("normalize_in", "land", "read", "normalize", "build", "store")
QUARANTINE_FALLBACK = "bench-scale"


# ------------------------------------------------------------------------------ platform
def platform_slice(store: Store, raw: pd.DataFrame, day: str, rule_set: str,
                   clock: StageClock) -> tuple[int, list[pd.DataFrame]]:
    """Land the slice's raw trades and build every touched partition's bars, through the
    application layer; (ticks landed, each partition's bars)."""
    with clock("normalize_in"):
        result = TickNormalizer(window=trading_day_window(day)).normalize(raw)
    with clock("land"):
        keys = quarantine_partitions(result.quarantine, raw, QUARANTINE_FALLBACK)
        landed = land_ticks(store, result, keys)
    parts = touched_partitions(result.ticks)
    rule_sets = dict.fromkeys(parts, rule_set)
    inputs = prepare_builds(store, parts, rule_sets, False, DEFAULT_TIMEFRAMES, clock=clock)
    built = build_all(store, inputs, rule_sets, DEFAULT_TIMEFRAMES, clock=clock)
    return landed.new, [b.bars for b in built]


# -------------------------------------------------------------------------------- duckdb
def _sql_list(names) -> str:
    return "[" + ", ".join("'" + n.replace("'", "''") + "'" for n in sorted(names)) + "]"


def _excluded_sql(entries) -> str:
    """SQL true when any exclusion entry matches ``toks`` (``core.rules`` semantics: every
    required condition present, no forbidden one)."""
    terms = []
    for entry in sorted(entries):
        required, forbidden = parse_entry(entry)
        term = f"list_has_all(toks, {_sql_list(required)})"
        if forbidden:
            term += f" AND NOT list_has_any(toks, {_sql_list(forbidden)})"
        terms.append(f"({term})")
    return " OR ".join(terms) or "false"


def rules_sql(rules: EligibilityRules) -> tuple[str, str]:
    """(price_ok, volume_ok) of a rule set as DuckDB SQL over ``size`` and ``toks``."""
    price = f"NOT ({_excluded_sql(rules.exclude_from_price)})"
    if not rules.zero_size_sets_price:
        price = f"size > 0 AND {price}"
    return price, f"size > 0 AND NOT ({_excluded_sql(rules.exclude_from_volume)})"


def duckdb_query(rules: EligibilityRules) -> str:
    price_ok, volume_ok = rules_sql(rules)
    return f"""
        WITH e AS (
            SELECT symbol, ts, sequence, price, size, ts - ts % 60000000000 AS bucket,
                   {price_ok} AS price_ok, {volume_ok} AS volume_ok
            FROM (SELECT *, string_split(conditions, ' ') AS toks FROM tape))
        SELECT symbol, bucket AS ts,
               arg_min(price, (ts, sequence)) FILTER (WHERE price_ok) AS open,
               max(price) FILTER (WHERE price_ok) AS high,
               min(price) FILTER (WHERE price_ok) AS low,
               arg_max(price, (ts, sequence)) FILTER (WHERE price_ok) AS close,
               sum(size) FILTER (WHERE volume_ok) AS volume,
               count(*) FILTER (WHERE volume_ok) AS trade_count,
               sum(price * size) FILTER (WHERE volume_ok)
                   / sum(size) FILTER (WHERE volume_ok) AS vwap
        FROM e GROUP BY symbol, bucket HAVING bool_or(price_ok)"""


def duckdb_bars(con: duckdb.DuckDBPyConnection, raw: pd.DataFrame, query: str) -> pa.Table:
    """1m bars of the raw trades (``duckdb_query``), DuckDB only."""
    tape = pa.table({"symbol": pa.array(raw["symbol"]), "ts": ts_ns(raw["timestamp"]),
                     "sequence": raw["sequence"].to_numpy("int64"),
                     "price": raw["price"].to_numpy("float64"),
                     "size": raw["size"].to_numpy("float64"),
                     "conditions": pa.array(raw["conditions"])})
    con.register("tape", tape)
    try:
        return con.sql(query).to_arrow_table()
    finally:
        con.unregister("tape")


def matching_bars(platform_1m: pd.DataFrame, duck: pa.Table) -> tuple[int, int]:
    """(bars equal in open, high, low, close, volume and trade count; bars in either)."""
    ours = pd.DataFrame({
        "symbol": platform_1m["symbol"].astype(str).to_numpy(object),
        "ts": platform_1m["ts"].to_numpy("int64"),
        "o": platform_1m["open"].to_numpy(), "h": platform_1m["high"].to_numpy(),
        "l": platform_1m["low"].to_numpy(), "c": platform_1m["close"].to_numpy(),
        "v": platform_1m["qty"].to_numpy("int64") / QTY_SCALE,
        "n": platform_1m["trade_count"].to_numpy("int64")})
    theirs = duck.to_pandas()
    theirs = pd.DataFrame({
        "symbol": theirs["symbol"].astype(str).to_numpy(object),
        "ts": theirs["ts"].to_numpy("int64"), "o": theirs["open"], "h": theirs["high"],
        "l": theirs["low"], "c": theirs["close"],
        "v": theirs["volume"].fillna(0.0), "n": theirs["trade_count"].fillna(0)})
    both = ours.merge(theirs, on=["symbol", "ts"], how="outer", suffixes=("", "_d"),
                      indicator=True)
    same = both["_merge"].eq("both").to_numpy(bool, copy=True)
    for f in "ohlcvn":
        same &= (both[f] == both[f + "_d"]).to_numpy(bool)
    return int(same.sum()), len(both)


# ------------------------------------------------------------------------------ the run
def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def parquet_bytes(store: Store) -> int | None:
    """Bytes of the Parquet files of the store's tick dataset (None: ticks in SQL)."""
    root = getattr(store.ticks, "root", None)
    return None if root is None else sum(f.stat().st_size for f in Path(root).rglob("*.parquet"))


def pg_table_bytes(store: Store, table: str) -> int:
    """A PostgreSQL table's size on disk, indexes and TOAST included."""
    with store.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT pg_total_relation_size('{table}')").scalar())


def _open_pg():
    """(a store on a fresh PostgreSQL schema, ticks in its table, drop) or (None, reason)."""
    url, drop = _pg_schema()
    if url is None:
        return None, drop
    return Store.from_url(url, tick_store="sql"), drop


def run_scale(shape: TapeShape, database_url: str, tick_store: str,
              rule_set: str = "lean-equity",
              slice_ticks: int = 2_000_000, slice_symbols: int = 500, pg_every: int = 10,
              log=print) -> dict:
    """Generate the day slice by slice through the three paths; the figures."""
    rules = get_rules(rule_set)
    counts = trades_per_symbol(shape)
    parts = slices(counts, slice_ticks, slice_symbols)
    log(f"day {shape.day}: {describe(counts)}; {len(parts)} slices; rule set {rule_set}")
    clock, pg_clock, duck_clock = StageClock(), StageClock(), StageClock()
    totals = {"ticks": 0, "bars": 0, "pg_ticks": 0, "pg_bars": 0, "match": 0, "compared": 0}
    store = Store.from_url(database_url, tick_store=tick_store)
    pg, pg_drop = _open_pg() if pg_every > 0 else (None, "--pg-every 0")
    if pg is None:
        log(f"PostgreSQL sample skipped: {pg_drop}")
    con = duckdb.connect()
    query = duckdb_query(rules)
    sizes: dict[str, int | None] = {}
    try:
        for i, part in enumerate(parts):
            with clock("generate"):
                raw = generate_slice(shape, counts, part)
            with clock("platform"):
                new, built = platform_slice(store, raw, shape.day, rule_set, clock)
            bars = pd.concat(built, ignore_index=True)
            bars_1m = bars[bars["timeframe"].astype(str) == "1m"]
            totals["ticks"] += new
            totals["bars"] += len(bars)
            with duck_clock("duckdb"):
                duck = duckdb_bars(con, raw, query)
            same, compared = matching_bars(bars_1m, duck)
            totals["match"] += same
            totals["compared"] += compared
            if pg is not None and i % pg_every == 0:
                with pg_clock("platform"):
                    new, built = platform_slice(pg, raw, shape.day, rule_set, pg_clock)
                totals["pg_ticks"] += new
                totals["pg_bars"] += sum(len(b) for b in built)
            del raw, built, bars, bars_1m, duck
            log(f"  slice {i + 1}/{len(parts)}: {part.ticks:,} trades, "
                f"{part.stop - part.first} symbols; peak RSS {peak_rss_mb():,.0f} MB")
        sizes["ticks"] = parquet_bytes(store)
        if pg is not None:
            sizes["pg_ticks"], sizes["pg_bars"] = (pg_table_bytes(pg, t) for t in ("ticks", "bars"))
    finally:
        con.close()
        store.dispose()
        if pg is not None:
            pg.dispose()
            pg_drop()
    return figures(shape, totals, sizes, clock, pg_clock, duck_clock, repr(store.ticks))


def _stage_figures(prefix: str, ticks: int, clock: StageClock) -> dict:
    out = {}
    for stage in PLATFORM_STAGES:
        s = clock.seconds.get(stage, 0.0)
        out[f"{prefix}{stage}_s"] = round(s, 3)
        out[f"{prefix}{stage}_ticks_per_s"] = round(ticks / s) if s > 0 else None
    total = clock.seconds.get("platform", 0.0)  # the stages and what lies between them
    out[f"{prefix}other_s"] = round(total - sum(clock.seconds.get(s, 0.0)
                                                for s in PLATFORM_STAGES), 3)
    out[f"{prefix}platform_s"] = round(total, 3)
    out[f"{prefix}ticks_per_s"] = round(ticks / total) if total > 0 else None
    return out


def _per(num: int | None, den: int) -> float | None:
    return round(num / den, 1) if num is not None and den else None


def figures(shape: TapeShape, totals: dict, sizes: dict, clock: StageClock,
            pg_clock: StageClock, duck_clock: StageClock, tick_store: str) -> dict:
    ticks = totals["ticks"]
    out = {"scale_ticks": ticks, "scale_symbols": shape.symbols, "scale_bars": totals["bars"],
           "scale_tick_store": tick_store,
           "scale_generate_s": round(clock.seconds["generate"], 3)}
    out.update(_stage_figures("scale_", ticks, clock))
    duck_s = duck_clock.seconds["duckdb"]
    out["scale_duckdb_s"] = round(duck_s, 3)
    out["scale_duckdb_ticks_per_s"] = round(ticks / duck_s) if duck_s > 0 else None
    rate, duck_rate = out["scale_ticks_per_s"], out["scale_duckdb_ticks_per_s"]
    out["scale_vs_duckdb_ratio"] = round(rate / duck_rate, 4) if rate and duck_rate else None
    out["scale_duckdb_1m_match_pct"] = (round(100 * totals["match"] / totals["compared"], 3)
                                        if totals["compared"] else None)
    out["scale_parquet_bytes_per_tick"] = _per(sizes.get("ticks"), ticks)
    out["scale_pg_tick_bytes_per_tick"] = _per(sizes.get("pg_ticks"), totals["pg_ticks"])
    out["scale_pg_bar_bytes_per_bar"] = _per(sizes.get("pg_bars"), totals["pg_bars"])
    out["scale_pg_sample_ticks"] = totals["pg_ticks"]
    out["scale_pg_bars"] = totals["pg_bars"]
    if totals["pg_ticks"]:
        out.update(_stage_figures("scale_pg_", totals["pg_ticks"], pg_clock))
    out["scale_peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def print_table(fig: dict) -> None:
    print(f"{'stage':<14}{'platform s':>12}{'ticks/s':>14}{'pg sample s':>13}{'ticks/s':>14}")
    for stage in (*PLATFORM_STAGES, "other", "platform"):
        pg_s = fig.get(f"scale_pg_{stage}_s")
        pg_rate = fig.get(f"scale_pg_{stage}_ticks_per_s" if stage != "platform"
                          else "scale_pg_ticks_per_s")
        rate = fig.get(f"scale_{stage}_ticks_per_s" if stage != "platform"
                       else "scale_ticks_per_s")
        print(f"{stage:<14}{fig[f'scale_{stage}_s']:>12.2f}{rate or 0:>14,}"
              f"{pg_s if pg_s is not None else float('nan'):>13.2f}{pg_rate or 0:>14,}")
    print(f"duckdb 1m: {fig['scale_duckdb_s']:.2f} s, {fig['scale_duckdb_ticks_per_s']:,} ticks/s;"
          f" platform/duckdb {fig['scale_vs_duckdb_ratio']}; 1m bars equal "
          f"{fig['scale_duckdb_1m_match_pct']}%")
    print(f"ticks {fig['scale_ticks']:,} (pg sample {fig['scale_pg_sample_ticks']:,}), bars "
          f"{fig['scale_bars']:,}, generate {fig['scale_generate_s']:.1f} s, peak RSS "
          f"{fig['scale_peak_rss_mb']:,.0f} MB, tick store {fig['scale_tick_store']}")
    print(f"bytes: Parquet {fig['scale_parquet_bytes_per_tick']} per tick; PostgreSQL "
          f"{fig['scale_pg_tick_bytes_per_tick']} per tick, {fig['scale_pg_bar_bytes_per_bar']}"
          " per bar (indexes included)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_scale",
                                description=__doc__.splitlines()[0])
    p.add_argument("--ticks", type=int, default=40_000_000)
    p.add_argument("--symbols", type=int, default=8_000)
    p.add_argument("--day", default=TapeShape.day)
    p.add_argument("--seed", type=int, default=TapeShape.seed)
    p.add_argument("--slice-ticks", type=int, default=2_000_000)
    p.add_argument("--slice-symbols", type=int, default=500)
    p.add_argument("--pg-every", type=int, default=10,
                   help="land and build every N-th slice on PostgreSQL too (0: none)")
    p.add_argument("--rule-set", default="lean-equity")
    p.add_argument("--database-url", default=None,
                   help="the platform's store (default: a fresh SQLite file, removed after)")
    p.add_argument("--tick-store", default=None,
                   help="parquet:///PATH or sql (default: parquet in a fresh folder, removed "
                   "after)")
    args = p.parse_args(argv)
    shape = TapeShape(day=args.day, ticks=args.ticks, symbols=args.symbols, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="phase1-scale-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'scale.sqlite'}"
        ticks = args.tick_store or f"parquet://{Path(tmp) / 'ticks'}"
        t0 = time.perf_counter()
        fig = run_scale(shape, url, ticks, args.rule_set, args.slice_ticks,
                        args.slice_symbols, args.pg_every)
        fig["scale_wall_s"] = round(time.perf_counter() - t0, 1)
    print_table(fig)
    print(json.dumps(fig, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
