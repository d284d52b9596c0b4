"""Repositories over the store's tables: ticks, bars, quarantine, watermarks, landings.

``TickRepository`` (landing by the tick identity) lives in ``ticks``; the others here.
Frames in and out are the core's frames (``core.schema``): normalized ticks
(``TICK_COLUMNS``), the internal bar frame (``BAR_COLUMNS``) and quarantine rows
(``QUARANTINE_COLUMNS``). Reads return them in canonical order with canonical dtypes,
so ``CanonicalExporter(BarRepository(store).read(...)).to_bytes()`` equals the bytes
of the bars that were written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Connection, and_, bindparam, func, select, text

from ..core.engine import sort_bars
from ..core.incremental import VOLUME_ONLY_COLUMNS, empty_volume_only
from ..core.partition import Partition
from ..core.schema import (
    BAR_COLUMNS,
    QUARANTINE_COLUMNS,
    empty_bars,
    empty_quarantine,
)
from ..core.timeframes import TIMEFRAMES, is_timeframe
from . import bulk
from ._base import Repository, insert_for, require_columns, rows_frame, window
from .store import StoreError
from .tables import bars as bars_t
from .tables import quarantine as quarantine_t
from .tables import tick_landings as landings_t
from .tables import volume_only_bars as volume_only_t
from .tables import watermarks as watermarks_t
from .ticks import LandResult, TickRepository

BAR_VALUE_COLUMNS = ["open", "high", "low", "close", "qty", "notional", "trade_count",
                     "rule_set", "source"]


class BarRepository(Repository):
    """Bars keyed by (symbol, timeframe, ts), with the rule set and source that made them."""

    def _columns(self, bars: pd.DataFrame, rule_set: str, source: str) -> dict[str, object]:
        require_columns(bars, BAR_COLUMNS, "bar")
        unknown = sorted(t for t in set(bars["timeframe"].astype(str)) if not is_timeframe(t))
        if unknown:
            raise ValueError(f"unknown timeframe(s) in bars: {', '.join(unknown)}")
        n = len(bars)
        return {
            # the bar's place among bars of its (symbol, timeframe, ts), in frame order:
            # 0 but for information-driven bars sharing a first-trade time
            "nth": bars.groupby(["symbol", "timeframe", "ts"], sort=False).cumcount()
            .to_numpy("int64") if n else np.empty(0, dtype="int64"),
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

    def write_partition(self, bars: pd.DataFrame, part: Partition,
                        rule_set: str, source: str, since_ns: int | None = None,
                        landings: Landings | None = None,
                        volume_only: pd.DataFrame | None = None,
                        refuse_newer: bool = False,
                        newer_cut: Callable[[int], int] | None = None) -> int:
        """Atomically replace the stored bars of the partition (its symbol, its window).

        One transaction deletes the partition's old bars and inserts ``bars``: readers see
        the old version or the new one, never a mix, and a failure anywhere leaves the old
        version. With ``since_ns`` (an incremental recompute) only intraday bars opening at
        or after it are replaced, and the session bars (1d) of the window; ``bars`` must
        hold only those. ``landings`` (what ``LandingRepository.pending`` returned before
        the ticks were read) are consumed in the same transaction; when another build
        consumed any of them first, nothing is written and ``ConcurrentBuildError`` is
        raised (build again). ``volume_only`` (``core.incremental.volume_only_bars`` of the
        same ticks) replaces the stored volume-only rows of the same span (none given:
        there are none). ``refuse_newer`` (a verification of the live path, which writes
        bars as ticks land): when a landing of the symbol other than ``landings`` reaches
        into the window (the rewritten 1d bar spans it), its ticks are not in ``bars`` but
        may be in the stored ones: nothing is written and ``ConcurrentBuildError`` is
        raised (build again).
        ``newer_cut`` (a full build while the live path writes bars): when such landings
        exist, the stored bars they may have changed are kept (the live path wrote them
        from more ticks than this build read): intraday bars opening at or after
        ``newer_cut(first newer tick time)`` and their volume-only rows, and the session
        bars when stored; those landings stay pending for the next verification.
        On PostgreSQL the write holds a transaction lock per symbol that the live path's
        write (``write_live``) takes too, so neither interleaves with the other's check.
        Returns the number of bars written.
        """
        symbol, start_ns, end_ns = part.symbol, part.start_ns, part.end_ns
        columns = self._columns(bars, rule_set, source)
        if len(bars):
            ts = columns["ts"]
            other = sorted(set(bars["symbol"].astype(str)) - {symbol})
            if other:
                raise ValueError(f"partition of {symbol} given bars of {', '.join(other)}")
            if ts.min() < start_ns or ts.max() >= end_ns:
                raise ValueError(f"partition of {symbol}: bars outside [{start_ns}, {end_ns})")
            if bars[np.isin(columns["timeframe"], list(TIMEFRAMES))].duplicated(
                    ["timeframe", "ts"]).any():
                raise ValueError(f"partition of {symbol}: duplicate (timeframe, ts) bars")
        in_window = (bars_t.c.symbol == symbol, bars_t.c.ts >= start_ns, bars_t.c.ts < end_ns)
        if since_ns is None:
            old = bars_t.delete().where(*in_window)
        else:
            session = [n for n, tf in TIMEFRAMES.items() if tf.is_session]
            intraday_ts = columns["ts"][~np.isin(columns["timeframe"], session)]
            if len(intraday_ts) and int(intraday_ts.min()) < since_ns:
                raise ValueError(f"partition of {symbol}: intraday bars before the "
                                 "incremental recompute start")
            # information-driven bars are rebuilt per session by full builds only: an
            # incremental one drops them rather than keep a part of a session's
            old = bars_t.delete().where(*in_window, (bars_t.c.ts >= int(since_ns))
                                        | bars_t.c.timeframe.in_(session)
                                        | bars_t.c.timeframe.not_in(list(TIMEFRAMES)))

        vo = empty_volume_only() if volume_only is None else volume_only
        vo_from = start_ns if since_ns is None else max(start_ns, int(since_ns))
        vo_ts = vo["ts"].to_numpy("int64")
        if len(vo) and (vo_ts.min() < vo_from or vo_ts.max() >= end_ns
                        or set(vo["symbol"].astype(str)) != {symbol}):
            raise ValueError(f"partition of {symbol}: volume-only rows outside the rewrite")
        vo_columns = {c: (vo[c].astype("str") if t == "str" else vo[c].to_numpy(t))
                      for c, t in VOLUME_ONLY_COLUMNS.items()}
        old_vo = volume_only_t.delete().where(volume_only_t.c.symbol == symbol,
                                              volume_only_t.c.ts >= vo_from,
                                              volume_only_t.c.ts < end_ns)

        def write(conn: Connection) -> int:
            cut = None
            if landings is not None:
                _lock_symbols(conn, [symbol])
                if refuse_newer:  # the window: the rewritten 1d bar spans it
                    _refuse_newer(conn, landings, start_ns)
                elif newer_cut is not None and since_ns is None:
                    first = _newer_first(conn, landings)
                    if first is not None:
                        cut = max(start_ns, int(newer_cut(first)))
                _consume(conn, landings)
            if cut is not None:
                return _write_before(conn, symbol, start_ns, cut, columns, vo_columns)
            conn.execute(old)
            conn.execute(old_vo)
            if len(vo):
                bulk.insert_rows(conn, "volume_only_bars", vo_columns)
            return bulk.insert_rows(conn, "bars", columns)

        self._run(write)
        return len(bars)

    def read_volume_only(self, part: Partition, timeframe: str,
                         until_ns: int | None = None) -> pd.DataFrame:
        """Stored volume-only rows of the partition and ``timeframe`` with ts in
        [start, until_ns) (None: the whole window)."""
        symbol = part.symbol
        start_ns, end_ns = window(part.start_ns, part.end_ns if until_ns is None else until_ns)
        c = volume_only_t.c
        query = select(*volume_only_t.columns).where(
            c.symbol == symbol, c.timeframe == timeframe, c.ts >= start_ns,
            c.ts < end_ns).order_by(c.ts)
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        if not rows:
            return empty_volume_only()
        return rows_frame(rows, list(VOLUME_ONLY_COLUMNS)).astype(
            VOLUME_ONLY_COLUMNS)

    def rule_sets(self, part: Partition) -> set[str]:
        """The rule sets the stored bars of the partition were built with."""
        symbol, start_ns, end_ns = part.symbol, part.start_ns, part.end_ns
        query = select(bars_t.c.rule_set).distinct().where(
            bars_t.c.symbol == symbol, bars_t.c.ts >= start_ns, bars_t.c.ts < end_ns)
        return {str(r[0]) for r in self._run(lambda conn: conn.execute(query).all(),
                                             write=False)}

    def upsert(self, bars: pd.DataFrame, rule_set: str, source: str) -> int:
        """Insert or update bars by key (streaming updates); the last of a key wins."""
        if len(bars):
            info = ~np.isin(bars["timeframe"].astype(str).to_numpy(object), list(TIMEFRAMES))
            bars = bars[info | ~bars.duplicated(["symbol", "timeframe", "ts"], keep="last")]
        columns = self._columns(bars, rule_set, source)
        if len(bars) == 0:
            return 0
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in BAR_VALUE_COLUMNS)
        clause = f"ON CONFLICT (symbol, timeframe, ts, nth) DO UPDATE SET {updates}"
        self._run(lambda conn: bulk.insert_rows(conn, "bars", columns, clause))
        return len(bars)

    def write_live(self, bars: pd.DataFrame, rule_set: np.ndarray, source: np.ndarray,
                   touched: pd.DataFrame, volume_only: pd.DataFrame,
                   gone: pd.DataFrame | None = None) -> int:
        """The live path's write of one flush, in one transaction: the bars ``gone``
        (symbol, timeframe, ts: left without ticks by a cancel) deleted; ``bars`` upserted
        by (symbol, timeframe, ts) with each row's ``rule_set`` and ``source``; the stored
        volume-only rows of the base intervals ``touched`` (symbol, timeframe, ts) replaced
        by ``volume_only`` (which holds those of them that are volume-only now). Returns
        the bars written."""
        columns = self._columns(bars, "", "")
        columns["rule_set"] = np.asarray(rule_set, dtype=object).astype(str).astype(object)
        columns["source"] = np.asarray(source, dtype=object).astype(str).astype(object)
        if len(columns["rule_set"]) != len(bars) or len(columns["source"]) != len(bars):
            raise ValueError("write_live: one rule set and one source per bar expected")
        if len(bars) and bars.duplicated(["symbol", "timeframe", "ts"]).any():
            raise ValueError("write_live: duplicate (symbol, timeframe, ts) bars")
        vo_columns = {c: (volume_only[c].astype("str") if t == "str"
                          else volume_only[c].to_numpy(t))
                      for c, t in VOLUME_ONLY_COLUMNS.items()}
        if len(volume_only):
            keys = pd.MultiIndex.from_frame(touched[["symbol", "timeframe", "ts"]])
            if not pd.MultiIndex.from_frame(
                    volume_only[["symbol", "timeframe", "ts"]]).isin(keys).all():
                raise ValueError("write_live: volume-only rows outside the touched intervals")
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in BAR_VALUE_COLUMNS)
        clause = f"ON CONFLICT (symbol, timeframe, ts, nth) DO UPDATE SET {updates}"
        c = volume_only_t.c
        old_vo = volume_only_t.delete().where(
            c.symbol == bindparam("s"), c.timeframe == bindparam("tf"),
            c.ts.in_(bindparam("ts", expanding=True)))
        groups = [] if len(touched) == 0 else list(
            touched.groupby(["symbol", "timeframe"], sort=True)["ts"])
        gone = gone if gone is not None and len(gone) else None
        b = bars_t.c
        old_bars = bars_t.delete().where(b.symbol == bindparam("s"), b.timeframe == bindparam("tf"),
                                         b.ts.in_(bindparam("ts", expanding=True)))

        def write(conn: Connection) -> int:
            _lock_symbols(conn, [*symbols_of(bars), *symbols_of(touched)])
            for (symbol, tf), ts in ([] if gone is None else gone.groupby(
                    ["symbol", "timeframe"], sort=True)["ts"]):
                conn.execute(old_bars, {"s": str(symbol), "tf": str(tf),
                                        "ts": ts.to_numpy("int64").tolist()})
            for (symbol, tf), ts in groups:
                values = ts.to_numpy("int64").tolist()
                for i in range(0, len(values), 900):
                    conn.execute(old_vo, {"s": str(symbol), "tf": str(tf),
                                          "ts": values[i:i + 900]})
            if len(volume_only):
                bulk.insert_rows(conn, "volume_only_bars", vo_columns)
            return bulk.insert_rows(conn, "bars", columns, clause) if len(bars) else 0

        self._run(write)
        return len(bars)

    def read_partition(self, part: Partition, timeframes: Iterable[str] | None = None,
                       until_ns: int | None = None) -> pd.DataFrame:
        """Bars of the partition (and timeframes; None = all) opening before ``until_ns``
        (None: the whole window)."""
        return self.read(part.symbol, timeframes, part.start_ns,
                         part.end_ns if until_ns is None else until_ns)

    def read(self, symbols: str | Iterable[str], timeframes: Iterable[str] | None,
             start_ns: int, end_ns: int) -> pd.DataFrame:
        """Bars of the symbols (and timeframes; None = all) with ts in [start, end)."""
        start_ns, end_ns = window(start_ns, end_ns)
        symbols = [symbols] if isinstance(symbols, str) else list(symbols)
        cols = [bars_t.c[c] for c in BAR_COLUMNS]
        cond = [bars_t.c.symbol.in_(bindparam("symbols", expanding=True)),
                bars_t.c.ts >= start_ns, bars_t.c.ts < end_ns]
        params: dict[str, object] = {"symbols": symbols}
        if timeframes is not None:
            timeframes = list(timeframes)
            unknown = sorted(t for t in set(timeframes) if not is_timeframe(t))
            if unknown:
                raise ValueError(f"unknown timeframe(s): {', '.join(unknown)}")
            cond.append(bars_t.c.timeframe.in_(bindparam("timeframes", expanding=True)))
            params["timeframes"] = timeframes
        if not symbols or (timeframes is not None and not timeframes):
            return empty_bars()
        c = bars_t.c
        query = select(*cols).where(and_(*cond)).order_by(c.symbol, c.timeframe, c.ts, c.nth)
        rows = self._run(lambda conn: conn.execute(query, params).all(), write=False)
        return bars_frame(rows)

    def partitions(self, symbol: str | None = None) -> pd.DataFrame:
        """Row counts per (symbol, timeframe): a quick look at what is stored."""
        query = select(bars_t.c.symbol, bars_t.c.timeframe, func.count().label("bars")).group_by(
            bars_t.c.symbol, bars_t.c.timeframe)
        if symbol is not None:
            query = query.where(bars_t.c.symbol == symbol)
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        return rows_frame(rows, ["symbol", "timeframe", "bars"])


def symbols_of(frame: pd.DataFrame) -> list[str]:
    return [] if len(frame) == 0 else [str(s) for s in pd.unique(frame["symbol"])]


def bars_frame(rows) -> pd.DataFrame:
    if not rows:
        return empty_bars()
    frame = rows_frame(rows, list(BAR_COLUMNS)).astype(BAR_COLUMNS)
    return sort_bars(frame)


class QuarantineRepository(Repository):
    """Rejected rows with their reason, per partition (idempotent)."""

    def add(self, quarantine: pd.DataFrame, partition: str | np.ndarray) -> int:
        """Store the rows under ``partition`` (one key, or one key per row), in one bulk
        insert; a row stored before is kept as it is. Returns the rows new."""
        require_columns(quarantine, QUARANTINE_COLUMNS, "quarantine")
        if len(quarantine) == 0:
            return 0
        if isinstance(partition, str):
            partitions = np.full(len(quarantine), partition, dtype=object)
        else:
            partitions = np.asarray(partition, dtype=object).astype(str).astype(object)
            if partitions.shape != (len(quarantine),):
                raise ValueError(f"{partitions.shape} partition keys for {len(quarantine)} "
                                 "quarantine rows: one key per row expected")
        columns = {
            "partition": partitions,
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
        frame = rows_frame(rows, list(QUARANTINE_COLUMNS))
        frame = frame.astype(QUARANTINE_COLUMNS)
        order = np.lexsort((frame["reason"].to_numpy(str), frame["source_row"].to_numpy(),
                            frame["source"].to_numpy(str)))
        return frame.iloc[order].reset_index(drop=True)


class ConcurrentBuildError(StoreError):
    """Another build of the partition consumed the landings this one read: build again."""


@dataclass(frozen=True)
class Landings:
    """The tick landings pending in a partition, as one build saw them."""

    partition: Partition
    ids: tuple[int, ...]
    first_ns: int | None  # earliest landed tick time within the window (None: none)
    landed_ns: int | None  # wall clock of the earliest landing (None: none)

    @property
    def symbol(self) -> str:
        return self.partition.symbol

    @property
    def start_ns(self) -> int:
        return self.partition.start_ns

    @property
    def end_ns(self) -> int:
        return self.partition.end_ns

    def __len__(self) -> int:
        return len(self.ids)


def _consume(conn: Connection, landings: Landings) -> None:
    """Remove the window's part of the landings; a landing reaching outside the window
    keeps that part (as new rows with the same landing time)."""
    if not landings.ids:
        return
    c = landings_t.c
    ids = {"ids": list(landings.ids)}
    chosen = c.id.in_(bindparam("ids", expanding=True))
    rows = conn.execute(select(*landings_t.columns).where(chosen), ids).all()
    # fewer rows: consumed before this transaction; fewer deleted: by a concurrent one
    # (PostgreSQL, which re-checks the rows after the other commits)
    if len(rows) != len(ids["ids"]) or \
            conn.execute(landings_t.delete().where(chosen), ids).rowcount != len(rows):
        raise ConcurrentBuildError(
            f"another build of {landings.symbol} consumed its tick landings meanwhile")
    rest = []
    for r in rows:
        if r.lo_ts < landings.start_ns:
            rest.append({"symbol": r.symbol, "lo_ts": r.lo_ts,
                         "hi_ts": min(r.hi_ts, landings.start_ns - 1), "ticks": r.ticks,
                         "landed_ns": r.landed_ns})
        if r.hi_ts >= landings.end_ns:
            rest.append({"symbol": r.symbol, "lo_ts": max(r.lo_ts, landings.end_ns),
                         "hi_ts": r.hi_ts, "ticks": r.ticks, "landed_ns": r.landed_ns})
    if rest:
        conn.execute(landings_t.insert(), rest)


_SESSION_TIMEFRAMES = [n for n, tf in TIMEFRAMES.items() if tf.is_session]


def _lock_symbols(conn: Connection, symbols) -> None:
    """PostgreSQL: a transaction-scoped advisory lock per symbol (sorted: no deadlock)
    that every bar write of the symbol takes (SQLite's write lock already serializes)."""
    if conn.dialect.name != "postgresql":
        return
    for symbol in sorted({str(s) for s in symbols}):
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                     {"k": f"phase1.bars.{symbol}"})


