"""Restating minutes of the book: a trade cancelled or corrected after it was streamed.

The book keeps partial minute bars, not the ticks, so a trade cannot be taken out of one
(its high or low may be the one that goes). ``restate_minutes`` instead replaces the
partial bars of the minutes the amended trades fell in with those of the minutes' ticks
as amended (the caller reads them from its tick log), and marks them changed: the next
drain rebuilds every bar of every timeframe holding one of them, as for a late tick.
``restated_buckets`` names those bars, so a store of the bars can also drop the ones
left without any tick (a cancel of a bucket's only trades). Information-driven bars keep
the session's ticks (``info_book``): the minutes' ticks are dropped there and the amended
ones inserted, which restates every later bar of the session.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..calendar import sessions_between
from ..engine import bucket_for
from ..schema import ts_ns
from ..timeframes import NS_PER_MINUTE, Timeframe
from .batches import MicroBatches
from .book import BARS, DIRTY, LAST_BAR, LAST_MIN, NO_MINUTE, MinuteBook


def restate_minutes(book: MinuteBook, batches: MicroBatches, symbol: str,
                    minutes: np.ndarray, ticks: pd.DataFrame) -> np.ndarray:
    """Replace the partial bars of ``symbol``'s ``minutes`` (UTC ns, minute starts) with
    those of ``ticks`` (every tick of those minutes, normalized, as amended); minutes the
    book does not retain are left alone. Returns the minutes restated. The ticks were
    counted (duplicates, ignored) when they first came: the counters do not change."""
    st = book.state.get(symbol)
    minutes = np.unique(np.asarray(minutes, dtype="int64"))
    if st is None or len(minutes) == 0:
        return minutes[:0]
    minutes = minutes[[book.retains(symbol, int(m)) for m in minutes.tolist()]]
    bars = st[BARS]
    for m in minutes.tolist():
        bars.pop(m, None)
        st[DIRTY].add(m)
    st[LAST_MIN], st[LAST_BAR] = NO_MINUTE, None  # the per-tick cache may hold one of them
    if batches.info is not None:  # information-driven bars keep the ticks: drop them too
        batches.info.drop_minutes(symbol, minutes)
    if len(ticks):
        ts = ts_ns(ticks["ts"])
        mine = (ticks["symbol"].astype("str").to_numpy(object) == symbol) & np.isin(
            ts // NS_PER_MINUTE * NS_PER_MINUTE, minutes)
        counts = list(book.counts)
        # without trade ids: these trades are in the book's identities already
        batches.on_batch(ticks[mine].drop(columns=["trade_id"], errors="ignore"))
        book.counts[:] = counts
    return minutes


def restated_buckets(symbol: str, minutes: np.ndarray, timeframes: list[Timeframe],
                     calendar: str) -> pd.DataFrame:
    """(symbol, timeframe, ts) of every bar holding one of ``minutes``: the bars a drain
    after ``restate_minutes`` rebuilds (those left without ticks are gone)."""
    minutes = np.asarray(minutes, dtype="int64")
    rows: list[pd.DataFrame] = []
    if len(minutes):
        sessions = sessions_between(int(minutes.min()), int(minutes.max()), calendar)
        for tf in timeframes:
            b = bucket_for(minutes, tf, sessions)
            b = np.unique(b[b >= 0])
            rows.append(pd.DataFrame({"symbol": symbol, "timeframe": tf.name, "ts": b}))
    if not rows:
        return pd.DataFrame({"symbol": pd.Series(dtype="str"),
                             "timeframe": pd.Series(dtype="str"),
                             "ts": pd.Series(dtype="int64")})
    return pd.concat(rows, ignore_index=True).astype(
        {"symbol": "str", "timeframe": "str", "ts": "int64"})


__all__ = ["restate_minutes", "restated_buckets"]
