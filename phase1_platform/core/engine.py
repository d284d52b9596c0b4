"""BarEngine: vectorized batch aggregation of canonical ticks into time bars.

Semantics (DESIGN section 4): bars labelled by their open time, interval
[start, start + timeframe); intraday timeframes align to UTC epoch multiples; ``1d``
is one regular trading session of the exchange calendar, labelled by the session
date's midnight in exchange time. A bar exists only where an eligible trade fell.

The smallest requested timeframe is built from ticks; larger ones are rolled up from
it when that is exact (the smaller divides the larger and session bounds fall on its
boundaries), which is always the case for the standard set on XNYS. Volume and
notional are integer sums (see ``schema``), so a roll-up equals a build from ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .calendar import DEFAULT_CALENDAR, Sessions, sessions_between
from .errors import InputError
from .normalizer import canonical_sort
from .rules import DEFAULT_RULES, EligibilityRules
from .schema import (
    BAR_COLUMNS,
    empty_bars,
    notional_units,
    notional_units_float,
    qty_units,
    qty_units_float,
    ts_ns,
)
from .timeframes import (
    DEFAULT_TIMEFRAMES,
    TIMEFRAMES,
    Timeframe,
    parse_timeframes,
    timeframe_rank,
)


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


def bar_frame(
    names: np.ndarray, timeframe: str, sym, bucket, o, h, lo, c, q, nv, k
) -> pd.DataFrame:
    """Internal bar frame from per-bar arrays; ``sym`` holds codes into ``names``."""
    if len(bucket) == 0:
        return empty_bars()
    return pd.DataFrame(
        {
            "symbol": names[sym],
            "timeframe": timeframe,
            "ts": bucket,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "qty": q,
            "notional": nv,
            "trade_count": k,
        }
    ).astype(BAR_COLUMNS)


def segments_frame(seg: Segments, symbols: np.ndarray, timeframe: str) -> pd.DataFrame:
    return bar_frame(
        symbols, timeframe, seg.sym, seg.bucket, seg.open, seg.high, seg.low, seg.close,
        seg.qty, seg.notional, seg.count,
    )


def sort_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """Canonical bar order: symbol, timeframe by duration, timestamp."""
    if len(bars) == 0:
        return bars.reset_index(drop=True)
    rank = bars["timeframe"].map({n: timeframe_rank(n) for n in TIMEFRAMES}).to_numpy()
    sym = pd.factorize(bars["symbol"], sort=True)[0]
    order = np.lexsort((bars["ts"].to_numpy("int64"), rank, sym))
    return bars.iloc[order].reset_index(drop=True)


@dataclass
class BarEngine:
    rules: EligibilityRules = DEFAULT_RULES
    calendar: str = DEFAULT_CALENDAR
    rollup: bool = True
    _sessions: Sessions | None = field(default=None, init=False, repr=False)

    def build(self, ticks: pd.DataFrame, timeframes=DEFAULT_TIMEFRAMES) -> pd.DataFrame:
        """Bars of every timeframe, in canonical order (internal bar frame)."""
        tfs = parse_timeframes(timeframes)
        if len(ticks) == 0:
            return empty_bars()
        ts = ts_ns(ticks["ts"])
        sym_codes, symbols = symbol_codes(ticks["symbol"])
        if not is_canonical(ticks, ts, sym_codes):
            ticks = canonical_sort(ticks)
            ts = ts_ns(ticks["ts"])
            sym_codes, symbols = symbol_codes(ticks["symbol"])
        sessions = sessions_between(int(ts.min()), int(ts.max()), self.calendar)
        price = ticks["price"].to_numpy("float64")
        size = ticks["size"].to_numpy("float64")
        price_ok, volume_ok = self.rules.evaluate(ticks["conditions"], size)
        # per-tick integer units as integer-valued floats: their sums are exact (and
        # then cast to int64) while below 2**53, checked per bar; else the int64 path
        # (prices > 0, as normalized ticks have, keep every partial sum below the total)
        int_units = None
        if bool(price.min() > 0):
            qty, notional = qty_units_float(size), notional_units_float(price, size)
        else:
            qty, notional = int_units = qty_units(size), notional_units(price, size)

        # a tick that counts in volume but may not set prices makes no bar of its own, so a
        # finer bar can miss volume that a coarser bar built from ticks holds: no roll-up then
        exact_rollup = self.rollup and not bool(np.any(volume_ok & ~price_ok))
        out: dict[Timeframe, pd.DataFrame] = {}
        base: Timeframe | None = None
        for tf in tfs:
            if exact_rollup and base is not None and can_roll_up(base, tf, sessions):
                out[tf] = rollup(out[base], tf, self.calendar, sessions)
                continue
            if tf.is_session:
                bucket, scale = bucket_for(ts, tf, sessions), 1
            else:
                bucket, scale = ts // tf.ns, tf.ns
            seg = aggregate_arrays(
                sym_codes, bucket, price, qty, notional, price_ok, volume_ok, bucket_scale=scale
            )
            if _sums_exact(seg):
                seg.qty, seg.notional = seg.qty.astype("int64"), seg.notional.astype("int64")
            else:  # exact int64 sums (BarOverflowError when a total does not fit)
                if int_units is None:
                    int_units = qty_units(size), notional_units(price, size)
                seg = aggregate_arrays(
                    sym_codes, bucket, price, *int_units, price_ok, volume_ok, bucket_scale=scale,
                    timeframe=tf.name,
                )
            out[tf] = segments_frame(seg, symbols, tf.name)
            if base is None:
                base = tf
        return sort_bars(pd.concat([out[tf] for tf in tfs], ignore_index=True).astype(BAR_COLUMNS))


_EXACT_FLOAT_INT = float(2**53)


class BarOverflowError(InputError):
    """A bar's exact integer total (volume, price x size) does not fit int64."""


