"""Read-side queries of the read API: keyset pages of bars, what is stored per symbol, and a
partition's counts and quarantine, each one index-driven query (no table scan).

- ``BarReads.page``: up to ``limit`` bars of one timeframe for symbols in canonical order
  (symbol, then ts) after a keyset cursor ``(symbol, ts)``: one range scan of the bars
  primary key ``(symbol, timeframe, ts)`` per symbol, so a page costs its rows whatever the
  page number. Rows come straight off the driver's cursor (no ORM rows): the hot path of
  ``GET /v1/bars``.
- ``BarReads.spans``: first and last bar time of every stored (symbol, timeframe): a loose
  index scan over the distinct symbols, then two index probes per timeframe.
- ``BarReads.counts``: bars per timeframe of one symbol in a window.
- ``QuarantineReads``: a partition's quarantined rows per reason, and keyset pages of them in
  ``QuarantineRepository.read``'s order (source, source_row, reason).

Run them inside ``Store.read_snapshot()`` to see one state of the store across calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from ..core.bar_frames import timeframe_ranks
from ..core.schema import BAR_COLUMNS, QUARANTINE_COLUMNS, empty_bars, empty_quarantine
from ..core.timeframes import is_timeframe, timeframe_sort_key
from . import bulk
from ._base import Repository, rows_frame, window

_VALUE_COLUMNS = ("ts", "open", "high", "low", "close", "qty", "notional", "trade_count",
                  "nth")
_VALUE_DTYPES = tuple(BAR_COLUMNS.get(c, "int64") for c in _VALUE_COLUMNS)


def _mark(conn: Connection) -> str:
    """The driver's parameter placeholder (raw DBAPI cursors)."""
    return "?" if conn.dialect.name == "sqlite" else "%s"


def _fetch(conn: Connection, sql: str, params: Sequence[object]) -> list[tuple]:
    """Rows of ``sql`` from a raw cursor of the connection's open transaction."""
    cur = bulk.dbapi(conn).cursor()
    try:
        cur.execute(sql.replace("?", _mark(conn)), tuple(params))
        return cur.fetchall()
    finally:
        cur.close()


@dataclass(frozen=True)
class BarCursor:
    """Where a page of bars ended: the last (symbol, ts, nth) it held (``nth`` numbers
    information-driven bars sharing a first-trade time, 0 otherwise)."""

    symbol: str
    ts: int
    nth: int = 0


class BarReads(Repository):
    """Index-driven bar reads for the read API (``storage.tables.bars``)."""

    _PAGE = ("SELECT ts, open, high, low, close, qty, notional, trade_count, nth FROM bars "
             "WHERE symbol = ? AND timeframe = ? AND ts >= ? AND ts < ? "
             "AND (ts > ? OR nth > ?) ORDER BY ts, nth LIMIT ?")

    def page(self, symbols: Sequence[str], timeframe: str, start_ns: int, end_ns: int,
             limit: int, after: BarCursor | None = None) -> pd.DataFrame:
        """Up to ``limit`` bars (internal bar frame, canonical order, plus their ``nth``)
        of ``timeframe`` for ``symbols`` (validated, sorted) with ts in [start, end),
        after ``after``."""
        start_ns, end_ns = window(start_ns, end_ns)
        if not is_timeframe(timeframe):
            raise ValueError(f"unknown timeframe {timeframe!r}")
        chosen = [s for s in symbols if after is None or s >= after.symbol]

        def read(conn: Connection) -> list[tuple[str, list[tuple]]]:
            out, need = [], int(limit)
            for symbol in chosen:
                lo, nth = start_ns, -1  # (ts, nth) after (lo, nth): lo itself from nth + 1
                if after is not None and symbol == after.symbol:
                    lo, nth = max(start_ns, after.ts), after.nth
                if need <= 0 or lo >= end_ns:
                    continue
                rows = _fetch(conn, self._PAGE, (symbol, timeframe, lo, end_ns, lo, nth,
                                                 need))
                if rows:
                    out.append((symbol, rows))
                    need -= len(rows)
            return out

        return _bars_frame(self._run(read, write=False), timeframe)

    def counts(self, symbol: str, start_ns: int, end_ns: int) -> dict[str, int]:
        """Bars per timeframe of ``symbol`` with ts in [start, end), in duration order
        (timeframes without bars left out)."""
        start_ns, end_ns = window(start_ns, end_ns)
        sql = ("SELECT timeframe, COUNT(*) FROM bars WHERE symbol = ? AND ts >= ? AND ts < ? "
               "GROUP BY timeframe")
        rows = self._run(lambda conn: _fetch(conn, sql, (symbol, start_ns, end_ns)),
                         write=False)
        found = {str(tf): int(n) for tf, n in rows}
        return {tf: found[tf] for tf in sorted(found, key=timeframe_sort_key)}

    def spans(self) -> pd.DataFrame:
        """Per stored (symbol, timeframe): ``first_ts`` and ``last_ts`` (bar opens, UTC ns),
        ordered by symbol then timeframe duration."""
        sql = (  # loose index scans: the symbols, then each symbol's timeframes
            "WITH RECURSIVE s(symbol) AS (SELECT MIN(symbol) FROM bars UNION ALL "
            "SELECT (SELECT MIN(b.symbol) FROM bars b WHERE b.symbol > s.symbol) FROM s "
            "WHERE s.symbol IS NOT NULL), "
            "t(symbol, tf) AS (SELECT s.symbol, (SELECT MIN(b.timeframe) FROM bars b "
            "WHERE b.symbol = s.symbol) FROM s WHERE s.symbol IS NOT NULL UNION ALL "
            "SELECT t.symbol, (SELECT MIN(b.timeframe) FROM bars b WHERE b.symbol = t.symbol "
            "AND b.timeframe > t.tf) FROM t WHERE t.tf IS NOT NULL) "
            "SELECT t.symbol, t.tf, "
            "(SELECT MIN(b.ts) FROM bars b WHERE b.symbol = t.symbol AND b.timeframe = t.tf), "
            "(SELECT MAX(b.ts) FROM bars b WHERE b.symbol = t.symbol AND b.timeframe = t.tf) "
            "FROM t WHERE t.tf IS NOT NULL")
        rows = self._run(lambda conn: _fetch(conn, sql, ()), write=False)
        rows = [r for r in rows if r[2] is not None]
        frame = rows_frame(rows, ["symbol", "timeframe", "first_ts", "last_ts"]).astype(
            {"symbol": "str", "timeframe": "str", "first_ts": "int64", "last_ts": "int64"})
        rank = timeframe_ranks(frame["timeframe"]) if len(frame) else np.empty(0, "int64")
        order = np.lexsort((rank, frame["symbol"].to_numpy(str)))
        return frame.iloc[order].reset_index(drop=True)


