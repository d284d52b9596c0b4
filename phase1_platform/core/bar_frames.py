"""Bar frames from per-bar arrays, and the canonical bar order.

The internal bar frame (``schema.BAR_COLUMNS``) is what every builder returns; its
canonical order is symbol, timeframe by duration, then bar open time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .bar_segments import Segments
from .schema import BAR_COLUMNS, empty_bars
from .timeframes import TIMEFRAMES, timeframe_rank


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
    """Internal bar frame of ``seg`` (its symbol codes index ``symbols``)."""
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