_WRAP = 2.0**62  # a wrapped int64 sum is off by a multiple of 2**64; float error is far less


def checked_sums(values: np.ndarray, starts: np.ndarray, what: str, timeframe: str,
                 bucket: np.ndarray) -> np.ndarray:
    """``np.add.reduceat(values, starts)``; for integer ``values`` a total outside int64
    (which numpy would wrap silently) raises ``BarOverflowError`` naming the bar.

    Vectorized: a bound (largest |value| x longest segment) clears the common case in one
    pass; otherwise the int64 totals are compared with float64 totals, which a wrap moves
    by 2**64 and rounding by far less than 2**62."""
    total = np.add.reduceat(values, starts)
    if values.dtype.kind not in "iu" or len(values) == 0:
        return total
    longest = int(np.diff(np.append(starts, len(values))).max())
    largest = max(abs(float(values.max())), abs(float(values.min())))
    if largest * longest < _WRAP:
        return total
    approx = np.add.reduceat(values.astype("float64"), starts)
    wrapped = np.flatnonzero(np.abs(total.astype("float64") - approx) >= _WRAP)
    if len(wrapped):
        at = pd.Timestamp(int(bucket[wrapped[0]]), tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        name = f"{timeframe} bar" if timeframe else "bar"
        raise BarOverflowError(
            f"the {name} opening {at}: its {what} total does not fit the exact integer "
            "range (volume up to 92,233,720,368 shares, price x size up to "
            "9,223,372,036,854 per bar): check the tick sizes and prices")
    return total


def _sums_exact(seg: Segments) -> bool:
    """Float sums of non-negative integer-valued floats are exact when the total is below
    2**53 (every partial sum is then below it too)."""
    if seg.qty.dtype.kind != "f":
        return False
    if len(seg.qty) == 0:
        return True
    return bool(seg.qty.max() < _EXACT_FLOAT_INT) and bool(
        seg.notional.max() < _EXACT_FLOAT_INT
    )


def symbol_codes(col: pd.Series) -> tuple[np.ndarray | None, np.ndarray]:
    """(codes, symbols): codes index the sorted unique symbols; codes None when the
    column holds a single symbol (the common case, checked without a factorize)."""
    values = _arrow_strings(col)
    if values is not None and len(values):
        first = values[0]
        if first.is_valid and pc.all(pc.equal(values, first), skip_nulls=False).as_py():
            return None, np.array([first.as_py()], dtype=object)
    codes, uniques = pd.factorize(col, sort=True)
    return codes, np.asarray(uniques, dtype=object)


def _arrow_strings(col: pd.Series):
    dtype = col.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        return pa.chunked_array(col.array.__arrow_array__())
    return None


def is_canonical(ticks: pd.DataFrame, ts: np.ndarray, sym_codes: np.ndarray | None) -> bool:
    """Whether ticks are in canonical order (symbol, ts, sequence, source, source_row)."""
    if len(ts) < 2:
        return True
    if sym_codes is None:
        step = ts[1:] > ts[:-1]
        if bool(step.all()):
            return True  # strictly increasing: no ties to look at
        if not bool(np.all(ts[1:] >= ts[:-1])):
            return False
        tie = ~step
    else:
        if not bool(np.all(sym_codes[1:] >= sym_codes[:-1])):
            return False
        same_sym = sym_codes[1:] == sym_codes[:-1]
        if not bool(np.all((ts[1:] >= ts[:-1]) | ~same_sym)):
            return False
        tie = same_sym & (ts[1:] == ts[:-1])
    idx = np.flatnonzero(tie)
    if len(idx) == 0:
        return True
    # ties on ts: (sequence, source, source_row) must not decrease; checked on ties only
    seq = ticks["sequence"].to_numpy("int64")
    a, b = seq[idx], seq[idx + 1]
    if bool(np.any(a > b)):
        return False
    eq = idx[a == b]
    if len(eq) == 0:
        return True
    src = ticks["source"].to_numpy(dtype=object)
    sa, sb = src[eq], src[eq + 1]
    if bool(np.any(sa > sb)):
        return False
    eq = eq[sa == sb]
    rows = ticks["source_row"].to_numpy("int64")
    return bool(np.all(rows[eq] <= rows[eq + 1]))


def ensure_canonical(ticks: pd.DataFrame) -> pd.DataFrame:
    """Return ticks in canonical order, sorting only when they are not already."""
    if len(ticks) < 2:
        return ticks
    sym_codes, _ = symbol_codes(ticks["symbol"])
    if is_canonical(ticks, ts_ns(ticks["ts"]), sym_codes):
        return ticks
    return canonical_sort(ticks)


def can_roll_up(base: Timeframe, target: Timeframe, sessions: Sessions) -> bool:
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
    keep = np.flatnonzero(bucket >= 0)
    if len(keep) == 0:
        return None
    s, b = sym[keep], bucket[keep]
    change = np.empty(len(keep), dtype=bool)
    change[0] = True
    change[1:] = (s[1:] != s[:-1]) | (b[1:] != b[:-1])
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], len(keep))
    if priced is None:
        first, last, has = keep[starts], keep[ends - 1], slice(None)
    else:
        pr = np.flatnonzero(priced[keep])  # positions (within keep) of priced bars
        fpos = np.searchsorted(pr, starts, side="left")
        lpos = np.searchsorted(pr, ends, side="left") - 1
        has = (fpos < len(pr)) & (fpos <= lpos)
        first, last = keep[pr[fpos[has]]], keep[pr[lpos[has]]]
    opens = b[starts]
    return (
        s[starts][has],
        opens[has],
        o[first],
        np.maximum.reduceat(h[keep], starts)[has],
        np.minimum.reduceat(lo[keep], starts)[has],
        c[last],
        checked_sums(q[keep], starts, "volume", tf.name, opens)[has],
        checked_sums(nv[keep], starts, "price x size", tf.name, opens)[has],
        np.add.reduceat(k[keep], starts)[has],
    )
