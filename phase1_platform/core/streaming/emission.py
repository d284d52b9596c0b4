"""What the aggregator hands out: ``bars()`` (every current bar) and ``drain_updates()``
(the bars created or restated since the previous drain), both internal bar frames in
canonical order, built from the minute book on demand (``rollup.bars_from_minutes``).
``drain_changes()`` is ``drain_updates()`` plus what a store of the bars needs beside them:
the base timeframe's intervals the drain touched and, among them, the *volume-only* ones
(volume but no price-setting tick: no bar, yet their volume is in the coarser bars), in
``core.incremental.volume_only_bars``' columns, so a store written from the stream holds
exactly what a batch build stores.

A drain rebuilds only a window per symbol: the whole buckets, of every timeframe, that
hold a minute changed since the last drain (for the 1d bar, the whole session), and keeps
the bars of those buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..calendar import sessions_between
from ..engine import bar_frame, bucket_for, sort_bars
from ..incremental import VOLUME_ONLY_COLUMNS
from ..schema import BAR_COLUMNS, empty_bars, empty_frame
from ..timeframes import NS_PER_MINUTE, Timeframe
from .book import (
    BARS,
    CLOSE,
    COUNT,
    DIRTY,
    HIGH,
    LAST_BAR,
    LAST_MIN,
    LOW,
    NO_MINUTE,
    NOTIONAL,
    OPEN,
    OPEN_KEY,
    QTY,
    MinuteBook,
)
from .info_book import RESTATED_COLUMNS, InfoBook
from .rollup import Minutes, bars_from_minutes, exact_int64


def _merge(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Two bar frames in canonical order as one."""
    if len(b) == 0:
        return a
    if len(a) == 0:
        return b
    return sort_bars(pd.concat([a, b], ignore_index=True).astype(BAR_COLUMNS))

TOUCHED_COLUMNS = {"symbol": "str", "timeframe": "str", "ts": "int64"}


@dataclass
class Changes:
    """One drain: the bars created or restated (every timeframe touched), the base
    timeframe's intervals touched (``touched``: symbol, timeframe, ts) and the volume-only
    ones among them (``volume_only``: ``VOLUME_ONLY_COLUMNS``). An interval touched and not
    volume-only has a bar in ``bars`` (or is outside every session). ``restated``
    (``info_book.RESTATED_COLUMNS``): per information-driven (symbol, timeframe, session)
    changed, the span [ts, until) whose bars ``bars`` holds in full: a bar of that span
    not in ``bars`` no longer exists."""

    bars: pd.DataFrame
    touched: pd.DataFrame
    volume_only: pd.DataFrame
    base: str | None  # the base (finest intraday) timeframe; None: no intraday timeframe
    restated: pd.DataFrame = field(default_factory=lambda: empty_frame(RESTATED_COLUMNS))


_EMPTY: dict[str, pd.DataFrame] = {}


def _empty(columns: dict) -> pd.DataFrame:
    """An empty frame of ``columns``, built once (handed out read-only)."""
    key = ",".join(columns)
    if key not in _EMPTY:
        _EMPTY[key] = empty_frame(columns)
    return _EMPTY[key]


def _no_changes(base: str | None) -> Changes:
    return Changes(_empty(BAR_COLUMNS), _empty(TOUCHED_COLUMNS), _empty(VOLUME_ONLY_COLUMNS),
                   base)


