"""The micro-batch fast path: one symbol's ticks in canonical order, every one setting
price and volume (the usual live batch), folded into the minute book with a handful of
numpy calls.

Each minute of such a batch is a run of consecutive rows, so its partial bar is: open and
close the run's first and last prices (their ordering keys those rows' keys), high/low a
``reduceat`` of the prices, count the run length, and volume and notional the sums of the
per-tick integer units (``schema.qty_units_float``/``notional_units_float``: the same
float operations as every other path). Those sums are done in float64, exact while the
totals stay below 2**53 (non-negative integer-valued floats); a batch whose totals do not
(or with ticks before the epoch, which the general kernel treats as outside any bar)
is left to the general path (``bar_segments.aggregate_arrays`` with its int64 overflow
refusal), so the result is the general path's, bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..schema import notional_units_float, qty_units_float
from ..timeframes import NS_PER_MINUTE
from .book import merge_bars

_EXACT = float(2**53)  # float sums of non-negative integers below this are exact


def merge_eligible_run(states: list, ts: np.ndarray, price: np.ndarray, size: np.ndarray,
                       seq, source, row: np.ndarray) -> bool:
    """Merge a one-symbol (code 0), canonical, fully eligible batch into the book; False
    (nothing changed) when the fast path does not apply and the caller must take the
    general one."""
    minute = ts // NS_PER_MINUTE
    n = len(ts)
    if int(minute[0]) < 0:
        return False
    qty = qty_units_float(size)
    notional = notional_units_float(price, size)
    if int(minute[0]) == int(minute[-1]):  # the whole batch in one minute: no reduceat
        qsum, nsum = float(qty.sum()), float(notional.sum())
        if not (qsum < _EXACT and nsum < _EXACT):
            return False
        g = 1
        pick = np.array([0, n - 1])
        minutes = [int(minute[0]) * NS_PER_MINUTE]
        highs, lows = [float(price.max())], [float(price.min())]
        qsums, nsums, counts = [int(qsum)], [int(nsum)], [n]
    else:
        starts = np.flatnonzero(minute[1:] != minute[:-1])
        starts += 1
        starts = np.concatenate(([0], starts))
        q_tot = np.add.reduceat(qty, starts)
        n_tot = np.add.reduceat(notional, starts)
        if not (float(q_tot.max()) < _EXACT and float(n_tot.max()) < _EXACT):
            return False
        g = len(starts)
        ends = np.append(starts[1:], n)
        pick = np.concatenate((starts, ends - 1))  # the open rows, then the close rows
        minutes = (minute[starts] * NS_PER_MINUTE).tolist()
        highs = np.maximum.reduceat(price, starts).tolist()
        lows = np.minimum.reduceat(price, starts).tolist()
        qsums = q_tot.astype("int64").tolist()
        nsums = n_tot.astype("int64").tolist()
        counts = (ends - starts).tolist()
    # the ordering keys (ts, sequence, source, source_row) of the open and close rows
    keys = list(zip(
        ts[pick].tolist(),
        [-1] * (2 * g) if seq is None else seq[pick].tolist(),
        [source] * (2 * g) if isinstance(source, str) else source[pick].tolist(),
        row[pick].tolist(),
        strict=True,
    ))
    prices = price[pick].tolist()
    first = pick[:g].tolist()
    merge_bars(states, zip(
        [0] * g, minutes, prices[:g], highs, lows, prices[g:], qsums, nsums, counts, first,
        keys[:g], keys[g:], strict=True,
    ))
    return True
