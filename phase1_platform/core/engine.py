"""BarEngine: vectorized batch aggregation of canonical ticks into time bars.

Semantics (DESIGN section 4): bars labelled by their open time, interval
[start, start + timeframe); intraday timeframes align to UTC epoch multiples; ``1d``
is one regular trading session of the exchange calendar, labelled by the session
date's midnight in exchange time. A bar exists only where an eligible trade fell.

The smallest requested timeframe is built from ticks; larger ones are rolled up from
it when that is exact (the smaller divides the larger and session bounds fall on its
boundaries), which is always the case for the standard set on XNYS. Volume and
notional are integer sums (see ``schema``), so a roll-up equals a build from ticks.

The building blocks live in their own modules and are re-exported here, so
``phase1_platform.core.engine`` keeps every name it had: ``bar_segments`` (bucketing and
per-bar aggregation), ``bar_sums`` (exact totals, overflow guard), ``bar_frames`` (bar
frames, canonical bar order), ``bar_rollup`` (roll-up) and ``tick_order`` (symbol codes,
canonical tick order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .bar_frames import bar_frame, segments_frame, sort_bars
from .bar_rollup import can_roll_up, rollup, rollup_arrays
from .bar_segments import Segments, aggregate_arrays, bucket_for
from .bar_sums import BarOverflowError, checked_sums, sums_exact
from .calendar import DEFAULT_CALENDAR, Sessions, sessions_between
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
from .tick_order import _arrow_strings, ensure_canonical, is_canonical, symbol_codes
from .timeframes import DEFAULT_TIMEFRAMES, Timeframe, parse_timeframes

__all__ = [
    "BarEngine",
    "BarOverflowError",
    "Segments",
    "_arrow_strings",
    "aggregate_arrays",
    "bar_frame",
    "bucket_for",
    "can_roll_up",
    "checked_sums",
    "ensure_canonical",
    "is_canonical",
    "rollup",
    "rollup_arrays",
    "segments_frame",
    "sort_bars",
    "symbol_codes",
]


@dataclass
class BarEngine:
    """Batch bar builder: canonical ticks in, bars of every requested timeframe out."""

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
            if sums_exact(seg):
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
