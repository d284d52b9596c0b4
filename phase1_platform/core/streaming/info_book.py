"""Streaming information-driven bars (``t<N>``, ``v<V>``, ``d<X>``): the info book.

A tick bar's boundaries depend on every earlier tick of its session, so unlike time bars
they cannot be kept as per-interval partials: the book keeps, per symbol and trading
session, the session's accepted ticks in canonical order (ordering key ``(ts, sequence,
source, source_row)``, as the minute book's) and, per timeframe, where each segment
starts and its bar. A change at position ``p`` of a session (a new tick, a late one
earlier in canonical order than ticks already seen, or a removed or replaced tick)
leaves the segments that end before ``p`` as they are (a bar's close depends only on
its own ticks) and rebuilds the rest with the batch kernel (``info_bars.info_segments``)
on the session's ticks from the start of the segment holding ``p``:
``InfoBook.restate_from`` is that one function, and every kind of change calls it.

A drain reports, per (symbol, timeframe, session) restated, the first bar time that may
have changed (``Restated``: ``ts`` .. ``until`` the session close): the bars of the drain
are every current bar of that span, and a bar stored or shown before in it and absent now
is gone (a late tick shifts every later boundary of its session).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..calendar import Sessions, sessions_between
from ..engine import bar_frame, sort_bars
from ..info_bars import info_segments
from ..schema import empty_bars, empty_frame, notional_units, qty_units
from ..timeframes import NS_PER_MINUTE, Timeframe
from .book import FLOOR, MinuteBook

RESTATED_COLUMNS = {"symbol": "str", "timeframe": "str", "ts": "int64", "until": "int64"}

# a tick of a session: (ordering key, price, size, sets prices, counts in volume)
Tick = tuple[tuple[int, int, str, int], float, float, bool, bool]


@dataclass
class _Cut:
    """One timeframe's segments of a session: start row, first tick time and bar (the
    bar arrays' row, or None for a segment without a price-setting tick) of each."""

    starts: list[int] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    bars: list[tuple | None] = field(default_factory=list)


@dataclass
class SessionTicks:
    """The accepted ticks of one symbol's session in canonical order, and their cuts."""

    sessions: Sessions  # this session only
    rows: list[Tick] = field(default_factory=list)
    cuts: dict[str, _Cut] = field(default_factory=dict)
    restated: dict[str, int] = field(default_factory=dict)  # timeframe -> first ts changed

    @property
    def close(self) -> int:
        return int(self.sessions.closes[0])


