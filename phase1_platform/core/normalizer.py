"""TickNormalizer: raw rows -> canonical ticks, bad rows quarantined with a reason.

DESIGN section 3 (ordering, dedup) and section 7 (bad input). All vectorized.

Input: a frame with at least ``timestamp, symbol, price, size`` and optionally
``exchange, conditions, trade_id, sequence, source, source_row``. Values may be text
(as read from a CSV) or already typed (connectors, LEAN reader): timestamps as
tz-aware datetimes or int64 UTC nanoseconds.

Output ticks are in canonical order: symbol, then (timestamp, sequence, source,
source_row). Sorting on persisted keys (not on the order files were given) keeps the
order reproducible from the store.

Repeats follow the one tick identity of ``core.identity`` (DESIGN section 3): a trade
with a ``trade_id`` is (symbol, ts, trade_id), one without is (symbol, ts, source,
source_row), so identical prints without a trade id are distinct trades while the very
same row read twice is one. Among rows of one identity the first arrival stays, arrival
being (source, source_row) order (persisted keys again); a later row with the same
content is a duplicate (``duplicate trade_id`` / ``duplicate row``), one with other
content a ``conflicting duplicate``. Either is quarantined, counted, never dropped.

A reader may mark rows it could not read cleanly with a non-empty column: ``malformed``
(the wrong number of fields; it holds the line as written, shown as the raw form) or
``undecodable`` (bytes that are not UTF-8; the fields show them as ``\\xHH``). Such rows
are quarantined first, with that reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import InputError
from .identity import CONFLICTING_DUPLICATE, find_repeats
from .partition import SYMBOL_PATTERN  # the one rule (DESIGN 3); cli imports it from here
from .schema import (
    MAX_TICK_NOTIONAL,
    MAX_TICK_SIZE,
    QUARANTINE_COLUMNS,
    TICK_COLUMNS,
    empty_quarantine,
    ts_ns,
)
from .tick_fields import parse_sequences, parse_timestamps

REQUIRED_COLUMNS = ("timestamp", "symbol", "price", "size")
OPTIONAL_COLUMNS = ("exchange", "conditions", "trade_id", "sequence")
MALFORMED_COLUMN = "malformed"  # set by readers on lines with the wrong number of fields
UNDECODABLE_COLUMN = "undecodable"  # set by readers on rows with bytes that are not UTF-8
READER_COLUMNS = (MALFORMED_COLUMN, UNDECODABLE_COLUMN)


class Reason:
    """Quarantine reasons (DESIGN section 7); a row gets the first that applies."""

    UNDECODABLE_ROW = "undecodable row"
    MALFORMED_LINE = "malformed line"
    TIMESTAMP_UNPARSEABLE = "unparseable timestamp"
    TIMESTAMP_NO_ZONE = "timestamp without zone"
    TIMESTAMP_BEFORE_1970 = "timestamp before 1970"
    TIMESTAMP_AFTER_2262 = "timestamp after 2262-04-10"
    SYMBOL_MALFORMED = "malformed symbol"
    SYMBOL_UNKNOWN = "unknown symbol"
    PRICE_BAD = "price <= 0 or NaN"
    SIZE_BAD = "size unparseable or NaN"
    SIZE_NEGATIVE = "negative size"
    OUT_OF_RANGE = "price x size out of range"
    SEQUENCE_BAD = "unparseable sequence"
    OUTSIDE_PARTITION = "outside partition"
    DUPLICATE_TRADE_ID = "duplicate trade_id"
    DUPLICATE_ROW = "duplicate row"
    CONFLICTING_DUPLICATE = CONFLICTING_DUPLICATE


class MissingColumnsError(InputError):
    pass


@dataclass
class NormalizeResult:
    ticks: pd.DataFrame
    quarantine: pd.DataFrame
    rows_in: int = 0

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        counts = self.quarantine["reason"].value_counts()
        return {str(k): int(v) for k, v in sorted(counts.items())}

    @property
    def rejected(self) -> int:
        return len(self.quarantine)


@dataclass
class TickNormalizer:
    """Makes ticks canonical.

    symbols: when given (names, or one comma-separated string), rows of other symbols
        are quarantined as unknown.
    window: when given, [start_ns, end_ns) in UTC; rows outside are quarantined.
    """

    symbols: Iterable[str] | None = None
    window: tuple[int, int] | None = None
    _symbols: frozenset[str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.symbols is not None:
            names = self.symbols.split(",") if isinstance(self.symbols, str) else self.symbols
            self._symbols = frozenset(s.strip().upper() for s in names if s.strip())

    def normalize(self, raw: pd.DataFrame, source: str = "input") -> NormalizeResult:
        missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
        if missing:
            raise MissingColumnsError(f"missing required column(s): {', '.join(missing)}")
        n = len(raw)
        raw = raw.reset_index(drop=True)
        reason = np.full(n, None, dtype=object)

        def flag(mask: np.ndarray, why: str) -> None:
            reason[mask & pd.isna(reason)] = why

        if UNDECODABLE_COLUMN in raw.columns:
            flag(_marked(raw[UNDECODABLE_COLUMN]), Reason.UNDECODABLE_ROW)
        raw_lines = None  # the line as written, for rows a reader marked malformed
        if MALFORMED_COLUMN in raw.columns:
            malformed = _marked(raw[MALFORMED_COLUMN])
            flag(malformed, Reason.MALFORMED_LINE)
            raw_lines = np.where(malformed, raw[MALFORMED_COLUMN].astype("str").to_numpy(object),
                                 None)
        raw_cols = raw.drop(columns=[c for c in READER_COLUMNS if c in raw.columns])
        stamps = parse_timestamps(raw["timestamp"])
        ts = stamps.ns
        flag(stamps.unparseable, Reason.TIMESTAMP_UNPARSEABLE)
        flag(stamps.no_zone, Reason.TIMESTAMP_NO_ZONE)
        # bars are epoch-aligned int64 ns with -1 as "no bar": a tick before the epoch
        # would be lost silently there; pandas' ns range ends in 2262 (DESIGN section 3)
        flag(stamps.before_1970, Reason.TIMESTAMP_BEFORE_1970)
        flag(stamps.after_2262, Reason.TIMESTAMP_AFTER_2262)
        symbol = _text(raw["symbol"])
        flag(~symbol.str.fullmatch(SYMBOL_PATTERN).fillna(False).to_numpy(bool),
             Reason.SYMBOL_MALFORMED)
        if self._symbols is not None:
            flag(~symbol.isin(self._symbols).to_numpy(bool), Reason.SYMBOL_UNKNOWN)

        price = pd.to_numeric(raw["price"], errors="coerce").to_numpy("float64", na_value=np.nan)
        flag(~(price > 0) | ~np.isfinite(price), Reason.PRICE_BAD)
        size = pd.to_numeric(raw["size"], errors="coerce").to_numpy("float64", na_value=np.nan)
        flag(~np.isfinite(size), Reason.SIZE_BAD)
        flag(size < 0, Reason.SIZE_NEGATIVE)
        with np.errstate(invalid="ignore", over="ignore"):
            flag((size > MAX_TICK_SIZE) | (price * size > MAX_TICK_NOTIONAL), Reason.OUT_OF_RANGE)

        sequences = parse_sequences(raw.get("sequence"), n)
        flag(sequences.bad, Reason.SEQUENCE_BAD)
        sequence = sequences.values
        if self.window is not None:
            start, end = self.window
            flag(~((ts >= start) & (ts < end)), Reason.OUTSIDE_PARTITION)

        src = (
            _text(raw["source"])
            if "source" in raw.columns
            else pd.Series([source] * n, dtype="str")
        )
        src_row = (
            pd.to_numeric(raw["source_row"]).to_numpy("int64")
            if "source_row" in raw.columns
            else np.arange(n, dtype="int64")
        )
        ticks = pd.DataFrame(
            {
                "ts": ts,
                "symbol": symbol,
                "price": price,
                "size": size,
                "exchange": _optional_text(raw, "exchange", n),
                "conditions": _optional_text(raw, "conditions", n),
                "trade_id": _optional_text(raw, "trade_id", n),
                "sequence": sequence,
                "source": src,
                "source_row": src_row,
            }
        )
        good = pd.isna(reason)
        ticks = canonical_sort(ticks[good])
        quarantine = _quarantine_frame(raw_cols, ~good, reason, src, src_row, raw_lines)

        repeats = find_repeats(ticks, arrival=("source", "source_row"))
        if repeats.repeated.any():
            has_id = ticks["trade_id"].ne("").to_numpy(bool)
            dup_frames = [
                _duplicates_frame(ticks[mask], why)
                for mask, why in (
                    (repeats.duplicate & has_id, Reason.DUPLICATE_TRADE_ID),
                    (repeats.duplicate & ~has_id, Reason.DUPLICATE_ROW),
                    (repeats.conflicting, Reason.CONFLICTING_DUPLICATE),
                )
                if mask.any()
            ]
            quarantine = pd.concat([quarantine, *dup_frames], ignore_index=True)
            ticks = ticks[~repeats.repeated]
        ticks = ticks.reset_index(drop=True)
        ticks["ts"] = pd.to_datetime(ticks["ts"].to_numpy("int64"), utc=True).as_unit("ns")
        ticks = ticks.astype(TICK_COLUMNS)
        quarantine = quarantine.sort_values(["source", "source_row"], kind="stable")
        return NormalizeResult(ticks, quarantine.reset_index(drop=True), rows_in=n)


def canonical_sort(ticks: pd.DataFrame) -> pd.DataFrame:
    """Order by symbol, then (timestamp, sequence, source, source_row)."""
    if len(ticks) == 0:
        return ticks
    col = ticks["ts"]
    ts = col.to_numpy("int64") if pd.api.types.is_integer_dtype(col.dtype) else ts_ns(col)
    sym_codes = pd.factorize(ticks["symbol"], sort=True)[0]
    src_codes = pd.factorize(ticks["source"], sort=True)[0]
    order = np.lexsort(
        (
            ticks["source_row"].to_numpy("int64"),
            src_codes,
            ticks["sequence"].to_numpy("int64"),
            ts,
            sym_codes,
        )
    )
    return ticks.iloc[order]


def _text(col: pd.Series) -> pd.Series:
    return col.astype("str").str.strip()


def _optional_text(raw: pd.DataFrame, name: str, n: int) -> pd.Series:
    if name not in raw.columns:
        return pd.Series([""] * n, dtype="str")
    return raw[name].astype("str").fillna("").str.strip().replace("nan", "")


def _marked(col: pd.Series) -> np.ndarray:
    return (col.notna() & col.astype("str").str.len().gt(0)).to_numpy(bool)


def _quarantine_frame(raw, bad, reason, src, src_row, raw_lines=None) -> pd.DataFrame:
    if not bad.any():
        return empty_quarantine()
    rows = raw[bad]
    text = rows.astype("str").fillna("")
    raw_text = text.apply(lambda r: ",".join(f"{k}={v}" for k, v in r.items()), axis=1)
    if raw_lines is not None:
        lines = raw_lines[bad]
        raw_text = pd.Series(np.where(pd.isna(lines), raw_text.to_numpy(object), lines),
                             index=raw_text.index)
    return pd.DataFrame(
        {
            "source": src[bad].to_numpy(),
            "source_row": src_row[bad],
            "reason": reason[bad].astype(str),
            "raw": raw_text.to_numpy(),
        }
    ).astype(QUARANTINE_COLUMNS)


def _duplicates_frame(dups: pd.DataFrame, reason: str) -> pd.DataFrame:
    shown = dups.drop(columns=["source", "source_row"]).astype("str")
    raw_text = shown.apply(lambda r: ",".join(f"{k}={v}" for k, v in r.items()), axis=1)
    return pd.DataFrame(
        {
            "source": dups["source"].to_numpy(),
            "source_row": dups["source_row"].to_numpy(),
            "reason": reason,
            "raw": raw_text.to_numpy(),
        }
    ).astype(QUARANTINE_COLUMNS)
