"""Type checks of decoded vendor JSON, column by column (Finnhub and Alpaca trades).

A vendor's trade is a JSON object; each field is checked for the JSON type the protocol
promises (a number is an ``int`` or ``float`` and never a ``bool``, a text is a ``str``,
conditions are a list of codes). A row whose field has the wrong type is a bad row:
``Checker.flag`` records the first reason per row, the caller quarantines those rows
with their reason and keeps the rest.

Columns are object arrays of the field's values (``MISSING`` where the key is absent).
The common case, a column of plain numbers or plain strings, is recognised in one
vectorized pass (``pandas.api.types.infer_dtype``); only a column that mixes types is
looked at value by value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
from pandas.api.types import infer_dtype


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
_NUMERIC_KINDS = ("integer", "floating", "mixed-integer-float")


def column(items: Sequence[dict], key: str) -> np.ndarray:
    """The values of ``key`` in ``items`` as an object array (``MISSING`` if absent)."""
    return np.fromiter((d.get(key, MISSING) for d in items), dtype=object, count=len(items))


def objects(values: list) -> np.ndarray:
    """A list as a 1-d object array (lists inside stay elements)."""
    return np.fromiter(values, dtype=object, count=len(values))


def raw_text(item: object, limit: int = 10_000) -> str:
    """A bad row as text, for the quarantine (JSON where it can be, else repr)."""
    try:
        text = json.dumps(item, default=repr)
    except (TypeError, ValueError, RecursionError):
        text = repr(item)
    return text[:limit]


class Checker:
    """First reason per row; ``good[i]`` for a row that passed every check so far."""

    def __init__(self, n: int, field_label: str = "trade") -> None:
        self.reason = np.full(n, None, dtype=object)
        self.bad = np.zeros(n, dtype=bool)
        self.label = field_label

    def flag(self, mask: np.ndarray, why: str) -> None:
        new = mask & ~self.bad
        if new.any():
            self.reason[new] = why
            self.bad |= new

    def flag_rows(self, rows: list[int], why: str) -> None:
        if rows:
            mask = np.zeros(len(self.bad), dtype=bool)
            mask[rows] = True
            self.flag(mask, why)

    @property
    def good(self) -> np.ndarray:
        return ~self.bad

    # -- numbers -------------------------------------------------------------------
    def number(self, values: np.ndarray, name: str, *, integral: bool = False,
               lo: float | None = None, hi: float | None = None) -> np.ndarray:
        """``values`` (a required field) as float64, NaN where bad; bad rows flagged.

        A number is a JSON int or float (never a bool) and finite; ``integral`` asks for
        a whole number; ``[lo, hi)`` bounds it (outside is a bad row too).
        """
        n = len(values)
        out = None
        if n and infer_dtype(values, skipna=False) in _NUMERIC_KINDS:
            try:
                out = values.astype("float64")
            except OverflowError:  # an int beyond float range: look value by value
                out = None
        if out is None:
            out, ok, missing = _numbers_one_by_one(values)
            self.flag(missing, f"{self.label} {name} is missing")
            self.flag(~ok & ~missing, f"{self.label} {name} is not a number")
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(out)
            self.flag(~finite, f"{self.label} {name} is not finite")
            if integral:
                self.flag(np.floor(out) != out, f"{self.label} {name} is not a whole number")
            outside = np.zeros(n, dtype=bool)
            if lo is not None:
                outside |= out < lo
            if hi is not None:
                outside |= out >= hi
            self.flag(outside, f"{self.label} {name} is out of range")
        out[self.bad] = np.nan
        return out

    # -- text ----------------------------------------------------------------------
    def text(self, values: np.ndarray, name: str, *, required: bool = True,
             allow_int: bool = False) -> np.ndarray:
        """``values`` as an object array of str ("" where absent or bad); bad rows flagged.

        ``required=False``: absent or ``null`` is "". ``allow_int``: a JSON integer
        (not a bool) is taken as its decimal text (a numeric trade id).
        """
        n = len(values)
        if n and infer_dtype(values, skipna=False) == "string":
            return values
        out = np.full(n, "", dtype=object)
        missing: list[int] = []
        wrong: list[int] = []
        for i, v in enumerate(values):
            if isinstance(v, str):
                out[i] = v
            elif v is MISSING or v is None:
                missing.append(i)
            elif allow_int and isinstance(v, int) and not isinstance(v, bool):
                out[i] = str(v)
            else:
                wrong.append(i)
        if required:
            self.flag_rows(missing, f"{self.label} {name} is missing")
        self.flag_rows(wrong, f"{self.label} {name} is not a string")
        return out

    def codes(self, values: np.ndarray, name: str) -> np.ndarray:
        """Condition codes (a list of str, or absent/null) joined by spaces."""
        out = np.full(len(values), "", dtype=object)
        wrong: list[int] = []
        for i, v in enumerate(values):
            if v is MISSING or v is None:
                continue
            if type(v) is list:
                try:
                    out[i] = " ".join(v)
                    continue
                except TypeError:
                    pass
            wrong.append(i)
        self.flag_rows(wrong, f"{self.label} {name} is not a list of codes")
        return out


def optional_number(values: np.ndarray) -> np.ndarray:
    """float64 of a field that may be absent: NaN where absent, null or not a number."""
    if len(values) and infer_dtype(values, skipna=False) in _NUMERIC_KINDS:
        try:
            return values.astype("float64")
        except OverflowError:
            pass
    out, ok, _ = _numbers_one_by_one(values)
    out[~ok] = np.nan
    return out


def _numbers_one_by_one(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(values)
    out = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    missing = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        if v is MISSING or v is None:
            missing[i] = True
        elif isinstance(v, bool) or not isinstance(v, int | float):
            continue
        else:
            try:
                out[i] = float(v)
            except OverflowError:  # a huge int: not finite as a float
                out[i] = math.inf if v > 0 else -math.inf
            ok[i] = True
    return out, ok, missing
