"""Bars of every timeframe from the minute book's partial bars, refusing a total that does
not fit int64 (DESIGN section 4: never a wrapped value, at every timeframe).

The book keeps volume and notional as exact Python integers, so a minute's total past
int64 is known exactly: ``exact_int64`` finds it when the columns are made, and
``bars_from_minutes`` refuses every bar of a requested timeframe that holds such a minute
(``BarOverflowError``, as the engine's build from ticks does). Coarser totals are checked
by the engine's roll-up kernel (``rollup_arrays``, ``checked_sums``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ..calendar import Sessions
from ..engine import BarOverflowError, bucket_for, can_roll_up, rollup_arrays
from ..timeframes import TIMEFRAMES, Timeframe
from .book import StreamingError

OVERFLOW_HINT = ("the exact integer range (volume up to 92,233,720,368 shares, price x size "
                 "up to 9,223,372,036,854 per bar): check the tick sizes and prices")

_MINUTE_TF = TIMEFRAMES["1m"]
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NO_ROWS = np.empty(0, dtype="int64")


class Minutes(NamedTuple):
    """Partial minute bars as columns in (symbol, minute) order; ``priced`` marks those
    with a price-setting tick, ``oversized`` the rows whose volume / notional total does
    not fit int64 (their value in ``q`` / ``nv`` is 0)."""

    sym: np.ndarray
    minute: np.ndarray
    o: np.ndarray
    h: np.ndarray
    lo: np.ndarray
    c: np.ndarray
    q: np.ndarray
    nv: np.ndarray
    k: np.ndarray
    priced: np.ndarray
    oversized: tuple[tuple[str, np.ndarray], ...]


def exact_int64(values) -> tuple[np.ndarray, np.ndarray]:
    """(int64 array, rows that do not fit) of a sequence of Python ints; the rows that do
    not fit hold 0. The common case is one conversion; only a refusal scans in Python."""
    try:
        return np.array(values, dtype="int64"), _NO_ROWS
    except OverflowError:
        big = [not _INT64_MIN <= v <= _INT64_MAX for v in values]
        fit = [0 if b else v for v, b in zip(values, big, strict=True)]
        return np.array(fit, dtype="int64"), np.flatnonzero(big)


def overflow_error(what: str, timeframe: str, bucket_ns: int) -> BarOverflowError:
    """The engine's refusal of a bar whose ``what`` total does not fit int64."""
    at = pd.Timestamp(bucket_ns, tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    return BarOverflowError(
        f"the {timeframe} bar opening {at}: its {what} total does not fit {OVERFLOW_HINT}")


def _refuse_oversized(m: Minutes, tf: Timeframe, sessions: Sessions) -> None:
    """A minute whose total does not fit makes every bar holding it not fit either
    (totals are sums of non-negative units): refuse the first such bar of ``tf``."""
    for what, rows in m.oversized:
        if len(rows) == 0:
            continue
        opens = bucket_for(m.minute[rows], tf, sessions)
        opens = opens[opens >= 0]  # minutes outside every session make no 1d bar
        if len(opens):
            raise overflow_error(what, tf.name, int(opens[0]))


def bars_from_minutes(m: Minutes, tf: Timeframe, sessions: Sessions):
    """Bars of ``tf`` from minute partials: the bars BarEngine builds from the ticks
    themselves (a bar needs a price-setting tick; the volume of volume-only ticks counts
    in every bar whose interval holds them), as per-bar arrays for ``bar_frame``, or None
    when no bar falls in a ``tf`` interval. BarEngine's own roll-ups equal this: it rolls
    up only when no tick is volume-only."""
    if tf != _MINUTE_TF and not can_roll_up(_MINUTE_TF, tf, sessions):
        raise StreamingError(
            f"calendar sessions are not aligned to minutes: streaming {tf.name} is not supported"
        )
    _refuse_oversized(m, tf, sessions)
    if tf == _MINUTE_TF:
        if m.priced.all():
            return m.sym, m.minute, m.o, m.h, m.lo, m.c, m.q, m.nv, m.k
        i = np.flatnonzero(m.priced)
        return m.sym[i], m.minute[i], m.o[i], m.h[i], m.lo[i], m.c[i], m.q[i], m.nv[i], m.k[i]
    return rollup_arrays(m.sym, m.minute, m.o, m.h, m.lo, m.c, m.q, m.nv, m.k, tf, sessions,
                         m.priced)
