"""Columnar data model of the platform: ticks, quarantined rows and bars.

Ticks and bars are pandas DataFrames with fixed columns and dtypes. Arithmetic that
must be exact whatever the order of the ticks (volume and notional sums) is done on
integers, so batch, streaming, micro-batch and roll-up paths give identical bars:

- ``qty``: the trade size in units of 1e-8 (``QTY_SCALE``), int64;
- ``notional``: price x size in units of 1e-6 (``NOTIONAL_SCALE``), int64.

Both are rounded once per tick, so a bar's sums are the same integers in any order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

QTY_SCALE = 10**8
NOTIONAL_SCALE = 10**6
# largest per-tick value the integer units hold with head room for sums
MAX_TICK_NOTIONAL = 1e12
MAX_TICK_SIZE = 1e10

TS_DTYPE = "datetime64[ns, UTC]"

# Normalized ticks, in canonical order (symbol, ts, sequence, source, source_row).
TICK_COLUMNS: dict[str, object] = {
    "ts": TS_DTYPE,  # trade time, UTC nanoseconds
    "symbol": "str",
    "price": "float64",
    "size": "float64",
    "exchange": "str",
    "conditions": "str",  # condition codes separated by spaces ("" if none)
    "trade_id": "str",  # "" when the vendor gives none
    "sequence": "int64",  # -1 when absent
    "source": "str",  # where the row came from (file name, connector)
    "source_row": "int64",  # position of the row in its source (arrival order)
}

QUARANTINE_COLUMNS: dict[str, object] = {
    "source": "str",
    "source_row": "int64",
    "reason": "str",
    "raw": "str",  # the row as received, for the user to inspect
}

# Internal bar frame: exact integer sums, timestamps as int64 ns (bar open, UTC).
BAR_COLUMNS: dict[str, object] = {
    "symbol": "str",
    "timeframe": "str",
    "ts": "int64",
    "open": "float64",
    "high": "float64",
    "low": "float64",
    "close": "float64",
    "qty": "int64",
    "notional": "int64",
    "trade_count": "int64",
}

# Canonical bar frame (export, parity, vendor bars): volume and vwap as floats.
CANONICAL_COLUMNS: dict[str, object] = {
    **{c: BAR_COLUMNS[c] for c in ("symbol", "timeframe", "ts", "open", "high", "low", "close")},
    "volume": "float64",
    "trade_count": "float64",  # NaN when the source has none
    "vwap": "float64",  # NaN when unknown
}

CANONICAL_HEADER = (
    "symbol",
    "timeframe",
    "timestamp",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "trade_count",
    "vwap",
)


def empty_frame(columns: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def empty_ticks() -> pd.DataFrame:
    return empty_frame(TICK_COLUMNS)


def empty_bars() -> pd.DataFrame:
    return empty_frame(BAR_COLUMNS)


def empty_quarantine() -> pd.DataFrame:
    return empty_frame(QUARANTINE_COLUMNS)


def empty_canonical() -> pd.DataFrame:
    return empty_frame(CANONICAL_COLUMNS)


def ts_ns(series: pd.Series) -> np.ndarray:
    """int64 nanoseconds since the epoch of a tz-aware timestamp column."""
    return series.to_numpy(dtype="datetime64[ns]").view("int64") if len(series) else np.empty(
        0, dtype="int64"
    )


def qty_units_float(size: np.ndarray) -> np.ndarray:
    """rint(size * 1e8) as integer-valued float64 (``qty_units`` before the int64 cast)."""
    x = np.multiply(np.asarray(size, dtype="float64"), float(QTY_SCALE))
    np.rint(x, out=x)
    return x


def notional_units_float(price: np.ndarray, size: np.ndarray) -> np.ndarray:
    """rint(price * size * 1e6), evaluated as (price * size) * 1e6, as float64."""
    x = np.multiply(np.asarray(price, dtype="float64"), np.asarray(size, dtype="float64"))
    np.multiply(x, float(NOTIONAL_SCALE), out=x)
    np.rint(x, out=x)
    return x


def qty_units(size: np.ndarray) -> np.ndarray:
    """rint(size * 1e8) as int64 (in place on one temporary: the same float ops)."""
    return qty_units_float(size).astype("int64")


def notional_units(price: np.ndarray, size: np.ndarray) -> np.ndarray:
    """rint(price * size * 1e6) as int64, evaluated as (price * size) * 1e6."""
    return notional_units_float(price, size).astype("int64")


def bar_volume(qty: np.ndarray) -> np.ndarray:
    return np.asarray(qty, dtype="int64") / QTY_SCALE


def bar_vwap(notional: np.ndarray, qty: np.ndarray) -> np.ndarray:
    """vwap = notional / volume; NaN for a bar with no volume (zero-size prints only)."""
    notional = np.asarray(notional, dtype="int64")
    qty = np.asarray(qty, dtype="int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = notional.astype("float64") / qty.astype("float64") * (QTY_SCALE / NOTIONAL_SCALE)
    return np.where(qty > 0, vwap, np.nan)