class BarEmitter:
    """Bars of ``timeframes`` from the minute book of one aggregator."""

    def __init__(self, book: MinuteBook, timeframes: list[Timeframe], calendar: str,
                 info: InfoBook | None = None) -> None:
        self.book = book
        self.timeframes = timeframes  # time bars (from the minute book)
        self.calendar = calendar
        self.info = info  # information-driven bars, when any is requested

    def bars(self) -> pd.DataFrame:
        """Every current bar of every timeframe (internal bar frame, canonical order)."""
        bars = self._build({s: None for s in self.book.state})
        return bars if self.info is None else _merge(bars, self.info.bars())

    @property
    def base(self) -> Timeframe | None:
        """The finest intraday timeframe (what session bars roll up from), if any."""
        intra = [tf for tf in self.timeframes if tf.is_intraday]
        return min(intra, key=lambda tf: tf.ns) if intra else None

    def drain_updates(self) -> pd.DataFrame:
        """Bars created or restated since the previous drain, all timeframes touched."""
        bars = self.drain_changes(with_volume_only=False).bars
        return bars if len(bars) else empty_bars()  # a frame of the caller's own

    def drain_changes(self, with_volume_only: bool = True) -> Changes:
        """``drain_updates()`` with the base intervals touched and their volume-only rows,
        and the information-driven spans restated (``Changes.restated``)."""
        changes = self._drain_time(with_volume_only)
        if self.info is not None:
            bars, changes.restated = self.info.drain()
            changes.bars = _merge(changes.bars, bars)
        return changes

    def _drain_time(self, with_volume_only: bool) -> Changes:
        """The time bars' part of ``drain_changes``."""
        state = self.book.state
        base = self.base
        dirty = {s: st[DIRTY] for s, st in state.items() if st[DIRTY]}
        if not dirty:
            return _no_changes(base.name if base else None)
        dirty_arr = {s: np.fromiter(d, dtype="int64", count=len(d)) for s, d in dirty.items()}
        for st in state.values():
            st[DIRTY] = set()
            # the next tick must mark its minute dirty again
            st[LAST_MIN], st[LAST_BAR] = NO_MINUTE, None
        lo_all = min(int(a.min()) for a in dirty_arr.values())
        hi_all = max(int(a.max()) for a in dirty_arr.values())
        sessions = sessions_between(lo_all, hi_all, self.calendar)
        select: dict[str, tuple[int, int]] = {}
        touched: dict[tuple[str, str], np.ndarray] = {}
        for s, mins in dirty_arr.items():
            lo, hi = int(mins.min()), int(mins.max()) + NS_PER_MINUTE
            for tf in self.timeframes:
                b = bucket_for(mins, tf, sessions)
                inside = b >= 0
                if not inside.any():
                    continue
                touched[(s, tf.name)] = np.unique(b[inside])
                if tf.is_session:
                    idx = sessions.locate(mins[inside])
                    lo = min(lo, int(sessions.opens[idx].min()))
                    hi = max(hi, int(sessions.closes[idx].max()))
                else:
                    lo = min(lo, int(b[inside].min()))
                    hi = max(hi, int(b[inside].max()) + tf.ns)
            select[s] = (lo, hi)
        out, minutes = self._build(select, sessions_hint=(lo_all, hi_all), keep_minutes=True)
        changes = _no_changes(base.name if base else None)
        if with_volume_only and base is not None:
            changes.touched, changes.volume_only = _base_changes(
                minutes, sorted(select), dirty_arr, base)
        if len(out) == 0:
            changes.bars = out
            return changes
        sym = out["symbol"].to_numpy(object)
        tfn = out["timeframe"].to_numpy(object)
        ts = out["ts"].to_numpy("int64")
        keep = np.zeros(len(out), dtype=bool)
        for (s, name), buckets in touched.items():
            rows = np.flatnonzero((sym == s) & (tfn == name))
            keep[rows[np.isin(ts[rows], buckets)]] = True
        changes.bars = out[keep].reset_index(drop=True)
        return changes

    def _build(self, select: dict, sessions_hint: tuple[int, int] | None = None,
               keep_minutes: bool = False):
        """Bars from the minute state of ``select`` (symbol -> None for all minutes, or a
        [lo, hi) window holding whole buckets of every timeframe); with ``keep_minutes``
        (bars, the ``Minutes`` they were built from, None when there is none)."""
        symbols = sorted(select)
        minutes = self._minutes(symbols, select)
        if minutes is None:
            return (empty_bars(), None) if keep_minutes else empty_bars()
        minute = minutes.minute
        lo_ns, hi_ns = sessions_hint or (int(minute.min()), int(minute.max()))
        sessions = sessions_between(
            min(lo_ns, int(minute.min())), max(hi_ns, int(minute.max())), self.calendar
        )
        names = np.asarray(symbols, dtype=object)
        out = []
        for tf in self.timeframes:
            parts = bars_from_minutes(minutes, tf, sessions)
            if parts is not None:
                out.append(bar_frame(names, tf.name, *parts))
        bars = sort_bars(pd.concat(out, ignore_index=True).astype(BAR_COLUMNS)) if out \
            else empty_bars()
        return (bars, minutes) if keep_minutes else bars

    def _minutes(self, symbols: list[str], select: dict) -> Minutes | None:
        """The selected partial bars as columns in (symbol, minute) order (symbol codes
        index ``symbols``); None when there is none."""
        parts = []
        for code, s in enumerate(symbols):
            bars = self.book.state[s][BARS]
            if not bars:
                continue
            mins = np.fromiter(bars.keys(), dtype="int64", count=len(bars))
            vals = list(bars.values())
            window = select[s]
            if window is not None:
                idx = np.flatnonzero((mins >= window[0]) & (mins < window[1]))
                mins = mins[idx]
                vals = [vals[i] for i in idx.tolist()]
            if len(vals) == 0:
                continue
            order = np.argsort(mins, kind="stable")
            mins = mins[order]
            vals = [vals[i] for i in order.tolist()]
            parts.append((code, mins, vals))
        if not parts:
            return None
        sym = np.concatenate([np.full(len(m), c, dtype="int64") for c, m, _ in parts])
        minute = np.concatenate([m for _, m, _ in parts])
        vals = [v for _, _, vs in parts for v in vs]
        cols = list(zip(*vals, strict=True))
        o, h, lo, c = (np.array(cols[i], dtype="float64") for i in (OPEN, HIGH, LOW, CLOSE))
        q, q_over = exact_int64(cols[QTY])
        nv, nv_over = exact_int64(cols[NOTIONAL])
        k = np.array(cols[COUNT], dtype="int64")
        priced = np.fromiter((x is not None for x in cols[OPEN_KEY]), dtype=bool,
                             count=len(vals))
        return Minutes(sym, minute, o, h, lo, c, q, nv, k, priced,
                       (("volume", q_over), ("price x size", nv_over)))