class InfoBook:
    """Information-driven bars of every symbol, per session (see the module doc)."""

    def __init__(self, timeframes: list[Timeframe], calendar: str) -> None:
        self.timeframes = [tf for tf in timeframes if tf.is_info]
        self.calendar = calendar
        self.state: dict[str, dict[int, SessionTicks]] = {}  # symbol -> open ns -> session
        self._last: dict[str, SessionTicks] = {}  # symbol -> session of its last tick
        self._floor: dict[str, int] = {}  # symbol -> the retention floor last applied

    def _session(self, symbol: str, ts: int) -> SessionTicks | None:
        """The session of ``symbol`` holding ``ts`` (created when new); None outside."""
        last = self._last.get(symbol)
        if last is not None and last.sessions.opens[0] <= ts < last.close:
            return last
        found = sessions_between(ts, ts, self.calendar)
        i = int(found.locate(np.array([ts], dtype="int64"))[0])
        if i < 0:
            return None
        opens = int(found.opens[i])
        by_open = self.state.setdefault(symbol, {})
        st = by_open.get(opens)
        if st is None:
            one = Sessions(found.opens[i:i + 1], found.closes[i:i + 1], found.labels[i:i + 1])
            st = by_open[opens] = SessionTicks(one)
        self._last[symbol] = st
        return st

    def add(self, symbol: str, key: tuple[int, int, str, int], price: float, size: float,
            price_ok: bool, volume_ok: bool) -> None:
        """One accepted tick (it sets prices or counts in volume)."""
        st = self._session(symbol, key[0])
        if st is not None:
            self.insert(st, [(key, price, size, price_ok, volume_ok)])

    def add_rows(self, symbol: str, ts: np.ndarray, seq, source, row: np.ndarray,
                 price: np.ndarray, size: np.ndarray, price_ok: np.ndarray,
                 volume_ok: np.ndarray) -> None:
        """Accepted ticks of one symbol in canonical order (``seq`` None: -1; ``source``
        one string or one per row)."""
        n = len(ts)
        if n == 0:
            return
        keys = zip(ts.tolist(), [-1] * n if seq is None else seq.tolist(),
                   [source] * n if isinstance(source, str) else list(source),
                   row.tolist(), strict=True)
        ticks = list(zip(keys, price.tolist(), size.tolist(), price_ok.tolist(),
                         volume_ok.tolist(), strict=True))
        sessions = sessions_between(int(ts[0]), int(ts[-1]), self.calendar)
        where = sessions.locate(ts)
        bounds = np.flatnonzero(np.r_[True, where[1:] != where[:-1]]).tolist() + [n]
        for a, z in zip(bounds[:-1], bounds[1:], strict=True):
            if where[a] >= 0:
                st = self._session(symbol, ticks[a][0][0])
                if st is not None:
                    self.insert(st, ticks[a:z])

    def insert(self, st: SessionTicks, ticks: list[Tick]) -> None:
        """Merge ticks (canonical order, all of session ``st``) into it and restate."""
        rows = st.rows
        if not rows or ticks[0][0] > rows[-1][0]:
            at = len(rows)
            rows.extend(ticks)
        else:  # late ticks: merge the tail (two sorted runs: one linear pass)
            at = bisect_left(rows, ticks[0])
            rows[at:] = sorted(rows[at:] + ticks)
        self.restate_from(st, at)

    def restate_from(self, st: SessionTicks, at: int) -> None:
        """Rebuild every segment of ``st`` that the ticks from row ``at`` on can change:
        call it after any change of ``st.rows`` from ``at`` (added, late, removed or
        replaced ticks; rows before ``at`` unchanged)."""
        for tf in self.timeframes:
            cut = st.cuts.setdefault(tf.name, _Cut())
            j = max(bisect_right(cut.starts, at) - 1, 0)
            r = cut.starts[j] if cut.starts else 0
            first_ts = [cut.ts[j]] if j < len(cut.ts) else []
            del cut.starts[j:], cut.ts[j:], cut.bars[j:]
            tail = st.rows[r:]
            if tail:
                self._rebuild(tf, st.sessions, tail, r, cut)
                first_ts.append(cut.ts[j])
            if first_ts:
                old = st.restated.get(tf.name)
                since = min(first_ts)
                st.restated[tf.name] = since if old is None else min(old, since)

    @staticmethod
    def _rebuild(tf: Timeframe, sessions: Sessions, tail: list[Tick], r: int,
                 cut: _Cut) -> None:
        """Append the segments of ``tail`` (the session's rows from ``r``) to ``cut``."""
        keys, price, size, pok, vok = zip(*tail, strict=True)
        ts = np.fromiter((k[0] for k in keys), dtype="int64", count=len(keys))
        price_a = np.array(price, dtype="float64")
        size_a = np.array(size, dtype="float64")
        seg = info_segments(tf, ts, None, price_a, qty_units(size_a),
                            notional_units(price_a, size_a), np.array(pok, dtype=bool),
                            np.array(vok, dtype=bool), sessions)
        starts = seg.starts.tolist()
        bars: list[tuple | None] = [None] * len(starts)
        for i, bar in zip(seg.segment.tolist(), zip(*(a.tolist() for a in seg.arrays[1:]),
                                                    strict=True), strict=True):
            bars[i] = bar
        cut.starts.extend(s + r for s in starts)
        cut.ts.extend(ts[seg.starts].tolist())
        cut.bars.extend(bars)

    def drop_minutes(self, symbol: str, minutes: np.ndarray) -> None:
        """Remove ``symbol``'s ticks of ``minutes`` (minute starts, UTC ns, ascending) and
        restate from the first removed: a cancel or correction replaces the minutes' ticks
        with the amended ones, inserted again after (``restate.restate_minutes``)."""
        for st in self.state.get(symbol, {}).values():
            rows, first = st.rows, None
            for m in reversed(minutes.tolist()):
                lo = bisect_left(rows, m, key=_tick_ts)
                hi = bisect_left(rows, m + NS_PER_MINUTE, key=_tick_ts)
                if lo < hi:
                    del rows[lo:hi]
                    first = lo
            if first is not None:
                self.restate_from(st, first)

    def evict_before(self, symbol: str, floor: int) -> None:
        """Forget the sessions of ``symbol`` that close at or before ``floor`` (the minute
        book's retention floor: older ticks are expired there)."""
        if self._floor.get(symbol) == floor:
            return
        self._floor[symbol] = floor
        by_open = self.state.get(symbol)
        if not by_open:
            return
        for opens in [o for o, st in by_open.items() if st.close <= floor]:
            if self._last.get(symbol) is by_open[opens]:
                del self._last[symbol]
            del by_open[opens]

    def bars(self) -> pd.DataFrame:
        """Every current bar (internal bar frame, canonical order)."""
        return self._frame({(s, o, tf.name): None for s, by_open in self.state.items()
                            for o in by_open for tf in self.timeframes})

    def drain(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(bars of every span restated since the last drain, the spans: ``Restated``)."""
        spans = {}
        for s, by_open in self.state.items():
            for o, st in by_open.items():
                for name, since in st.restated.items():
                    spans[(s, o, name)] = since
                st.restated = {}
        if not spans:
            return empty_bars(), empty_frame(RESTATED_COLUMNS)
        restated = pd.DataFrame({
            "symbol": [s for s, _, _ in spans], "timeframe": [n for _, _, n in spans],
            "ts": list(spans.values()),
            "until": [self.state[s][o].close for s, o, _ in spans]}).astype(RESTATED_COLUMNS)
        return self._frame(spans), restated

    def _frame(self, spans: dict) -> pd.DataFrame:
        """The bars of ``spans`` ((symbol, session open, timeframe) -> first ts, None: all)."""
        frames = []
        for (symbol, opens, name), since in sorted(spans.items(), key=lambda kv: kv[0]):
            cut = self.state[symbol][opens].cuts.get(name)
            if cut is None:
                continue
            lo = 0 if since is None else bisect_left(cut.ts, since)
            rows = [b for b in cut.bars[lo:] if b is not None]
            if rows:
                cols = [np.array(c) for c in zip(*rows, strict=True)]
                frames.append(bar_frame(np.array([symbol], dtype=object), name,
                                        np.zeros(len(rows), dtype="int64"), *cols))
        if not frames:
            return empty_bars()
        return sort_bars(pd.concat(frames, ignore_index=True))


def _tick_ts(tick: Tick) -> int:
    return tick[0][0]


def with_info(on_tick, book: MinuteBook, info: InfoBook):
    """``on_tick`` that also hands each accepted tick to ``info`` (the same ordering key:
    the arrival counter is taken here when no ``source_row`` is given)."""
    arrival, elig_get, judge, state_get = book.arrival, book.elig.get, book.judge, book.state.get

    def on_tick_info(symbol: str, ts_ns: int, price: float, size: float,
                     conditions: str = "", sequence: int = -1, trade_id: str = "",
                     source: str = "stream", source_row: int | None = None) -> bool:
        if source_row is None:
            source_row = arrival[0]
            arrival[0] = source_row + 1
        if not on_tick(symbol, ts_ns, price, size, conditions, sequence, trade_id, source,
                       source_row):
            return False
        e = elig_get(conditions) or judge(conditions)
        pok, vok = (e[0], e[1]) if size > 0 else (e[2], False)
        info.evict_before(symbol, state_get(symbol)[FLOOR])
        info.add(symbol, (ts_ns, sequence, source, source_row), price, size, pok, vok)
        return True

    return on_tick_info
