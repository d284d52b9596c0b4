"""Symbol codes and the canonical tick order check, without sorting when not needed.

Canonical tick order is (symbol, ts, sequence, source, source_row). Ticks usually
arrive in it already, so ``is_canonical`` checks it with vectorized comparisons (ties
looked at only where they occur) and ``ensure_canonical`` sorts only when it fails.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .normalizer import canonical_sort
from .schema import ts_ns


def symbol_codes(col: pd.Series) -> tuple[np.ndarray | None, np.ndarray]:
    """(codes, symbols): codes index the sorted unique symbols; codes None when the
    column holds a single symbol (the common case, checked without a factorize)."""
    values = _arrow_strings(col)
    if values is not None and len(values) and _one_value(values):
        return None, np.array([values[0].as_py()], dtype=object)
    codes, uniques = pd.factorize(col, sort=True)
    return codes, np.asarray(uniques, dtype=object)


def symbol_bounds(codes: np.ndarray, count: int) -> np.ndarray:
    """Row where each symbol starts, then the row count (``codes`` sorted, every code in
    ``range(count)`` present, as ``symbol_codes`` gives them)."""
    return np.searchsorted(codes, np.arange(count + 1))


def _one_value(values: pa.ChunkedArray) -> bool:
    """Whether every entry equals the first one (no nulls).

    On (large) string arrays it reads the buffers, about 3x faster than an element-wise
    ``pc.equal``: every value has the first's byte length, and each chunk's value bytes
    then are that value repeated (the first bytes match and the bytes repeat with period
    length). Other string types go through ``pc.equal``."""
    first = values[0]
    if not first.is_valid or values.null_count:
        return False
    if values.type not in (pa.string(), pa.large_string()):
        return bool(pc.all(pc.equal(values, first), skip_nulls=False).as_py())
    want = first.as_py().encode()
    size = len(want)
    lengths = pc.min_max(pc.binary_length(values)).as_py()
    if lengths["min"] != size or lengths["max"] != size:
        return False
    if size == 0:
        return True
    pattern = np.frombuffer(want, dtype=np.uint8)
    wide = values.type == pa.large_string()
    for chunk in values.chunks:
        if len(chunk) == 0:
            continue
        _, offsets, data = chunk.buffers()
        start = int(np.frombuffer(offsets, dtype=np.int64 if wide else np.int32)[chunk.offset])
        body = np.frombuffer(data, dtype=np.uint8)[start:start + size * len(chunk)]
        if not (np.array_equal(body[:size], pattern)
                and np.array_equal(body[size:], body[:-size])):
            return False
    return True


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