def _base_changes(minutes: Minutes | None, symbols: list[str], dirty: dict[str, np.ndarray],
                  base: Timeframe) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(base intervals holding a dirty minute, the volume-only ones among them with their
    summed qty, notional and trade count) from the drained window's minutes. An interval
    is volume-only when none of its minutes holds a price-setting tick."""
    names = sorted(dirty)
    buckets = [np.unique(dirty[s] // base.ns * base.ns) for s in names]
    touched_sym = np.repeat(np.asarray(names, dtype=object), [len(b) for b in buckets])
    touched_ts = np.concatenate(buckets) if buckets else np.empty(0, dtype="int64")
    touched = pd.DataFrame({"symbol": touched_sym, "timeframe": base.name,
                            "ts": touched_ts}).astype(TOUCHED_COLUMNS)
    if minutes is None or len(minutes.minute) == 0 or bool(minutes.priced.all()):
        return touched, _empty(VOLUME_ONLY_COLUMNS)
    # minutes are in (symbol, minute) order: runs of one (symbol, base interval) are groups
    bucket = minutes.minute // base.ns * base.ns
    new = np.r_[True, (minutes.sym[1:] != minutes.sym[:-1]) | (bucket[1:] != bucket[:-1])]
    starts = np.flatnonzero(new)
    priced = np.logical_or.reduceat(minutes.priced, starts)
    groups = starts[~priced]
    if len(groups) == 0:
        return touched, _empty(VOLUME_ONLY_COLUMNS)
    sums = [np.add.reduceat(col, starts)[~priced] for col in (minutes.q, minutes.nv, minutes.k)]
    sym = np.asarray(symbols, dtype=object)[minutes.sym[groups]]
    ts = bucket[groups]
    mine = np.zeros(len(groups), dtype=bool)
    for s, b in zip(names, buckets, strict=True):
        rows = sym == s
        mine[rows] = np.isin(ts[rows], b)
    vo = pd.DataFrame({"symbol": sym[mine], "timeframe": base.name, "ts": ts[mine],
                       "qty": sums[0][mine], "notional": sums[1][mine],
                       "trade_count": sums[2][mine]})
    return touched, vo.astype(VOLUME_ONLY_COLUMNS)
