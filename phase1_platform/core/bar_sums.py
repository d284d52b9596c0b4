"""Exact integer bar totals: the int64 overflow guard and the float fast-path check.

Volume and notional are integer units (see ``schema``). The engine sums them first as
integer-valued floats (fast, exact below 2**53) and falls back to int64 sums when a total
may not be exact; an int64 total that does not fit is refused with ``BarOverflowError``
naming the bar, never silently wrapped (DESIGN section 4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import InputError

if TYPE_CHECKING:
    from .bar_segments import Segments

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


def sums_exact(seg: Segments) -> bool:
    """Float sums of non-negative integer-valued floats are exact when the total is below
    2**53 (every partial sum is then below it too)."""
    if seg.qty.dtype.kind != "f":
        return False
    if len(seg.qty) == 0:
        return True
    return bool(seg.qty.max() < _EXACT_FLOAT_INT) and bool(
        seg.notional.max() < _EXACT_FLOAT_INT
    )
