"""Repositories over the store's tables: ticks, bars, quarantine, watermarks.

Frames in and out are the core's frames (``core.schema``): normalized ticks
(``TICK_COLUMNS``), the internal bar frame (``BAR_COLUMNS``) and quarantine rows
(``QUARANTINE_COLUMNS``). Reads return them in canonical order with canonical dtypes,
so ``CanonicalExporter(BarRepository(store).read(...)).to_bytes()`` equals the bytes
of the bars that were written.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import Connection, and_, bindparam, func, literal_column, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from ..core.engine import sort_bars
from ..core.normalizer import canonical_sort
from ..core.schema import (
    BAR_COLUMNS,
    QUARANTINE_COLUMNS,
    TICK_COLUMNS,
    empty_bars,
    empty_quarantine,
    empty_ticks,
    ts_ns,
)
from ..core.timeframes import TIMEFRAMES
from . import bulk
from .store import Store, StoreError
from .tables import bars as bars_t
from .tables import quarantine as quarantine_t
from .tables import ticks as ticks_t
from .tables import watermarks as watermarks_t

BAR_VALUE_COLUMNS = ["open", "high", "low", "close", "qty", "notional", "trade_count",
                     "rule_set", "source"]


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame is missing column(s): {', '.join(missing)}")


def _window(start_ns: int, end_ns: int) -> tuple[int, int]:
    start_ns, end_ns = int(start_ns), int(end_ns)
    if end_ns < start_ns:
        raise ValueError(f"empty time range: end {end_ns} is before start {start_ns}")
    return start_ns, end_ns


def _insert_for(conn: Connection, table):
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


class _Repository:
    def __init__(self, store: Store):
        self.store = store

    def _run(self, fn, write: bool = True):
        """Run ``fn(conn)`` in one transaction; database errors become StoreError."""
        try:
            with self.store.begin(write=write) as conn:
                return fn(conn)
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc.orig, OSError):
                raise self.store.connection_error(exc) from exc
            raise


class TickRepository(_Repository):
    """The landing table of normalized ticks (idempotent identity, DESIGN section 3)."""

    def land(self, ticks: pd.DataFrame) -> int:
        """Store the ticks; returns how many were new (the others were already landed)."""
        _require(ticks, TICK_COLUMNS, "tick")
        if len(ticks) == 0:
            return 0
        columns = {
            "ts": ts_ns(ticks["ts"]),
            "symbol": ticks["symbol"].astype("str"),
            "price": ticks["price"].to_numpy("float64"),
            "size": ticks["size"].to_numpy("float64"),
            "exchange": ticks["exchange"].astype("str"),
            "conditions": ticks["conditions"].astype("str"),
            "trade_id": ticks["trade_id"].astype("str"),
            "sequence": ticks["sequence"].to_numpy("int64"),
            "source": ticks["source"].astype("str"),
            "source_row": ticks["source_row"].to_numpy("int64"),
        }
        return self._run(lambda conn: self._land(conn, columns))

    @staticmethod
    def _land(conn: Connection, columns: dict[str, object]) -> int:
        if bulk.uses_copy(conn):
            # fast path: COPY straight into the table (first landing, the common case);
            # on an identity conflict, roll back to the savepoint and land through a
            # staging table with ON CONFLICT DO NOTHING.
            import psycopg.errors

            if _may_overlap(conn, columns):
                return bulk.insert_rows(conn, "ticks", columns, "ON CONFLICT DO NOTHING")
            savepoint = conn.begin_nested()
            try:
                n = bulk.copy_rows(conn, "ticks", columns)
            except psycopg.errors.UniqueViolation:
                savepoint.rollback()
            else:
                savepoint.commit()
                return n
        return bulk.insert_rows(conn, "ticks", columns, "ON CONFLICT DO NOTHING")

    def read(self, symbol: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        """Landed ticks of ``symbol`` with ts in [start_ns, end_ns), canonical order."""
        start_ns, end_ns = _window(start_ns, end_ns)
        # one query per partial index (rows with and without a trade id)
        within = (ticks_t.c.symbol == symbol, ticks_t.c.ts >= start_ns, ticks_t.c.ts < end_ns)
        query = union_all(
            select(*ticks_t.columns).where(*within, ticks_t.c.trade_id == literal_column("''")),
            select(*ticks_t.columns).where(*within, ticks_t.c.trade_id != literal_column("''")),
        )
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        return ticks_frame(rows)

    def count(self, symbol: str | None = None) -> int:
        query = select(func.count()).select_from(ticks_t)
        if symbol is not None:
            query = query.where(ticks_t.c.symbol == symbol)
        return int(self._run(lambda conn: conn.execute(query).scalar_one(), write=False))


def _may_overlap(conn: Connection, columns: dict[str, object]) -> bool:
    """Whether ticks are already stored for a symbol of the batch within its time span."""
    span = pd.DataFrame({"symbol": columns["symbol"], "ts": columns["ts"]}).groupby(
        "symbol", sort=False)["ts"].agg(["min", "max"])
    probe = select(literal_column("1")).select_from(ticks_t).where(
        ticks_t.c.symbol == bindparam("s"), ticks_t.c.ts >= bindparam("a"),
        ticks_t.c.ts <= bindparam("b")).limit(1)
    for symbol, lo, hi in zip(span.index, span["min"], span["max"], strict=True):
        params = {"s": str(symbol), "a": int(lo), "b": int(hi)}
        for traded in (ticks_t.c.trade_id == literal_column("''"),
                       ticks_t.c.trade_id != literal_column("''")):
            if conn.execute(probe.where(traded), params).first() is not None:
                return True
    return False


def ticks_frame(rows) -> pd.DataFrame:
    if not rows:
        return empty_ticks()
    names = [c.name for c in ticks_t.columns]
    frame = pd.DataFrame.from_records(rows, columns=names)
    frame["ts"] = pd.to_datetime(frame["ts"].to_numpy("int64"), utc=True).as_unit("ns")
    frame = canonical_sort(frame.astype({k: v for k, v in TICK_COLUMNS.items() if k != "ts"}))
    return frame.reset_index(drop=True).astype(TICK_COLUMNS)[list(TICK_COLUMNS)]


class BarRepository(_Repository):
    """Bars keyed by (symbol, timeframe, ts), with the rule set and source that made them."""

    def _columns(self, bars: pd.DataFrame, rule_set: str, source: str) -> dict[str, object]:
        _require(bars, BAR_COLUMNS, "bar")
        unknown = sorted(set(bars["timeframe"].astype(str)) - set(TIMEFRAMES))
        if unknown:
            raise ValueError(f"unknown timeframe(s) in bars: {', '.join(unknown)}")
        n = len(bars)
        return {
            "symbol": bars["symbol"].astype("str"),
            "timeframe": bars["timeframe"].astype("str"),
            "ts": bars["ts"].to_numpy("int64"),
            "open": bars["open"].to_numpy("float64"),
            "high": bars["high"].to_numpy("float64"),
            "low": bars["low"].to_numpy("float64"),
            "close": bars["close"].to_numpy("float64"),
            "qty": bars["qty"].to_numpy("int64"),
            "notional": bars["notional"].to_numpy("int64"),
            "trade_count": bars["trade_count"].to_numpy("int64"),
            "rule_set": np.full(n, str(rule_set), dtype=object),
            "source": np.full(n, str(source), dtype=object),
        }

    def write_partition(self, bars: pd.DataFrame, symbol: str, start_ns: int, end_ns: int,
                        rule_set: str, source: str) -> int:
        """Atomically replace every stored bar of ``symbol`` with ts in [start, end).

        One transaction deletes the partition's old bars (all timeframes) and inserts
        ``bars``: readers see the old version or the new one, never a mix, and a
        failure anywhere leaves the old version. Returns the number of bars written.
        """
        start_ns, end_ns = _window(start_ns, end_ns)
        columns = self._columns(bars, rule_set, source)
        if len(bars):
            ts = columns["ts"]
            other = sorted(set(bars["symbol"].astype(str)) - {symbol})
            if other:
                raise ValueError(f"partition of {symbol} given bars of {', '.join(other)}")
            if ts.min() < start_ns or ts.max() >= end_ns:
                raise ValueError(f"partition of {symbol}: bars outside [{start_ns}, {end_ns})")
            if bars.duplicated(["timeframe", "ts"]).any():
                raise ValueError(f"partition of {symbol}: duplicate (timeframe, ts) bars")

        def write(conn: Connection) -> int:
            conn.execute(
                bars_t.delete().where(
                    bars_t.c.symbol == symbol, bars_t.c.ts >= start_ns, bars_t.c.ts < end_ns
                )
            )
            return bulk.insert_rows(conn, "bars", columns)

        self._run(write)
        return len(bars)

    def upsert(self, bars: pd.DataFrame, rule_set: str, source: str) -> int:
        """Insert or update bars by key (streaming updates); the last of a key wins."""
        if len(bars):
            bars = bars.drop_duplicates(["symbol", "timeframe", "ts"], keep="last")
        columns = self._columns(bars, rule_set, source)
        if len(bars) == 0:
            return 0
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in BAR_VALUE_COLUMNS)
        clause = f"ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET {updates}"
        self._run(lambda conn: bulk.insert_rows(conn, "bars", columns, clause))
        return len(bars)

    def read(self, symbols: str | Iterable[str], timeframes: Iterable[str] | None,
             start_ns: int, end_ns: int) -> pd.DataFrame:
        """Bars of the symbols (and timeframes; None = all) with ts in [start, end)."""
        start_ns, end_ns = _window(start_ns, end_ns)
        symbols = [symbols] if isinstance(symbols, str) else list(symbols)
        cols = [bars_t.c[c] for c in BAR_COLUMNS]
        cond = [bars_t.c.symbol.in_(bindparam("symbols", expanding=True)),
                bars_t.c.ts >= start_ns, bars_t.c.ts < end_ns]
        params: dict[str, object] = {"symbols": symbols}
        if timeframes is not None:
            timeframes = list(timeframes)
            unknown = sorted(set(timeframes) - set(TIMEFRAMES))
            if unknown:
                raise ValueError(f"unknown timeframe(s): {', '.join(unknown)}")
            cond.append(bars_t.c.timeframe.in_(bindparam("timeframes", expanding=True)))
            params["timeframes"] = timeframes
        if not symbols or (timeframes is not None and not timeframes):
            return empty_bars()
        query = select(*cols).where(and_(*cond))
        rows = self._run(lambda conn: conn.execute(query, params).all(), write=False)
        return bars_frame(rows)

    def partitions(self, symbol: str | None = None) -> pd.DataFrame:
        """Row counts per (symbol, timeframe): a quick look at what is stored."""
        query = select(bars_t.c.symbol, bars_t.c.timeframe, func.count().label("bars")).group_by(
            bars_t.c.symbol, bars_t.c.timeframe)
        if symbol is not None:
            query = query.where(bars_t.c.symbol == symbol)
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        return pd.DataFrame.from_records(rows, columns=["symbol", "timeframe", "bars"])


def bars_frame(rows) -> pd.DataFrame:
    if not rows:
        return empty_bars()
    frame = pd.DataFrame.from_records(rows, columns=list(BAR_COLUMNS)).astype(BAR_COLUMNS)
    return sort_bars(frame)


class QuarantineRepository(_Repository):
    """Rejected rows with their reason, per partition (idempotent)."""

    def add(self, quarantine: pd.DataFrame, partition: str) -> int:
        _require(quarantine, QUARANTINE_COLUMNS, "quarantine")
        if len(quarantine) == 0:
            return 0
        columns = {
            "partition": np.full(len(quarantine), str(partition), dtype=object),
            "source": quarantine["source"].astype(str),
            "source_row": quarantine["source_row"].to_numpy("int64"),
            "reason": quarantine["reason"].astype(str),
            "raw": quarantine["raw"].astype(str),
        }
        return self._run(
            lambda conn: bulk.insert_rows(conn, "quarantine", columns, "ON CONFLICT DO NOTHING")
        )

    def read(self, partition: str) -> pd.DataFrame:
        query = (
            select(quarantine_t.c.source, quarantine_t.c.source_row, quarantine_t.c.reason,
                   quarantine_t.c.raw)
            .where(quarantine_t.c.partition == partition)
        )
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        if not rows:
            return empty_quarantine()
        frame = pd.DataFrame.from_records(rows, columns=list(QUARANTINE_COLUMNS))
        frame = frame.astype(QUARANTINE_COLUMNS)
        order = np.lexsort((frame["reason"].to_numpy(str), frame["source_row"].to_numpy(),
                            frame["source"].to_numpy(str)))
        return frame.iloc[order].reset_index(drop=True)


class WatermarkRepository(_Repository):
    """Ingestion progress per (source, symbol): the latest tick time landed, in UTC ns."""

    def get(self, source: str, symbol: str) -> int | None:
        query = select(watermarks_t.c.ts).where(
            watermarks_t.c.source == source, watermarks_t.c.symbol == symbol
        )
        value = self._run(lambda conn: conn.execute(query).scalar_one_or_none(), write=False)
        return None if value is None else int(value)

    def advance(self, source: str, symbol: str, ts_ns: int) -> int:
        """Move the watermark to ``ts_ns`` unless it is already later; returns the new value."""
        ts_ns = int(ts_ns)

        def advance(conn: Connection) -> int:
            ins = _insert_for(conn, watermarks_t).values(source=source, symbol=symbol, ts=ts_ns)
            later = (func.greatest if conn.dialect.name == "postgresql" else func.max)(
                watermarks_t.c.ts, ins.excluded.ts
            )
            conn.execute(ins.on_conflict_do_update(
                index_elements=["source", "symbol"], set_={"ts": later}))
            return int(conn.execute(
                select(watermarks_t.c.ts).where(watermarks_t.c.source == source,
                                                watermarks_t.c.symbol == symbol)
            ).scalar_one())

        return self._run(advance)


__all__ = [
    "BarRepository",
    "QuarantineRepository",
    "StoreError",
    "TickRepository",
    "WatermarkRepository",
]