def _take(columns: dict[str, object], mask: np.ndarray) -> dict[str, object]:
    return {k: (v.to_numpy() if hasattr(v, "to_numpy") else np.asarray(v))[mask]
            for k, v in columns.items()}


def _write_before(conn: Connection, symbol: str, start_ns: int, cut: int,
                  columns: dict[str, object], vo_columns: dict[str, object]) -> int:
    """A full build's write that keeps what newer landings may have changed: intraday
    bars and volume-only rows from ``cut`` on stay as stored, session bars too (inserted
    only where none is stored)."""
    c = bars_t.c
    conn.execute(bars_t.delete().where(c.symbol == symbol, c.ts >= start_ns, c.ts < cut,
                                       c.timeframe.not_in(_SESSION_TIMEFRAMES)))
    v = volume_only_t.c
    conn.execute(volume_only_t.delete().where(v.symbol == symbol, v.ts >= start_ns,
                                              v.ts < cut))
    vo_before = np.asarray(vo_columns["ts"]) < cut
    if vo_before.any():
        bulk.insert_rows(conn, "volume_only_bars", _take(vo_columns, vo_before))
    session = np.isin(np.asarray(columns["timeframe"], dtype=object), _SESSION_TIMEFRAMES)
    before = ~session & (np.asarray(columns["ts"]) < cut)
    n = bulk.insert_rows(conn, "bars", _take(columns, before)) if before.any() else 0
    if session.any():
        n += bulk.insert_rows(conn, "bars", _take(columns, session),
                              "ON CONFLICT (symbol, timeframe, ts, nth) DO NOTHING")
    return n


