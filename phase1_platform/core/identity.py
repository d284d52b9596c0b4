"""The one tick identity (DESIGN section 3), shared by the normalizer, the store and the
live service.

- A trade with a ``trade_id`` is ``(symbol, ts, trade_id)``.
- A trade without one is ``(symbol, ts, source, source_row)``: identical prints without a
  trade id at two positions are two trades; the very same row read twice is one.

The same identity seen again is a *repeat* of the first arrival: a **duplicate** when its
content (``CONTENT_COLUMNS``) is the same (counted once), a **conflicting duplicate**
when it differs (the first stays, the later one is quarantined with
``CONFLICTING_DUPLICATE``), whichever way it arrives.

Frames are normalized ticks (``schema.TICK_COLUMNS``): ``ts`` tz-aware or int64 UTC ns,
``trade_id`` ``""`` when absent, ``sequence`` -1 when absent, texts already stripped.
Everything is vectorized; the text keys are only built for rows whose integer keys
(timestamp, position or trade id code) already collide.

API (stable): ``KEY_COLUMNS``, ``CONTENT_COLUMNS``, ``CONFLICTING_DUPLICATE``,
``identity_keys``, ``same_content``, ``Repeats``, ``find_repeats``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

CONFLICTING_DUPLICATE = "conflicting duplicate"

# columns of identity_keys(): rows with a trade_id have source "" and source_row -1 there
KEY_COLUMNS = ("symbol", "ts", "trade_id", "source", "source_row")
# the fields that tell a duplicate (same) from a conflicting duplicate (different)
CONTENT_COLUMNS = ("price", "size", "exchange", "conditions", "sequence")


def _ts_ns(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.to_numpy("int64")
    if len(col) == 0:
        return np.empty(0, dtype="int64")
    return col.to_numpy(dtype="datetime64[ns]").view("int64")


def _text(ticks: pd.DataFrame, name: str) -> pd.Series:
    if name not in ticks.columns:
        return pd.Series("", index=ticks.index, dtype="str")
    col = ticks[name]
    return (col if isinstance(col.dtype, pd.StringDtype) else col.astype("str")).fillna("")


def identity_keys(ticks: pd.DataFrame) -> pd.DataFrame:
    """The identity of each tick as columns ``KEY_COLUMNS`` (same index as ``ticks``).

    ``ts`` is int64 UTC ns. For a row with a ``trade_id``, ``source`` is ``""`` and
    ``source_row`` -1 (they are not part of its identity); for a row without one,
    ``trade_id`` is ``""``. Two rows have the same identity iff these columns are equal,
    so the frame can be used as a unique key (e.g. a store's constraint or a set)."""
    trade_id = _text(ticks, "trade_id")
    has_id = trade_id.ne("").to_numpy(bool)
    return pd.DataFrame(
        {
            "symbol": _text(ticks, "symbol"),
            "ts": _ts_ns(ticks["ts"]),
            "trade_id": trade_id,
            "source": _text(ticks, "source").mask(has_id, ""),
            "source_row": np.where(has_id, -1, ticks["source_row"].to_numpy("int64")),
        },
        index=ticks.index,
    ).astype({"symbol": "str", "trade_id": "str", "source": "str"})


def same_content(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Row by row (by position, equal lengths): whether ``CONTENT_COLUMNS`` are equal.

    Prices and sizes compare as float64 (exact), texts as strings, sequences as
    integers. Used on two rows of the same identity: True = duplicate, False = conflict."""
    if len(a) != len(b):
        raise ValueError(f"same_content needs equal lengths, got {len(a)} and {len(b)}")
    same = np.ones(len(a), dtype=bool)
    for name in ("price", "size"):
        same &= a[name].to_numpy("float64") == b[name].to_numpy("float64")
    for name in ("exchange", "conditions"):
        same &= _text(a, name).to_numpy(object) == _text(b, name).to_numpy(object)
    seq_a = a["sequence"].to_numpy("int64") if "sequence" in a.columns else np.full(len(a), -1)
    seq_b = b["sequence"].to_numpy("int64") if "sequence" in b.columns else np.full(len(b), -1)
    return same & (seq_a == seq_b)


def _colliding(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted positions of the rows whose (a, b) pair occurs more than once."""
    order = np.lexsort((b, a))  # cheap on the (nearly) sorted arrays ticks come in
    sa, sb = a[order], b[order]
    eq = (sa[1:] == sa[:-1]) & (sb[1:] == sb[:-1])
    hit = np.zeros(len(a), dtype=bool)
    hit[1:] |= eq
    hit[:-1] |= eq
    return np.sort(order[hit])


@dataclass(frozen=True)
class Repeats:
    """Per row of a frame: whether it repeats the identity of an earlier arrival.

    ``first`` holds, for each repeat, the position (0-based, in the frame) of the first
    arrival of its identity, and -1 for rows that are not repeats."""

    duplicate: np.ndarray  # bool: same identity and content as the first arrival
    conflicting: np.ndarray  # bool: same identity, different content
    first: np.ndarray  # int64 position of the first arrival, -1 if not a repeat

    @property
    def repeated(self) -> np.ndarray:
        return self.duplicate | self.conflicting


def find_repeats(ticks: pd.DataFrame,
                 arrival: np.ndarray | Sequence[str] | None = None) -> Repeats:
    """Which rows of ``ticks`` repeat an identity that arrived before them.

    ``arrival`` is the arrival order: None = the frame's own order; an array = a rank per
    row (smaller = earlier); column names, e.g. ``("source", "source_row")`` = the order
    of those columns. Ties keep frame order. To check new ticks against stored ones, pass
    ``pd.concat([stored, new])`` (stored first) and look at the new rows."""
    n = len(ticks)
    duplicate = np.zeros(n, dtype=bool)
    conflicting = np.zeros(n, dtype=bool)
    first = np.full(n, -1, dtype="int64")
    if n < 2:
        return Repeats(duplicate, conflicting, first)
    # cheap integer prefilter: same ts and same (source_row | trade_id code); the text
    # keys are built only for the rows that collide there
    ts = _ts_ns(ticks["ts"])
    trade_id = _text(ticks, "trade_id")
    has_id = trade_id.ne("").to_numpy(bool)
    second = ticks["source_row"].to_numpy("int64").copy()
    if has_id.any():
        second[has_id] = -2 - pd.factorize(trade_id[has_id])[0]
    pos = _colliding(ts, second)
    if len(pos) == 0:
        return Repeats(duplicate, conflicting, first)
    if isinstance(arrival, np.ndarray):
        pos = pos[np.argsort(arrival[pos], kind="stable")]
    elif arrival is not None:
        sub = ticks.iloc[pos]
        keys = [pd.factorize(sub[c], sort=True)[0] for c in reversed(list(arrival))]
        pos = pos[np.lexsort([np.arange(len(pos)), *keys])]
    sub = identity_keys(ticks.iloc[pos])
    gid = sub.groupby(list(KEY_COLUMNS), sort=False).ngroup().to_numpy("int64")
    _, first_at = np.unique(gid, return_index=True)  # first occurrence in arrival order
    first_pos = pos[first_at[gid]]
    later = first_pos != pos
    rep, orig = pos[later], first_pos[later]
    same = same_content(ticks.iloc[rep], ticks.iloc[orig])
    duplicate[rep[same]] = True
    conflicting[rep[~same]] = True
    first[rep] = orig
    return Repeats(duplicate, conflicting, first)
