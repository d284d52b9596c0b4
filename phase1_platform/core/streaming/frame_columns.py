"""Cheap column reads of a micro-batch frame (``on_batch``).

A micro-batch is small (about a thousand ticks), so what costs is not the data but the
per-column machinery: ``frame[name]`` builds a Series (about 10 us each in pandas 3),
and an element-wise check that a text column holds one value or only empty strings
runs several Arrow kernels. Here a column's backing array is taken directly (pandas'
``_get_column_array``, with ``frame[name].array`` as the fallback should it go away),
and pyarrow string columns are judged from their offsets and bytes:

- ``single_or_array``: one string when every row holds the same one (every length equals
  the first's and the value bytes are the first value repeated), else an object array;
- ``all_empty``: no value byte at all and no null (a constant-time look at two offsets);
- ``text_codes``: (codes, uniques) of a text column by Arrow dictionary encoding.

Other column types take the general pandas / numpy route, with the same results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..schema import ts_ns

_STRINGS = (pa.string(), pa.large_string())


def column(frame: pd.DataFrame, name: str):
    """The backing array of column ``name`` (an ndarray or a pandas extension array)."""
    get = getattr(frame, "_get_column_array", None)
    if get is not None:
        loc = frame.columns.get_loc(name)
        if isinstance(loc, int):  # a unique column label
            return get(loc)
    return frame[name].array


def ts_column(frame: pd.DataFrame) -> np.ndarray:
    """int64 UTC ns of the ``ts`` column (an integer column is taken as ns already)."""
    arr = column(frame, "ts")
    if isinstance(arr, np.ndarray) and arr.dtype.kind in "iu":
        return arr.astype("int64", copy=False)
    if isinstance(arr, pd.arrays.DatetimeArray) and arr.unit == "ns":
        return arr.asi8
    col = frame["ts"]
    return col.to_numpy("int64") if pd.api.types.is_integer_dtype(col.dtype) else ts_ns(col)


def _string_chunk(arr) -> pa.Array | None:
    """The (large) string values behind a pyarrow-backed text array, one chunk, else None."""
    if not isinstance(getattr(arr, "dtype", None), pd.StringDtype) or (
        arr.dtype.storage != "pyarrow"
    ):
        return None
    values = arr.__arrow_array__()
    if isinstance(values, pa.ChunkedArray):
        values = values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    return values if values.type in _STRINGS else None


def _offsets_and_data(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets of the chunk's rows, n + 1 of them; the whole value byte buffer)."""
    _, off_buf, data_buf = chunk.buffers()
    wide = chunk.type == pa.large_string()
    offsets = np.frombuffer(off_buf, dtype=np.int64 if wide else np.int32)
    offsets = offsets[chunk.offset: chunk.offset + len(chunk) + 1]
    data = np.empty(0, np.uint8) if data_buf is None else np.frombuffer(data_buf, np.uint8)
    return offsets, data


def single_or_array(arr):
    """One string when the (non-empty) column holds a single value, else an object array."""
    chunk = _string_chunk(arr)
    if chunk is not None:
        if chunk.null_count:
            return objects(arr)
        offsets, data = _offsets_and_data(chunk)
        lo = int(offsets[0])
        size = int(offsets[1]) - lo
        n = len(chunk)
        if int(offsets[-1]) - lo == n * size and bool((np.diff(offsets) == size).all()):
            body = data[lo: lo + n * size]
            if size == 0 or np.array_equal(body[size:], body[:-size]):
                return bytes(body[:size]).decode()
        return objects(arr)
    values = objects(arr)
    first = values[0]
    if isinstance(first, str) and not pd.isna(values).any() and (values == first).all():
        return first
    return values


def all_empty(arr) -> bool:
    """Whether a text column holds only empty strings (no trade ids in a batch)."""
    chunk = _string_chunk(arr)
    if chunk is not None:
        if chunk.null_count:
            return False
        offsets, _ = _offsets_and_data(chunk)
        return int(offsets[-1]) == int(offsets[0])
    return not any(map(bool, objects(arr)))


def objects(arr) -> np.ndarray:
    """The column as an object array (what ``Series.to_numpy(dtype=object)`` gives)."""
    return arr if isinstance(arr, np.ndarray) and arr.dtype == object else (
        arr.to_numpy(dtype=object) if hasattr(arr, "to_numpy") else np.asarray(arr, dtype=object)
    )


class CodedText:
    """A text column as a code per row into its distinct strings (``uniques``)."""

    __slots__ = ("codes", "uniques")

    def __init__(self, codes: np.ndarray, uniques: list[str]) -> None:
        self.codes = codes
        self.uniques = uniques


def text_codes(arr):
    """``CodedText`` of a null-free pyarrow text column (Arrow dictionary encoding), else
    the column as an object array (the caller factorizes it)."""
    chunk = _string_chunk(arr)
    if chunk is None or chunk.null_count:
        return objects(arr)
    encoded = chunk.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp, copy=False)
    return CodedText(codes, encoded.dictionary.to_pylist())