def _newer_first(conn: Connection, landings: Landings) -> int | None:
    """The earliest tick time (in the window) of the symbol's landings that ``landings``
    does not hold (ticks landed after the build read), None when there is none."""
    c = landings_t.c
    rows = conn.execute(select(c.id, c.lo_ts).where(
        c.symbol == landings.symbol, c.lo_ts < landings.end_ns,
        c.hi_ts >= landings.start_ns)).all()
    firsts = [int(r.lo_ts) for r in rows if int(r.id) not in set(landings.ids)]
    return max(landings.start_ns, min(firsts)) if firsts else None


def _refuse_newer(conn: Connection, landings: Landings, from_ns: int) -> None:
    """``ConcurrentBuildError`` when a landing of the symbol that ``landings`` does not
    hold reaches into [from_ns, end) of its window (ticks landed after the build read)."""
    c = landings_t.c
    query = select(c.id).where(c.symbol == landings.symbol, c.lo_ts < landings.end_ns,
                               c.hi_ts >= max(int(from_ns), landings.start_ns))
    newer = {int(r[0]) for r in conn.execute(query).all()} - set(landings.ids)
    if newer:
        raise ConcurrentBuildError(
            f"ticks of {landings.symbol} landed while its bars were rebuilt: build again")


class LandingRepository(Repository):
    """Tick landings not yet in the stored bars (``tables.tick_landings``)."""

    def consume(self, landings: Landings) -> None:
        """Consume ``landings`` without writing bars (the stored bars already hold their
        ticks); ``ConcurrentBuildError`` when another build consumed any of them first."""
        self._run(lambda conn: _consume(conn, landings))

    def pending(self, part: Partition) -> Landings:
        """The landings of the partition's symbol reaching into its window."""
        symbol, start_ns, end_ns = part.symbol, part.start_ns, part.end_ns
        c = landings_t.c
        query = select(c.id, c.lo_ts, c.landed_ns).where(
            c.symbol == symbol, c.lo_ts < end_ns, c.hi_ts >= start_ns).order_by(c.id)
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        return Landings(
            part, tuple(int(r.id) for r in rows),
            max(start_ns, min(int(r.lo_ts) for r in rows)) if rows else None,
            min(int(r.landed_ns) for r in rows) if rows else None,
        )

    def mark(self, part: Partition) -> None:
        """Mark the partition for a full rebuild (its stored bars were written from
        something other than the store's ticks)."""
        start_ns, end_ns = part.start_ns, part.end_ns
        self._run(lambda conn: conn.execute(landings_t.insert(), [
            {"symbol": part.symbol, "lo_ts": start_ns, "hi_ts": end_ns - 1, "ticks": 0,
             "landed_ns": time.time_ns()}]))

    def spans(self) -> pd.DataFrame:
        """Every pending landing: id, symbol, lo_ts, hi_ts (what the sensor watches)."""
        c = landings_t.c
        rows = self._run(lambda conn: conn.execute(
            select(c.id, c.symbol, c.lo_ts, c.hi_ts).order_by(c.id)).all(), write=False)
        frame = rows_frame(rows, ["id", "symbol", "lo_ts", "hi_ts"])
        return frame.astype({"id": "int64", "symbol": "str", "lo_ts": "int64",
                             "hi_ts": "int64"})


