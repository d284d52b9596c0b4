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
``trade_id`` ``""`` when absent, ``sequence`` -1 when absent. Everything is vectorized;
the text columns are only compared for rows whose integer keys already collide.

API (stable): ``KEY_COLUMNS``, ``CONTENT_COLUMNS``, ``CONFLICTING_DUPLICATE``,
``identity_keys``, ``same_content``, ``Repeats``, ``find_repeats``.
"""

from __future__ import annotations

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


def _text(ticks: pd.DataFrame, name: str) -> np.ndarray:
    if name not in ticks.columns:
        return np.full(len(ticks), "", dtype=object)
    return ticks[name].astype("str").fillna("").to_numpy(object)


def identity_keys(ticks: pd.DataFrame) -> pd.DataFrame:
    """The identity of each tick as columns ``KEY_COLUMNS`` (same index as ``ticks``).

    ``ts`` is int64 UTC ns. For a row with a ``trade_id``, ``source`` is ``""`` and
    ``source_row`` -1 (they are not part of its identity); for a row without one,
    ``trade_id`` is ``""``. Two rows have the same identity iff these columns are equal,
    so the frame can be used as a unique key (e.g. a store's constraint or a set)."""
    trade_id = _text(ticks, "trade_id")
    has_id = trade_id != ""
    source = _text(ticks, "source")
    source_row = ticks["source_row"].to_numpy("int64")
    return pd.DataFrame(
        {
            "symbol": _text(ticks, "symbol"),
            "ts": _ts_ns(ticks["ts"]),
            "trade_id": trade_id,
            "source": np.where(has_id, "", source),
            "source_row": np.where(has_id, -1, source_row),
        },
        index=ticks.index,
    ).astype({"symbol": "str", "trade_id": "str", "source": "str"})


def same_content(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Row by row (by position, equal lengths): whether ``CONTENT_COLUMNS`` are equal.

    Prices and sizes compare as float64 (exact), texts as stripped strings, sequences as
    integers. Used on two rows of the same identity: True = duplicate, False = conflict."""
    if len(a) != len(b):
        raise ValueError(f"same_content needs equal lengths, got {len(a)} and {len(b)}")
    same = np.ones(len(a), dtype=bool)
    for name in ("price", "size"):
        same &= a[name].to_numpy("float64") == b[name].to_numpy("float64")
    for name in ("exchange", "conditions"):
        same &= _text(a, name) == _text(b, name)
    seq_a = a["sequence"].to_numpy("int64") if "sequence" in a.columns else np.full(len(a), -1)
    seq_b = b["sequence"].to_numpy("int64") if "sequence" in b.columns else np.full(len(b), -1)
    return same & (seq_a == seq_b)


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


def find_repeats(ticks: pd.DataFrame, arrival: np.ndarray | None = None) -> Repeats:
    """Which rows of ``ticks`` repeat an identity that arrived before them.

    ``arrival`` ranks the rows by arrival (smaller = earlier, ties in frame order); by
    default the frame's own order is the arrival order. To check new ticks against stored
    ones, pass ``pd.concat([stored, new])`` (stored first) and look at the new rows."""
    n = len(ticks)
    duplicate = np.zeros(n, dtype=bool)
    conflicting = np.zeros(n, dtype=bool)
    first = np.full(n, -1, dtype="int64")
    if n < 2:
        return Repeats(duplicate, conflicting, first)
    keys = identity_keys(ticks).reset_index(drop=True)
    # cheap integer prefilter: same ts and same (source_row | trade_id code)
    has_id = keys["trade_id"].to_numpy(object) != ""
    second = keys["source_row"].to_numpy("int64").copy()
    if has_id.any():
        second[has_id] = -2 - pd.factorize(keys["trade_id"][has_id])[0]
    cand = pd.DataFrame({"ts": keys["ts"], "k": second}).duplicated(keep=False).to_numpy(bool)
    if not cand.any():
        return Repeats(duplicate, conflicting, first)
    pos = np.flatnonzero(cand)
    if arrival is not None:
        pos = pos[np.argsort(np.asarray(arrival)[pos], kind="stable")]
    sub = keys.iloc[pos]
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
