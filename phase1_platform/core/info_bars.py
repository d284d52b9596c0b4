"""Information-driven bars: tick (``t<N>``), volume (``v<V>``) and value (``d<X>``) bars.

Semantics (README "Information-driven bars"):

- Bars are cut per symbol and trading session, the regular session the ``1d`` bar uses
  (``calendar.Sessions``); ticks outside every session make no information-driven bar.
  Each session starts a new bar; no bar spans two sessions.
- Ticks are taken in canonical order (symbol, ts, sequence, source, source_row), so the
  bars do not depend on arrival order. The rule set decides as for time bars: a tick that
  counts in volume (``volume_ok``) counts toward the threshold (one trade for ``t``, its
  size for ``v``, its price x size for ``d``) and in the bar's volume and trade_count; a
  tick that only sets prices moves the OHLC of the bar open at its position and counts
  toward nothing.
- A bar closes at the counted tick that brings its own total to the threshold or beyond;
  a trade is never split (the whole crossing trade belongs to the bar it closes), and the
  next bar starts from zero at the following tick. Every closed ``t<N>`` bar therefore
  holds exactly N trades, every closed ``v<V>`` bar at least V shares (less than V plus
  its last trade's size). Thresholds compare exact integer units (``schema``), so the
  cut does not depend on float rounding.
- The session's last bar is emitted while open: it is the one bar of the session whose
  total is below the threshold (trade_count < N, volume < V, value < X); nothing else
  marks it. A later tick of the session extends it (and may close it).
- The bar's ``ts`` is its first tick's time (UTC ns); several bars of one symbol may
  share it (ticks with one timestamp), their order is the order of their ticks.
- As for time bars, a bar needs a price-setting tick: a bar whose ticks all count in
  volume but set no price (rule sets such as ``lean-equity``) is not emitted.

``info_segments`` is the one implementation: the batch engine calls it on a partition's
ticks and the streaming aggregator on a session's ticks from the first bar a new, late,
corrected or cancelled tick can change (``streaming.info_book``). It is vectorized: cumulative
integer sums and one ``searchsorted`` for every possible bar start; following the chain of
bar starts is one list lookup per bar (not per tick).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bar_segments import aggregate_arrays
from .bar_sums import BarOverflowError
from .calendar import Sessions
from .schema import NOTIONAL_SCALE, QTY_SCALE
from .timeframes import TICKS, VOLUME, Timeframe

_SAFE_TOTAL = float(2**62)  # running totals and threshold sums stay far inside int64


@dataclass
class InfoSegments:
    """Bars of one information-driven timeframe as per-bar arrays, and where every
    segment (bar or not: a segment without a price-setting tick is no bar) starts."""

    arrays: tuple  # (sym, ts, open, high, low, close, qty, notional, count) per bar
    starts: np.ndarray  # input row where each segment starts (ascending)
    segment: np.ndarray  # per bar, the index of its segment (into ``starts``)


def info_segments(tf: Timeframe, ts: np.ndarray, sym: np.ndarray | None, price: np.ndarray,
                  qty: np.ndarray, notional: np.ndarray, price_ok: np.ndarray,
                  volume_ok: np.ndarray, sessions: Sessions) -> InfoSegments:
    """Bars of ``tf`` of canonical ticks (``sym`` None: one symbol, code 0); ``qty`` and
    ``notional`` are the int64 units of ``schema``; ``sessions`` cover the ticks' dates.
    A segment starts at each session's first eligible tick and after each closing tick."""
    n = len(ts)
    session = sessions.locate(ts) if n else np.empty(0, dtype="int64")
    keep = (price_ok | volume_ok) & (session >= 0)
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        none = np.empty(0, dtype="int64")
        return InfoSegments(_empty(), none, none)
    group = session[rows] if sym is None else session[rows] + (
        sym[rows].astype("int64") * (len(sessions.opens) + 1))
    new_group = np.r_[True, group[1:] != group[:-1]]
    counted = np.flatnonzero(volume_ok[rows])  # positions (in rows) that count
    start = new_group.copy()
    if len(counted):
        closes = _closes(tf, counted, qty[rows], notional[rows], new_group)
        after = closes + 1
        start[after[after < len(rows)]] = True
    seg_id = np.cumsum(start) - 1
    seg_rows = rows[np.flatnonzero(start)]
    seg = aggregate_arrays(
        sym[rows] if sym is not None else None, seg_id, price[rows], qty[rows],
        notional[rows], price_ok[rows], volume_ok[rows], timeframe=tf.name)
    arrays = (seg.sym, ts[seg_rows[seg.bucket]], seg.open, seg.high, seg.low, seg.close,
              seg.qty, seg.notional, seg.count)
    return InfoSegments(arrays, seg_rows, seg.bucket)


def _closes(tf: Timeframe, counted: np.ndarray, qty: np.ndarray, notional: np.ndarray,
            new_group: np.ndarray) -> np.ndarray:
    """Positions (in the kept rows) of the ticks that close a bar, ascending."""
    m = len(counted)
    # the counted index where each counted tick's group ends (exclusive)
    group_of = np.cumsum(new_group)[counted]
    group_end = np.searchsorted(group_of, group_of, side="right")
    if tf.kind == TICKS:
        weight = None
        reach = np.arange(m, dtype="int64") + (tf.threshold - 1)
    else:
        units = qty if tf.kind == VOLUME else notional
        weight = units[counted]
        total = np.cumsum(weight)
        if float(weight.sum(dtype="float64")) + float(_units(tf)) >= _SAFE_TOTAL:
            raise BarOverflowError(
                f"{tf.name} bars: the cumulative {tf.kind} of the ticks does not fit the "
                "exact integer range: check the tick sizes and prices")
        # a bar starting at counted tick a closes at the first counted tick b >= a whose
        # running total from a reaches the threshold
        limit = total - weight + _units(tf)
        reach = np.searchsorted(total, limit, side="left")
    close = np.minimum(reach, group_end - 1)
    full = reach < group_end
    nxt = np.where(full, close + 1, group_end).tolist()
    # the chain of bar starts: one list lookup per bar
    a, out = 0, []
    close_l, full_l = close.tolist(), full.tolist()
    while a < m:
        if full_l[a]:
            out.append(close_l[a])
        a = nxt[a]
    return counted[np.asarray(out, dtype="int64")]


def _units(tf: Timeframe) -> int:
    """The threshold in the exact integer units of ``schema`` (qty 1e-8, notional 1e-6)."""
    return tf.threshold * (QTY_SCALE if tf.kind == VOLUME else NOTIONAL_SCALE)


def _empty() -> tuple:
    i, f = np.empty(0, dtype="int64"), np.empty(0, dtype="float64")
    return (i, i, f, f, f, f, i, i, i)