class WatermarkRepository(Repository):
    """Ingestion progress per (source, symbol): the latest tick time landed, in UTC ns."""

    def get(self, source: str, symbol: str) -> int | None:
        query = select(watermarks_t.c.ts).where(
            watermarks_t.c.source == source, watermarks_t.c.symbol == symbol
        )
        value = self._run(lambda conn: conn.execute(query).scalar_one_or_none(), write=False)
        return None if value is None else int(value)

    def latest(self, symbol: str, source_prefix: str) -> tuple[str, int] | None:
        """The newest watermark of ``symbol`` among the sources starting with
        ``source_prefix`` (taken literally): (source, ts in UTC ns), None when none."""
        c = watermarks_t.c
        query = select(c.source, c.ts).where(
            c.symbol == symbol, c.source.startswith(source_prefix, autoescape=True)
        ).order_by(c.ts.desc(), c.source.desc()).limit(1)
        row = self._run(lambda conn: conn.execute(query).first(), write=False)
        return None if row is None else (str(row[0]), int(row[1]))

    def advance(self, source: str, symbol: str, ts_ns: int) -> int:
        """Move the watermark to ``ts_ns`` unless it is already later; returns the new value."""
        ts_ns = int(ts_ns)

        def advance(conn: Connection) -> int:
            ins = insert_for(conn, watermarks_t).values(source=source, symbol=symbol, ts=ts_ns)
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

    def all(self) -> list[tuple[str, str, int]]:
        """Every watermark: (source, symbol, ts in UTC ns), by source and symbol."""
        c = watermarks_t.c
        query = select(c.source, c.symbol, c.ts).order_by(c.source, c.symbol)
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        return [(str(src), str(sym), int(ts)) for src, sym, ts in rows]


__all__ = [
    "BarRepository",
    "ConcurrentBuildError",
    "LandingRepository",
    "LandResult",
    "Landings",
    "QuarantineRepository",
    "StoreError",
    "TickRepository",
    "WatermarkRepository",
]
