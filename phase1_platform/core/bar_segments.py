"""Per-timeframe bucketing and aggregation of sorted ticks into per-bar arrays.

``bucket_for`` gives each tick the open of its bar (intraday: a UTC epoch multiple;
``1d``: its session label). ``aggregate_arrays`` turns rows sorted by (symbol, bucket,
order) into ``Segments``, one entry per bar, with numpy reductions only (no per-row
Python): the batch engine, the incremental builder and the streaming aggregator share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bar_sums import checked_sums
from .calendar import Sessions
from .timeframes import Timeframe


@dataclass
class Segments:
    """Per-bar aggregates over ticks already sorted by (symbol, bucket, order)."""

    sym: np.ndarray  # symbol code per bar
    bucket: np.ndarray  # bar open, int64 ns
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    qty: np.ndarray
    notional: np.ndarray
    count: np.ndarray
    first: np.ndarray  # row index (into the input) of the tick that set open
    last: np.ndarray  # row index of the tick that set close


def aggregate_arrays(
    sym: np.ndarray | None,
    bucket: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    notional: np.ndarray,
    price_ok: np.ndarray,
    volume_ok: np.ndarray,
    bucket_scale: int = 1,
    keep_priceless: bool = False,
    timeframe: str = "",
) -> Segments:
    """Aggregate sorted rows into bars; ``bucket`` < 0 marks rows outside any bar.

    ``sym`` None means one symbol (code 0). A bar opens at ``bucket * bucket_scale``
    (callers may pass ``ts // ns`` with ``bucket_scale=ns`` to save a pass).
    Integer sums that do not fit int64 raise ``BarOverflowError`` (never a wrapped value;
    ``timeframe`` names the bars in its message).
    A segment with only volume-only rows (no price-setting row) makes no bar, unless
    ``keep_priceless``: then it is kept "priceless" (open/close NaN, high -inf, low inf,
    first/last -1), as the streaming aggregator's partial bars need.
    """
    n = len(bucket)
    all_p = bool(price_ok.all())
    all_v = bool(volume_ok.all())
    if all_p or all_v:
        keep_all = bool(bucket[0] >= 0) and bool((bucket >= 0).all()) if n else True
    else:
        keep_all = False
    if keep_all:  # fast path: no row is dropped, no gathers over the whole input
        rows = None
        s, b, pok, vok, p = sym, bucket, price_ok, volume_ok, price
        q, nv = qty, notional
        m = n
    else:
        keep = (price_ok | volume_ok) & (bucket >= 0)
        rows = np.flatnonzero(keep)
        m = len(rows)
        if m:
            s = sym[rows] if sym is not None else None
            b, pok, vok, p = bucket[rows], price_ok[rows], volume_ok[rows], price[rows]
            q, nv = qty[rows], notional[rows]
    if m == 0:
        e_i, e_f = np.empty(0, dtype="int64"), np.empty(0, dtype="float64")
        return Segments(e_i, e_i, e_f, e_f, e_f, e_f, e_i, e_i, e_i, e_i, e_i)
    change = np.empty(m, dtype=bool)
    change[0] = True
    np.not_equal(b[1:], b[:-1], out=change[1:])
    if s is not None:
        change[1:] |= s[1:] != s[:-1]
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], m)

    all_v = all_v if rows is None else bool(vok.all())
    all_p = all_p if rows is None else bool(pok.all())
    seg_sym = np.zeros(len(starts), dtype="int64") if s is None else s[starts]
    seg_bucket = b[starts] * bucket_scale if bucket_scale != 1 else b[starts]
    if not all_v:
        q, nv = np.where(vok, q, 0), np.where(vok, nv, 0)
    qty_sum = checked_sums(q, starts, "volume", timeframe, seg_bucket)
    notional_sum = checked_sums(nv, starts, "price x size", timeframe, seg_bucket)
    count = ends - starts if all_v else np.add.reduceat(vok.astype("int64"), starts)
    if all_p:
        high = np.maximum.reduceat(p, starts)
        low = np.minimum.reduceat(p, starts)
        first, last = starts, ends - 1
        if rows is not None:
            first, last = rows[first], rows[last]
        return Segments(
            seg_sym, seg_bucket, price[first], high, low, price[last],
            qty_sum, notional_sum, count, first, last,
        )
    high = np.maximum.reduceat(np.where(pok, p, -np.inf), starts)
    low = np.minimum.reduceat(np.where(pok, p, np.inf), starts)
    priced = np.flatnonzero(pok)  # positions (within rows) of price-setting ticks
    fpos = np.searchsorted(priced, starts, side="left")
    lpos = np.searchsorted(priced, ends, side="left") - 1
    has_price = (fpos < len(priced)) & (fpos <= lpos)
    if keep_priceless:
        first = np.full(len(starts), -1, dtype="int64")
        last = first.copy()
        first[has_price] = priced[fpos[has_price]]
        last[has_price] = priced[lpos[has_price]]
        if rows is not None:
            first[has_price], last[has_price] = rows[first[has_price]], rows[last[has_price]]
        return Segments(
            seg_sym, seg_bucket,
            np.where(has_price, price[np.clip(first, 0, None)], np.nan),
            high, low,
            np.where(has_price, price[np.clip(last, 0, None)], np.nan),
            qty_sum, notional_sum, count, first, last,
        )
    first, last = priced[fpos[has_price]], priced[lpos[has_price]]
    if rows is not None:
        first, last = rows[first], rows[last]
    return Segments(
        sym=seg_sym[has_price],
        bucket=seg_bucket[has_price],
        open=price[first],
        high=high[has_price],
        low=low[has_price],
        close=price[last],
        qty=qty_sum[has_price],
        notional=notional_sum[has_price],
        count=count[has_price],
        first=first,
        last=last,
    )


def bucket_for(ts: np.ndarray, timeframe: Timeframe, sessions: Sessions | None) -> np.ndarray:
    """Bar open per timestamp (int64 ns); -1 for ticks outside any session (1d)."""
    if timeframe.is_session:
        assert sessions is not None
        idx = sessions.locate(ts)
        return np.where(idx >= 0, sessions.labels[np.clip(idx, 0, None)], -1) if len(
            sessions.labels
        ) else np.full(len(ts), -1, dtype="int64")
    return (ts // timeframe.ns) * timeframe.ns  # == ts - ts mod ns (floor), one pass less