def _bars_frame(chunks: Iterable[tuple[str, list[tuple]]], timeframe: str) -> pd.DataFrame:
    """The internal bar frame of per-symbol row lists (already in canonical order)."""
    chunks = list(chunks)
    if not chunks:
        return empty_bars().assign(nth=np.empty(0, dtype="int64"))
    symbol = np.concatenate([np.full(len(rows), sym, dtype=object) for sym, rows in chunks])
    values = list(zip(*[row for _, rows in chunks for row in rows], strict=True))
    data: dict[str, object] = {  # str columns built as such: a frame-wide astype costs ms
        "symbol": pd.Series(symbol, dtype="str"),
        "timeframe": pd.Series(np.full(len(symbol), timeframe, dtype=object), dtype="str")}
    for name, dtype, column in zip(_VALUE_COLUMNS, _VALUE_DTYPES, values, strict=True):
        data[name] = np.asarray(column, dtype=dtype)
    return pd.DataFrame(data)


@dataclass(frozen=True)
class QuarantineCursor:
    """Where a page of quarantined rows ended: its last (source, source_row, reason)."""

    source: str
    source_row: int
    reason: str


class QuarantineReads(Repository):
    """A partition's quarantined rows (``storage.tables.quarantine``), read by its unique key
    (partition, source, source_row, reason)."""

    def counts_by_reason(self, partition: str) -> dict[str, int]:
        """Quarantined rows of ``partition`` per reason, reasons sorted."""
        sql = "SELECT reason, COUNT(*) FROM quarantine WHERE partition = ? GROUP BY reason"
        rows = self._run(lambda conn: _fetch(conn, sql, (str(partition),)), write=False)
        return {str(r): int(n) for r, n in sorted(rows)}

    def page(self, partition: str, limit: int,
             after: QuarantineCursor | None = None) -> pd.DataFrame:
        """Up to ``limit`` rows (``QUARANTINE_COLUMNS``) of ``partition`` after ``after``,
        ordered by source, source_row, reason."""
        params: list[object] = [str(partition)]
        where = "partition = ?"
        if after is not None:
            where += (" AND (source > ? OR (source = ? AND (source_row > ? OR "
                      "(source_row = ? AND reason > ?))))")
            params += [after.source, after.source, int(after.source_row),
                       int(after.source_row), after.reason]
        sql = (f"SELECT source, source_row, reason, raw FROM quarantine WHERE {where} "
               "ORDER BY source, source_row, reason LIMIT ?")
        rows = self._run(lambda conn: _fetch(conn, sql, (*params, int(limit))), write=False)
        if not rows:
            return empty_quarantine()
        return rows_frame(rows, list(QUARANTINE_COLUMNS)).astype(QUARANTINE_COLUMNS)


__all__ = ["BarCursor", "BarReads", "QuarantineCursor", "QuarantineReads"]
