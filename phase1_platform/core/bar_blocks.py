"""Intraday bars from canonical, fully eligible ticks in one blocked segmented reduction.

The common batch case: ticks already in canonical order, every tick sets prices and
counts in volume (the default rule set, sizes > 0), timestamps >= 0. Then each bar is a
run of consecutive rows, and:

- ``bar_starts`` finds the first row of every bar by binary search of the bar edges in
  the sorted timestamps (one search per edge, not a division and a comparison per tick);
  many symbols fall back to ``ts // ns`` and a change scan;
- ``reduce_bars`` computes open/high/low/close, the integer units (``schema``'s
  ``rint(size * 1e8)`` and ``rint(price * size * 1e6)``, the same float operations) and
  their per-bar sums with ``ufunc.reduceat``, block by block: a block is whole bars of
  about ``BLOCK_ROWS`` ticks, so the per-tick units live in a cache-sized scratch buffer
  instead of two full-length arrays.

Float sums of non-negative integer-valued floats are exact below 2**53 whatever the
summation order, so the blocked sums equal the unblocked ones; a total that may not be
exact (or a price <= 0) makes ``eligible_bars`` return None and the caller takes the
int64 path with its overflow refusal.
"""

from __future__ import annotations

import numpy as np

from .bar_sums import _EXACT_FLOAT_INT
from .schema import NOTIONAL_SCALE, QTY_SCALE
from .tick_order import symbol_bounds

BLOCK_ROWS = 1 << 16  # ticks per block: the scratch buffer (512 KiB) stays in cache
_SEARCH_MAX_SYMBOLS = 64  # beyond this, one vectorized division beats a loop per symbol


def bar_starts(
    ts: np.ndarray, sym: np.ndarray | None, nsym: int, ns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first row, open ns, symbol code) of every ``ns`` bar of ticks sorted by (symbol,
    ts) with ts >= 0; ``sym`` None means one symbol (code 0)."""
    n = len(ts)
    bounds = np.array([0, n]) if sym is None else symbol_bounds(sym, nsym)
    first = ts[bounds[:-1]] // ns
    last = ts[bounds[1:] - 1] // ns
    if nsym > _SEARCH_MAX_SYMBOLS or int((last - first).sum()) + nsym > n:
        return _starts_by_division(ts, sym, ns)
    starts, opens, codes = [], [], []
    for code, (lo, hi, r0, r1) in enumerate(
        zip(first.tolist(), last.tolist(), bounds[:-1].tolist(), bounds[1:].tolist(),
            strict=True)
    ):
        index = np.arange(lo, hi + 1, dtype=np.int64)
        pos = np.empty(len(index) + 1, dtype=np.int64)
        pos[0], pos[-1] = r0, r1
        # first row at or after each later bar's open (hi * ns <= a timestamp: no overflow)
        pos[1:-1] = np.searchsorted(ts[r0:r1], index[1:] * ns) + r0
        filled = pos[1:] > pos[:-1]
        starts.append(pos[:-1][filled])
        opens.append(index[filled] * ns)
        codes.append(np.full(int(filled.sum()), code, dtype=np.int64))
    return np.concatenate(starts), np.concatenate(opens), np.concatenate(codes)


def _starts_by_division(ts, sym, ns):
    bucket = ts // ns
    change = np.empty(len(ts), dtype=bool)
    change[0] = True
    np.not_equal(bucket[1:], bucket[:-1], out=change[1:])
    if sym is not None:
        change[1:] |= sym[1:] != sym[:-1]
    starts = np.flatnonzero(change)
    codes = np.zeros(len(starts), dtype=np.int64) if sym is None else sym[starts].astype(
        np.int64, copy=False)
    return starts, bucket[starts] * ns, codes


def reduce_bars(starts: np.ndarray, price: np.ndarray, size: np.ndarray):
    """(open, high, low, close, qty units, notional units, count) per bar; a bar is the
    rows from its start to the next one's. Units are integer-valued float64 sums."""
    n, nbars = len(price), len(starts)
    ends = np.empty(nbars, dtype=np.int64)
    ends[:-1], ends[-1] = starts[1:], n
    # blocks of whole bars, cut at the first bar opening at or after each BLOCK_ROWS row
    cuts = np.unique(np.searchsorted(starts, np.arange(BLOCK_ROWS, n, BLOCK_ROWS)))
    cuts = np.concatenate(([0], cuts[(cuts > 0) & (cuts < nbars)], [nbars]))
    rows = np.append(starts, n)[cuts]
    scratch = np.empty(int(np.diff(rows).max()), dtype=np.float64)
    high, low = np.empty(nbars), np.empty(nbars)
    qty, notional = np.empty(nbars), np.empty(nbars)
    for a, z, r0, r1 in zip(cuts[:-1].tolist(), cuts[1:].tolist(), rows[:-1].tolist(),
                            rows[1:].tolist(), strict=True):
        at = starts[a:z] - r0
        p, s, w = price[r0:r1], size[r0:r1], scratch[: r1 - r0]
        np.maximum.reduceat(p, at, out=high[a:z])
        np.minimum.reduceat(p, at, out=low[a:z])
        np.multiply(s, float(QTY_SCALE), out=w)
        np.rint(w, out=w)
        np.add.reduceat(w, at, out=qty[a:z])
        np.multiply(p, s, out=w)
        np.multiply(w, float(NOTIONAL_SCALE), out=w)
        np.rint(w, out=w)
        np.add.reduceat(w, at, out=notional[a:z])
    return price[starts], high, low, price[ends - 1], qty, notional, ends - starts


def eligible_bars(ts, sym, nsym: int, price, size, ns: int):
    """Bar arrays (sym, open ns, open, high, low, close, qty, notional, count) of ticks
    that are all eligible, in (symbol, open) order; None when a float total may not be
    exact (the int64 path decides then)."""
    starts, opens, codes = bar_starts(ts, sym, nsym, ns)
    o, h, lo, c, qty, notional, count = reduce_bars(starts, price, size)
    exact = (
        bool(lo.min() > 0)  # prices > 0: every partial sum is below its bar's total
        and bool(qty.max() < _EXACT_FLOAT_INT)
        and bool(notional.max() < _EXACT_FLOAT_INT)
    )
    if not exact:
        return None
    return codes, opens, o, h, lo, c, qty.astype(np.int64), notional.astype(np.int64), count
