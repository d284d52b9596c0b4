"""Vectorized parsing of the tick fields whose range DESIGN section 3 fixes: timestamps
(with a zone, 1970-01-01 .. 2262-04-10) and sequences (integers 0 .. 2**63 - 1).

Each parser returns the values and boolean masks of what is wrong; the normalizer turns
the masks into quarantine reasons (first that applies), so nothing here raises on a bad
value and no value wraps around silently.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from .calendar import MAX_TS_NS, MIN_TS_NS

# a zone (Z or an offset) right after a time of day: a bare date such as "2013-10-07"
# must not pass because it ends in what looks like an offset ("-07")
# (no \s or \d: they send pandas' pyarrow strings to Python's slower re)
_ZONE_PATTERN = (
    r"[Tt ][0-9]{2}(?::?[0-9]{2}(?::?[0-9]{2}(?:[.,][0-9]+)?)?)? *"
    r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)$"
)
_FRACTION = r"[.,][0-9]+"
_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_NOT_A_TIME = np.iinfo("int64").min  # NaT as int64

SEQUENCE_MAX = 2**63 - 1
_SEQUENCE_MAX_TEXT = str(SEQUENCE_MAX)
# an integer, optionally written with a zero fraction ("12.0"); no sign, no exponent
_SEQUENCE_TEXT = r"^\+?([0-9]+)(?:\.0*)?$"
_NO_SEQUENCE = ("", "nan", "None", "<NA>")


class Timestamps(NamedTuple):
    ns: np.ndarray  # int64 UTC ns; 0 where any mask below is set
    unparseable: np.ndarray
    no_zone: np.ndarray
    before_1970: np.ndarray
    after_2262: np.ndarray  # at or after 2262-04-11T00:00:00Z (MAX_TS_NS, exclusive)


class Sequences(NamedTuple):
    values: np.ndarray  # int64, -1 when absent or bad
    bad: np.ndarray


def parse_timestamps(col: pd.Series) -> Timestamps:
    """UTC ns of a column of ISO-8601 text, tz-aware datetimes or int64 UTC ns."""
    n = len(col)
    none = np.zeros(n, dtype=bool)
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        utc = col.dt.tz_convert("UTC")
        return _in_range(_unit_values(utc), _UNIT_NS[utc.dt.unit], none, none)
    if pd.api.types.is_datetime64_dtype(col.dtype):
        return Timestamps(np.zeros(n, dtype="int64"), none, ~none, none, none)
    if pd.api.types.is_integer_dtype(col.dtype):
        missing = col.isna().to_numpy(bool)
        if pd.api.types.is_unsigned_integer_dtype(col.dtype):
            raw = col.to_numpy("uint64", na_value=0)
            big = raw > np.uint64(MAX_TS_NS)
            values = np.where(big, MAX_TS_NS, raw).astype("int64")
        else:
            values = col.to_numpy("int64", na_value=0)
        return _in_range(np.where(missing, _NOT_A_TIME, values), 1, missing, none)
    text = col.astype("str").str.strip()
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    unit = _UNIT_NS[parsed.dt.unit]
    values = _unit_values(parsed)
    unparseable = parsed.isna().to_numpy(bool)
    has_zone = text.str.contains(_ZONE_PATTERN, regex=True).fillna(False).to_numpy(bool)
    out = _in_range(values, unit, unparseable, ~has_zone)
    if out.unparseable.any():
        _retry(text, out)
    return out


def _retry(text: pd.Series, out: Timestamps) -> None:
    """Second look at the rows pandas could not read, in place on ``out``: lower-case
    ``t``/``z`` (RFC 3339 allows them) read upper-cased; a valid stamp outside the ns
    range (NaT in a ns column) read again without its fraction (a coarser unit) to tell
    "out of range" from "unparseable"."""
    idx = np.flatnonzero(out.unparseable)
    upper = text.iloc[idx].str.upper()
    again = pd.to_datetime(upper, utc=True, format="ISO8601", errors="coerce")
    fixed = _in_range(_unit_values(again), _UNIT_NS[again.dt.unit],
                      np.zeros(len(idx), dtype=bool), np.zeros(len(idx), dtype=bool))
    out.before_1970[idx[fixed.before_1970]] = True
    out.after_2262[idx[fixed.after_2262]] = True
    out.ns[idx] = fixed.ns
    out.unparseable[idx] = fixed.unparseable
    idx, upper = idx[fixed.unparseable], upper[fixed.unparseable]
    if len(idx) == 0:
        return
    coarse_dt = pd.to_datetime(upper.str.replace(_FRACTION, "", regex=True),
                               utc=True, format="ISO8601", errors="coerce")
    coarse = _unit_values(coarse_dt)
    limit = MAX_TS_NS // _UNIT_NS[coarse_dt.dt.unit]
    read = coarse != _NOT_A_TIME
    before, after = read & (coarse < MIN_TS_NS), read & (coarse >= limit)
    out.before_1970[idx[before]] = True
    out.after_2262[idx[after]] = True
    out.unparseable[idx[before | after]] = False


def _unit_values(utc: pd.Series) -> np.ndarray:
    """int64 counts of the column's own unit (NaT = int64 min), without any cast to ns."""
    return utc.dt.tz_localize(None).to_numpy().view("int64")


def _in_range(values: np.ndarray, unit_ns: int, unparseable: np.ndarray,
              no_zone: np.ndarray) -> Timestamps:
    nat = values == _NOT_A_TIME
    unparseable = unparseable | nat
    before = ~nat & (values < MIN_TS_NS)
    after = ~nat & (values >= MAX_TS_NS // unit_ns)  # MAX_TS_NS is a whole day: exact
    ok = ~(unparseable | before | after)
    ns = np.where(ok, values, 0) * unit_ns  # in range: no overflow
    return Timestamps(ns.astype("int64"), unparseable, no_zone.copy(), before, after)


def parse_sequences(col: pd.Series | None, n: int) -> Sequences:
    """Sequences of a text or integer column; -1 (none) for empty text, NaN and -1."""
    if col is None:
        return Sequences(np.full(n, -1, dtype="int64"), np.zeros(n, dtype=bool))
    if pd.api.types.is_integer_dtype(col.dtype):
        if pd.api.types.is_unsigned_integer_dtype(col.dtype):
            raw = col.to_numpy("uint64", na_value=np.iinfo("uint64").max)
            missing = col.isna().to_numpy(bool)
            bad = ~missing & (raw > np.uint64(SEQUENCE_MAX))
            values = np.where(bad | missing, -1, raw.astype("int64", copy=False))
        else:
            values = col.to_numpy("int64", na_value=-1)
            bad = values < -1
            values = np.where(bad, -1, values)
        return Sequences(values.astype("int64"), bad)
    text = col.astype("str").str.strip()
    empty = (text.isna() | text.isin(_NO_SEQUENCE)).to_numpy(bool)
    digits = text.str.extract(_SEQUENCE_TEXT, expand=False).str.lstrip("0")
    digits = digits.mask(digits == "", "0")
    length = digits.str.len().fillna(99).to_numpy("int64")
    fits = (length < len(_SEQUENCE_MAX_TEXT)) | (
        (length == len(_SEQUENCE_MAX_TEXT)) & (digits <= _SEQUENCE_MAX_TEXT).fillna(False)
        .to_numpy(bool))
    ok = ~empty & fits
    values = np.full(n, -1, dtype="int64")
    if ok.any():
        values[ok] = digits[ok].astype("int64").to_numpy("int64")
    return Sequences(values, ~empty & ~ok)
