"""BarEngine: vectorized batch aggregation of canonical ticks into time bars.

Semantics (DESIGN section 4): bars labelled by their open time, interval
[start, start + timeframe); intraday timeframes align to UTC epoch multiples; ``1d``
is one regular trading session of the exchange calendar, labelled by the session
date's midnight in exchange time. A bar exists only where an eligible trade fell.

Information-driven timeframes (``t<N>``, ``v<V>``, ``d<X>``) are built from the ticks by
``info_bars.info_segments`` (per session, in canonical tick order). The smallest
requested time frame is built from ticks; larger ones are rolled up from
the largest finer one for which that is exact (the finer divides the coarser and session
bounds fall on its boundaries), which is always the case for the standard set on XNYS.
Volume and notional are integer sums (see ``schema``), so a roll-up equals a build from
ticks. Canonical ticks that are all eligible (the common case) take ``bar_blocks``' one
blocked segmented reduction; others the masked ``aggregate_arrays``. The bars of every
timeframe are kept as arrays and become one frame at the end (``bars_frame``).

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

from .bar_blocks import eligible_bars
from .bar_frames import bar_frame, bars_frame, segments_frame, sort_bars
from .bar_rollup import can_roll_up, rollup, rollup_arrays
from .bar_segments import Segments, aggregate_arrays, bucket_for
from .bar_sums import BarOverflowError, checked_sums, sums_exact
from .calendar import DEFAULT_CALENDAR, Sessions, sessions_between
from .info_bars import info_segments
from .normalizer import canonical_sort
from .rules import DEFAULT_RULES, EligibilityRules
from .schema import (
    empty_bars,
    notional_units,
    notional_units_float,
    qty_units,
    qty_units_float,
    ts_ns,
)
from .tick_order import (
    _arrow_strings,
    ensure_canonical,
    is_canonical,
    symbol_bounds,
    symbol_codes,
)
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
        first_ts, last_ts = _ts_range(ts, sym_codes, len(symbols))
        src = _TickArrays(ts, sym_codes, len(symbols), ticks["price"].to_numpy("float64"),
                          ticks["size"].to_numpy("float64"))
        if first_ts >= 0 and self.rules.all_eligible(src.size):
            exact_rollup = self.rollup
        else:
            src.price_ok, src.volume_ok = self.rules.evaluate(ticks["conditions"], src.size)
            # a tick that counts in volume but may not set prices makes no bar of its own,
            # so a finer bar can miss volume that a coarser bar built from ticks holds
            exact_rollup = self.rollup and not bool(np.any(src.volume_ok & ~src.price_ok))
        sessions = sessions_between(first_ts, last_ts, self.calendar)
        built: list[tuple[Timeframe, tuple]] = []
        for tf in tfs:
            if tf.is_info:
                built.append((tf, src.info_bars(tf, sessions)))
                continue
            finer = _rollup_source(built, tf, sessions) if exact_rollup else None
            if finer is not None:
                arrays = rollup_arrays(*finer, tf, sessions)
                arrays = _EMPTY_BARS if arrays is None else arrays
            else:
                arrays = src.bars(tf, sessions)
            built.append((tf, arrays))
        return bars_frame([(tf.name, arrays) for tf, arrays in built], symbols)


_EMPTY_BARS = tuple(np.empty(0, dtype=d) for d in ("int64",) * 2 + ("float64",) * 4
                    + ("int64",) * 3)


def _ts_range(ts: np.ndarray, sym: np.ndarray | None, nsym: int) -> tuple[int, int]:
    """(earliest, latest) timestamp of canonical ticks (sorted by ts within a symbol)."""
    if sym is None:
        return int(ts[0]), int(ts[-1])
    bounds = symbol_bounds(sym, nsym)
    return int(ts[bounds[:-1]].min()), int(ts[bounds[1:] - 1].max())


def _rollup_source(built: list[tuple[Timeframe, tuple]], tf: Timeframe, sessions):
    """Bar arrays of the coarsest built timeframe that ``tf`` is an exact roll-up of."""
    for finer, arrays in reversed(built):
        if can_roll_up(finer, tf, sessions):
            return arrays
    return None


@dataclass
class _TickArrays:
    """Canonical ticks as arrays; ``price_ok``/``volume_ok`` None: every tick is eligible."""

    ts: np.ndarray
    sym: np.ndarray | None
    nsym: int
    price: np.ndarray
    size: np.ndarray
    price_ok: np.ndarray | None = None
    volume_ok: np.ndarray | None = None
    _float_units: tuple | None = None
    _int_units: tuple | None = None

    def bars(self, tf: Timeframe, sessions: Sessions) -> tuple:
        """(sym, open, o, h, l, c, qty, notional, count) of ``tf`` built from the ticks."""
        if self.price_ok is None and not tf.is_session:
            arrays = eligible_bars(self.ts, self.sym, self.nsym, self.price, self.size, tf.ns)
            if arrays is not None:
                return arrays
            return _arrays(self._segments(tf, sessions, self._ints()))  # exact or refused
        if not bool(self.price.min() > 0):  # the float sums' exactness needs prices > 0
            return _arrays(self._segments(tf, sessions, self._ints()))
        if self._float_units is None:
            self._float_units = qty_units_float(self.size), notional_units_float(
                self.price, self.size)
        seg = self._segments(tf, sessions, self._float_units)
        if not sums_exact(seg):  # exact int64 sums (BarOverflowError when one does not fit)
            return _arrays(self._segments(tf, sessions, self._ints()))
        seg.qty, seg.notional = seg.qty.astype("int64"), seg.notional.astype("int64")
        return _arrays(seg)

    def info_bars(self, tf: Timeframe, sessions: Sessions) -> tuple:
        """Bar arrays of an information-driven timeframe (``info_bars``)."""
        price_ok, volume_ok = self.price_ok, self.volume_ok
        if price_ok is None:
            price_ok = volume_ok = np.ones(len(self.ts), dtype=bool)
        return info_segments(tf, self.ts, self.sym, self.price, *self._ints(), price_ok,
                             volume_ok, sessions).arrays

    def _ints(self) -> tuple:
        if self._int_units is None:
            self._int_units = qty_units(self.size), notional_units(self.price, self.size)
        return self._int_units

    def _segments(self, tf: Timeframe, sessions: Sessions, units: tuple) -> Segments:
        """Masked aggregation (integer units raise BarOverflowError on a total that does
        not fit int64)."""
        if tf.is_session:
            bucket, scale = bucket_for(self.ts, tf, sessions), 1
        else:
            bucket, scale = self.ts // tf.ns, tf.ns
        price_ok, volume_ok = self.price_ok, self.volume_ok
        if price_ok is None:
            price_ok = volume_ok = np.ones(len(self.ts), dtype=bool)
        return aggregate_arrays(
            self.sym, bucket, self.price, *units, price_ok, volume_ok, bucket_scale=scale,
            timeframe=tf.name if units[0].dtype.kind != "f" else "",
        )


def _arrays(seg: Segments) -> tuple:
    return (seg.sym, seg.bucket, seg.open, seg.high, seg.low, seg.close, seg.qty,
            seg.notional, seg.count)
