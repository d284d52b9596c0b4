"""TickNormalizer: raw rows -> canonical ticks, bad rows quarantined with a reason.

DESIGN section 3 (ordering, dedup) and section 7 (bad input). All vectorized.

Input: a frame with at least ``timestamp, symbol, price, size`` and optionally
``exchange, conditions, trade_id, sequence, source, source_row``. Values may be text
(as read from a CSV) or already typed (connectors, LEAN reader): timestamps as
tz-aware datetimes or int64 UTC nanoseconds.

Output ticks are in canonical order: symbol, then (timestamp, sequence, source,
source_row). Sorting on persisted keys (not on the order files were given) keeps the
order reproducible from the store. A row with a ``trade_id`` already seen for its
symbol is one trade: the first in canonical order is kept, the others are quarantined
as duplicates (counted, never silently dropped). Rows without ``trade_id`` are not
deduplicated by content: identical prints in one millisecond are distinct trades. The
identity of such a row includes its source and position (DESIGN section 3), so the very
same row read twice (same source, same ``source_row``, same content, e.g. one file
replayed twice) is one trade: the copy is quarantined as a duplicate row.

A reader may mark a line it could not split into the right fields with a non-empty
``malformed`` column holding the line as written; such a row is quarantined as a
malformed line with that text as its raw form.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .schema import (
    MAX_TICK_NOTIONAL,
    MAX_TICK_SIZE,
    QUARANTINE_COLUMNS,
    TICK_COLUMNS,
    TS_DTYPE,
    empty_quarantine,
    ts_ns,
)

REQUIRED_COLUMNS = ("timestamp", "symbol", "price", "size")
OPTIONAL_COLUMNS = ("exchange", "conditions", "trade_id", "sequence")
MALFORMED_COLUMN = "malformed"  # set by readers on lines with the wrong number of fields

SYMBOL_PATTERN = r"^[A-Z0-9.\-]{1,16}$"
# a zone (Z or an offset) right after a time of day: a bare date such as "2013-10-07"
# must not pass because it ends in what looks like an offset ("-07")
# (no \s or \d: they send pandas' pyarrow strings to Python's slower re)
_ZONE_PATTERN = (
    r"[Tt ][0-9]{2}(?::?[0-9]{2}(?::?[0-9]{2}(?:[.,][0-9]+)?)?)? *"
    r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)$"
)


class Reason:
    """Quarantine reasons (DESIGN section 7); a row gets the first that applies."""

    MALFORMED_LINE = "malformed line"
    TIMESTAMP_UNPARSEABLE = "unparseable timestamp"
    TIMESTAMP_NO_ZONE = "timestamp without zone"
    TIMESTAMP_BEFORE_1970 = "timestamp before 1970"
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


class MissingColumnsError(ValueError):
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

        raw_lines = None  # the line as written, for rows a reader marked malformed
        raw_cols = raw
        if MALFORMED_COLUMN in raw.columns:
            m = raw[MALFORMED_COLUMN]
            malformed = (m.notna() & m.astype("str").str.len().gt(0)).to_numpy(bool)
            flag(malformed, Reason.MALFORMED_LINE)
            raw_lines = np.where(malformed, m.astype("str").to_numpy(object), None)
            raw_cols = raw.drop(columns=[MALFORMED_COLUMN])
        ts = _parse_timestamps(raw["timestamp"], flag)
        # bars are epoch-aligned int64 ns with -1 as "no bar": a tick before the epoch
        # would be lost silently there, so it is quarantined here
        flag(ts < 0, Reason.TIMESTAMP_BEFORE_1970)
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

        sequence = _parse_sequence(raw.get("sequence"), n, flag)
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

        dup_frames = []
        same_row = _same_row_as_previous(ticks)
        if same_row.any():
            dup_frames.append(_duplicates_frame(ticks[same_row], Reason.DUPLICATE_ROW))
            ticks = ticks[~same_row]
        dup = ticks["trade_id"].ne("").to_numpy(bool) & ticks.duplicated(
            subset=["symbol", "trade_id"], keep="first"
        ).to_numpy(bool)
        if dup.any():
            dup_frames.append(_duplicates_frame(ticks[dup], Reason.DUPLICATE_TRADE_ID))
            ticks = ticks[~dup]
        if dup_frames:
            quarantine = pd.concat([quarantine, *dup_frames], ignore_index=True)
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


def _parse_timestamps(col: pd.Series, flag) -> np.ndarray:
    """int64 UTC ns; flags unparseable rows and rows without a time zone."""
    n = len(col)
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        out = col.dt.tz_convert("UTC").astype(TS_DTYPE)
        bad = out.isna().to_numpy(bool)
        flag(bad, Reason.TIMESTAMP_UNPARSEABLE)
        return np.where(bad, 0, out.to_numpy("datetime64[ns]").view("int64"))
    if pd.api.types.is_datetime64_dtype(col.dtype):
        flag(np.ones(n, dtype=bool), Reason.TIMESTAMP_NO_ZONE)
        return np.zeros(n, dtype="int64")
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.to_numpy("int64")
    text = col.astype("str").str.strip()
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    unparseable = parsed.isna().to_numpy(bool)
    flag(unparseable, Reason.TIMESTAMP_UNPARSEABLE)
    has_zone = text.str.contains(_ZONE_PATTERN, regex=True).fillna(False).to_numpy(bool)
    flag(~has_zone, Reason.TIMESTAMP_NO_ZONE)
    values = parsed.astype(TS_DTYPE).to_numpy("datetime64[ns]").view("int64")
    return np.where(unparseable, 0, values)


def _parse_sequence(col: pd.Series | None, n: int, flag) -> np.ndarray:
    if col is None:
        return np.full(n, -1, dtype="int64")
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.to_numpy("int64")
    text = col.astype("str").str.strip()
    empty = text.isna() | text.isin(["", "nan", "None", "<NA>"])
    num = pd.to_numeric(text.mask(empty), errors="coerce")
    bad = (~empty & (num.isna() | (num != np.floor(num)))).to_numpy(bool)
    flag(bad, Reason.SEQUENCE_BAD)
    return num.fillna(-1).to_numpy("float64").astype("int64")


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


def _same_row_as_previous(ticks: pd.DataFrame) -> np.ndarray:
    """Rows (in canonical order) identical to the previous one, source and position included.

    Canonical order puts such copies next to each other; the cheap integer keys are
    compared first, the text columns only for the few candidates.
    """
    n = len(ticks)
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    col = ticks["ts"]
    ts = col.to_numpy("int64") if pd.api.types.is_integer_dtype(col.dtype) else ts_ns(col)
    src_row = ticks["source_row"].to_numpy("int64")
    seq = ticks["sequence"].to_numpy("int64")
    cand = np.flatnonzero(
        (ts[1:] == ts[:-1]) & (src_row[1:] == src_row[:-1]) & (seq[1:] == seq[:-1])
    ) + 1
    if len(cand) == 0:
        return out
    same = np.ones(len(cand), dtype=bool)
    for name in ("symbol", "source", "price", "size", "exchange", "conditions", "trade_id"):
        values = ticks[name].to_numpy()
        same &= values[cand] == values[cand - 1]
    out[cand[same]] = True
    return out


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
