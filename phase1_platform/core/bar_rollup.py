"""Roll-up: bars of a coarser timeframe from finer bars, when that is exact.

A roll-up is exact when the finer timeframe divides the coarser one (intraday) or every
session opens and closes on a finer-bar boundary (``1d``); volume and notional are
integer sums, so a rolled-up bar equals one built from the ticks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .bar_frames import bar_frame
from .bar_segments import bucket_for
from .bar_sums import checked_sums
from .calendar import DEFAULT_CALENDAR, Sessions, sessions_between
from .schema import empty_bars
from .timeframes import TIMEFRAMES, Timeframe


def can_roll_up(base: Timeframe, target: Timeframe, sessions: Sessions) -> bool:
    """Whether ``target`` bars are exactly the roll-up of ``base`` bars over ``sessions``
    (never for information-driven bars: they are built from ticks)."""
    if base.is_info or target.is_info:
        return False
    if target.is_session:
        if base.is_session:
            return False
        return bool(
            np.all(np.mod(sessions.opens, base.ns) == 0)
            and np.all(np.mod(sessions.closes, base.ns) == 0)
        )
    return not base.is_session and target.ns % base.ns == 0


def rollup(
    bars: pd.DataFrame,
    timeframe: Timeframe | str,
    calendar: str = DEFAULT_CALENDAR,
    sessions: Sessions | None = None,
) -> pd.DataFrame:
    """Roll finer bars (one timeframe, canonical order) up into ``timeframe``."""
    tf = TIMEFRAMES[timeframe] if isinstance(timeframe, str) else timeframe
    if len(bars) == 0:
        return empty_bars()
    ts = bars["ts"].to_numpy("int64")
    if tf.is_session and sessions is None:
        sessions = sessions_between(int(ts.min()), int(ts.max()), calendar)
    sym_codes, symbols = pd.factorize(bars["symbol"], sort=True)
    parts = rollup_arrays(
        sym_codes,
        ts,
        bars["open"].to_numpy("float64"),
        bars["high"].to_numpy("float64"),
        bars["low"].to_numpy("float64"),
        bars["close"].to_numpy("float64"),
        bars["qty"].to_numpy("int64"),
        bars["notional"].to_numpy("int64"),
        bars["trade_count"].to_numpy("int64"),
        tf,
        sessions,
    )
    if parts is None:
        return empty_bars()
    return bar_frame(np.asarray(symbols, dtype=object), tf.name, *parts)


def rollup_arrays(sym, ts, o, h, lo, c, q, nv, k, tf: Timeframe, sessions, priced=None):
    """Bars of ``tf`` from finer bars given as arrays in (symbol, ts) order:
    (sym, bucket, open, high, low, close, qty, notional, count), or None when no bar
    falls in a ``tf`` interval. ``priced`` (a mask) marks the bars that have a price; a
    priceless one (volume-only ticks) sets no price, and only its volume counts, in a
    bar that has a priced one (``None``: every bar is priced)."""
    bucket = bucket_for(ts, tf, sessions)
    inside = bucket >= 0
    if bool(inside.all()):  # intraday bars always, daily ones when no bar is off-session
        keep, kept = np.arange(len(bucket)), _whole
    else:
        keep = np.flatnonzero(inside)

        def kept(values: np.ndarray) -> np.ndarray:
            return values[keep]
    if len(keep) == 0:
        return None
    s, b = kept(sym), kept(bucket)
    change = np.empty(len(keep), dtype=bool)
    change[0] = True
    change[1:] = (s[1:] != s[:-1]) | (b[1:] != b[:-1])
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], len(keep))
    if priced is None:
        first, last, has = keep[starts], keep[ends - 1], slice(None)
    else:
        pr = np.flatnonzero(kept(priced))  # positions (within keep) of priced bars
        fpos = np.searchsorted(pr, starts, side="left")
        lpos = np.searchsorted(pr, ends, side="left") - 1
        has = (fpos < len(pr)) & (fpos <= lpos)
        first, last = keep[pr[fpos[has]]], keep[pr[lpos[has]]]
    opens = b[starts]
    return (
        s[starts][has],
        opens[has],
        o[first],
        np.maximum.reduceat(kept(h), starts)[has],
        np.minimum.reduceat(kept(lo), starts)[has],
        c[last],
        checked_sums(kept(q), starts, "volume", tf.name, opens)[has],
        checked_sums(kept(nv), starts, "price x size", tf.name, opens)[has],
        np.add.reduceat(kept(k), starts)[has],
    )


def _whole(values: np.ndarray) -> np.ndarray:
    return values
