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

from .calendar import DEFAULT_CALENDAR, Sessions, sessions_between
from .normalizer import canonical_sort
from .rules import DEFAULT_RULES, EligibilityRules
from .schema import BAR_COLUMNS, empty_bars, notional_units, qty_units, ts_ns
from .timeframes import TIMEFRAMES, Timeframe, parse_timeframes, timeframe_rank


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
    sym: np.ndarray,
    bucket: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    notional: np.ndarray,
    price_ok: np.ndarray,
    volume_ok: np.ndarray,
) -> Segments:
    """Aggregate sorted rows into bars; ``bucket`` < 0 marks rows outside any bar."""
    keep = (price_ok | volume_ok) & (bucket >= 0)
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        e_i, e_f = np.empty(0, dtype="int64"), np.empty(0, dtype="float64")
        return Segments(e_i, e_i, e_f, e_f, e_f, e_f, e_i, e_i, e_i, e_i, e_i)
    s, b = sym[rows], bucket[rows]
    change = np.empty(len(rows), dtype=bool)
    change[0] = True
    np.not_equal(s[1:], s[:-1], out=change[1:])
    change[1:] |= b[1:] != b[:-1]
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], len(rows))

    pok = price_ok[rows]
    vok = volume_ok[rows]
    p = price[rows]
    qty_sum = np.add.reduceat(np.where(vok, qty[rows], 0), starts)
    notional_sum = np.add.reduceat(np.where(vok, notional[rows], 0), starts)
    count = np.add.reduceat(vok.astype("int64"), starts)
    high = np.maximum.reduceat(np.where(pok, p, -np.inf), starts)
    low = np.minimum.reduceat(np.where(pok, p, np.inf), starts)

    priced = np.flatnonzero(pok)  # positions (within rows) of price-setting ticks
    first_pos = np.searchsorted(priced, starts, side="left")
    last_pos = np.searchsorted(priced, ends, side="left") - 1
    has_price = (first_pos < len(priced)) & (first_pos <= last_pos)
    first_pos, last_pos = first_pos[has_price], last_pos[has_price]
    first = rows[priced[first_pos]]
    last = rows[priced[last_pos]]
    return Segments(
        sym=s[starts][has_price],
        bucket=b[starts][has_price],
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
    return ts - np.mod(ts, timeframe.ns)


def segments_frame(seg: Segments, symbols: np.ndarray, timeframe: str) -> pd.DataFrame:
    if len(seg.bucket) == 0:
        bars = empty_bars()
        return bars
    return pd.DataFrame(
        {
            "symbol": symbols[seg.sym],
            "timeframe": timeframe,
            "ts": seg.bucket,
            "open": seg.open,
            "high": seg.high,
            "low": seg.low,
            "close": seg.close,
            "qty": seg.qty,
            "notional": seg.notional,
            "trade_count": seg.count,
        }
    ).astype(BAR_COLUMNS)


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

    def build(self, ticks: pd.DataFrame, timeframes="1m,5m,15m,1h,1d") -> pd.DataFrame:
        """Bars of every timeframe, in canonical order (internal bar frame)."""
        tfs = parse_timeframes(timeframes)
        if len(ticks) == 0:
            return empty_bars()
        ticks = ensure_canonical(ticks)
        ts = ts_ns(ticks["ts"])
        sessions = sessions_between(int(ts.min()), int(ts.max()), self.calendar)
        sym_codes, symbols = pd.factorize(ticks["symbol"], sort=True)
        symbols = np.asarray(symbols, dtype=object)
        price = ticks["price"].to_numpy("float64")
        size = ticks["size"].to_numpy("float64")
        price_ok, volume_ok = self.rules.evaluate(ticks["conditions"], size)
        qty, notional = qty_units(size), notional_units(price, size)

        out: dict[Timeframe, pd.DataFrame] = {}
        base: Timeframe | None = None
        for tf in tfs:
            if self.rollup and base is not None and can_roll_up(base, tf, sessions):
                out[tf] = rollup(out[base], tf, self.calendar, sessions)
                continue
            seg = aggregate_arrays(
                sym_codes, bucket_for(ts, tf, sessions), price, qty, notional, price_ok, volume_ok
            )
            out[tf] = segments_frame(seg, symbols, tf.name)
            if base is None:
                base = tf
        return sort_bars(pd.concat([out[tf] for tf in tfs], ignore_index=True).astype(BAR_COLUMNS))


def ensure_canonical(ticks: pd.DataFrame) -> pd.DataFrame:
    """Return ticks in canonical order, sorting only when they are not already."""
    ts = ts_ns(ticks["ts"])
    sym = ticks["symbol"].to_numpy()
    if len(ts) < 2:
        return ticks
    same_sym = sym[1:] == sym[:-1]
    sorted_ok = bool(np.all(sym[1:] >= sym[:-1])) and bool(
        np.all((ts[1:] >= ts[:-1]) | ~same_sym)
    )
    if sorted_ok:
        # ties on ts must also be in (sequence, source, source_row) order
        tie = same_sym & (ts[1:] == ts[:-1])
        if not tie.any():
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
    qty = bars["qty"].to_numpy("int64")
    notional = bars["notional"].to_numpy("int64")
    count = bars["trade_count"].to_numpy("int64")
    bucket = bucket_for(ts, tf, sessions)
    keep = bucket >= 0
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        return empty_bars()
    s, b = sym_codes[rows], bucket[rows]
    change = np.empty(len(rows), dtype=bool)
    change[0] = True
    change[1:] = (s[1:] != s[:-1]) | (b[1:] != b[:-1])
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], len(rows)) - 1
    o = bars["open"].to_numpy("float64")[rows]
    h = bars["high"].to_numpy("float64")[rows]
    lo = bars["low"].to_numpy("float64")[rows]
    c = bars["close"].to_numpy("float64")[rows]
    return pd.DataFrame(
        {
            "symbol": np.asarray(symbols, dtype=object)[s[starts]],
            "timeframe": tf.name,
            "ts": b[starts],
            "open": o[starts],
            "high": np.maximum.reduceat(h, starts),
            "low": np.minimum.reduceat(lo, starts),
            "close": c[ends],
            "qty": np.add.reduceat(qty[rows], starts),
            "notional": np.add.reduceat(notional[rows], starts),
            "trade_count": np.add.reduceat(count[rows], starts),
        }
    ).astype(BAR_COLUMNS)
