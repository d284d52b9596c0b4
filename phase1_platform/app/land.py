"""Land normalized ticks in the store: the one "land ticks" use case of every entry point
(``phase1 replay --database-url``, Dagster's ``raw_ticks``, the live service).

``land_ticks(store, result, partition)`` lands ``result.ticks`` by the tick identity
(``Store.ticks.land``: ``storage.TickStore``) and quarantines the normalizer's rejects under
``partition`` (one key, or one key per row) followed by the ticks the store refused as
conflicting duplicates (identity stored with other content, DESIGN section 3) under
their own ``<date>|<SYMBOL>``: no row disappears silently.

``quarantine_partitions`` is the one home of "which partition does a rejected row belong
to": ``<trading date>|<SYMBOL>`` when its raw row has a readable timestamp and a valid
symbol, else a fallback key (a replay's ``replay``, a live service's ``ingest|<stream>``),
so the read API and the rejected-ratio check find a day's rejects on every path.

``keep_rejects`` / ``accepted_ticks`` are the two sides of a partition's rejected ratio
(``app.quality.judge_rejected_ratio``) as the pipeline keeps them: rows rejected while
merging the partition's sources (its landed ticks, normalized) join its quarantine, and
the count of canonical ticks it holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..core.calendar import DEFAULT_CALENDAR, trading_dates
from ..core.identity import CONFLICTING_DUPLICATE
from ..core.normalizer import NormalizeResult
from ..core.partition import KEY_SEPARATOR, SYMBOL_PATTERN, Partition
from ..core.schema import QUARANTINE_COLUMNS, empty_quarantine, ts_ns
from ..core.tick_fields import parse_timestamps
from ..storage import QuarantineRepository, Store


@dataclass(frozen=True)
class Landed:
    """What one landing did: ``accepted == new + already + conflicting``."""

    rows_read: int  # rows the normalizer read
    accepted: int  # ticks the normalizer accepted
    new: int  # stored now
    already: int  # stored before with the same content (counted once)
    conflicting: int  # refused by the store: quarantined as conflicting duplicates
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    quarantine_new: int = 0  # quarantine rows stored now (the rest were stored before)

    @property
    def quarantined(self) -> int:
        return sum(self.quarantined_by_reason.values())

    def summary(self) -> str:
        return (f"ticks new={self.new} (already stored={self.already}), "
                f"conflicting duplicates={self.conflicting}, quarantined rows={self.quarantined} "
                f"(new={self.quarantine_new})")


_NO_ROW = np.iinfo("int64").min  # a raw source_row that is not an integer: matches nothing


def partition_keys(symbols: np.ndarray, ts: np.ndarray, calendar: str = DEFAULT_CALENDAR
                   ) -> np.ndarray:
    """``<trading date>|<SYMBOL>`` of each (symbol, UTC ns timestamp) pair (object array)."""
    dates = trading_dates(ts, calendar)
    return dates.astype(object) + KEY_SEPARATOR + np.asarray(symbols, dtype=object)


def tick_partitions(ticks: pd.DataFrame, calendar: str = DEFAULT_CALENDAR) -> np.ndarray:
    """``<trading date>|<SYMBOL>`` of each normalized tick (object array)."""
    return partition_keys(ticks["symbol"].to_numpy(object), ts_ns(ticks["ts"]), calendar)


def raw_partitions(raw: pd.DataFrame, fallback: str, symbols: Iterable[str] | None = None,
                   calendar: str = DEFAULT_CALENDAR) -> np.ndarray:
    """The partition key of each raw row: ``<date>|<SYMBOL>`` when its timestamp reads as
    the normalizer reads it (with a zone, within [1970, 2262)) and its symbol follows
    ``SYMBOL_PATTERN`` (and is one of ``symbols`` when given), else ``fallback``."""
    out = np.full(len(raw), fallback, dtype=object)
    if len(raw) == 0 or not {"timestamp", "symbol"} <= set(raw.columns):
        return out
    stamps = parse_timestamps(raw["timestamp"].reset_index(drop=True))
    ok = ~(stamps.unparseable | stamps.no_zone | stamps.before_1970 | stamps.after_2262)
    symbol = raw["symbol"].astype("str").str.strip()
    ok &= symbol.str.fullmatch(SYMBOL_PATTERN).fillna(False).to_numpy(bool)
    if symbols is not None:
        ok &= symbol.isin(list(symbols)).to_numpy(bool)
    if ok.any():
        dates = trading_dates(stamps.ns[ok], calendar)
        out[ok] = dates.astype(object) + KEY_SEPARATOR + symbol.to_numpy(object)[ok]
    return out


def quarantine_partitions(quarantine: pd.DataFrame, raw: pd.DataFrame | None, fallback: str,
                          symbols: Iterable[str] | None = None,
                          calendar: str = DEFAULT_CALENDAR) -> np.ndarray:
    """The partition key of each quarantine row, from the raw row it came from (matched by
    ``source`` and ``source_row``; ``raw_partitions``). A row with no raw row, or whose
    identity names raw rows of different partitions, keeps ``fallback``."""
    out = np.full(len(quarantine), fallback, dtype=object)
    if len(quarantine) == 0 or raw is None or not {"source", "source_row"} <= set(raw.columns):
        return out
    row = pd.to_numeric(raw["source_row"], errors="coerce").to_numpy("float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(row) & (row == np.floor(row)) & (np.abs(row) < 2**62)
    keys = pd.DataFrame({
        "source": raw["source"].astype("str").to_numpy(object),
        "source_row": np.where(whole, np.nan_to_num(row), _NO_ROW).astype("int64"),
        "partition": raw_partitions(raw, fallback, symbols, calendar),
    }).drop_duplicates()
    keys = keys[~keys.duplicated(["source", "source_row"], keep=False)]  # ambiguous: fallback
    index = pd.MultiIndex.from_arrays([keys["source"], keys["source_row"]])
    wanted = pd.MultiIndex.from_arrays([quarantine["source"].astype("str").to_numpy(object),
                                        quarantine["source_row"].to_numpy("int64")])
    pos = index.get_indexer(wanted)
    found = pos >= 0
    out[found] = keys["partition"].to_numpy(object)[pos[found]]
    return out


def conflicting_rows(ticks: pd.DataFrame) -> pd.DataFrame:
    """Quarantine rows (``QUARANTINE_COLUMNS``) for ticks refused as conflicting
    duplicates; ``raw`` shows the refused content."""
    if len(ticks) == 0:
        return empty_quarantine()
    shown = ticks.drop(columns=["source", "source_row"])
    raw = None
    for name in shown.columns:
        part = name + "=" + shown[name].astype("str").fillna("")
        raw = part if raw is None else raw + "," + part
    return pd.DataFrame({
        "source": ticks["source"].to_numpy(),
        "source_row": ticks["source_row"].to_numpy("int64"),
        "reason": CONFLICTING_DUPLICATE,
        "raw": raw.to_numpy(),
    }).astype(QUARANTINE_COLUMNS)


def land_ticks(store: Store, result: NormalizeResult, quarantine_partition: str | np.ndarray,
               calendar: str = DEFAULT_CALENDAR) -> Landed:
    """Land ``result.ticks``; quarantine ``result.quarantine`` under
    ``quarantine_partition`` (one key, a run's name, or one key per row:
    ``quarantine_partitions``), then the conflicting duplicates under their partitions."""
    landed = store.ticks.land(result.ticks)
    refused = conflicting_rows(landed.conflicting)
    quarantine = QuarantineRepository(store)
    stored = 0
    if len(result.quarantine):
        stored += quarantine.add(result.quarantine, quarantine_partition)
    if len(refused):
        stored += quarantine.add(refused, tick_partitions(landed.conflicting, calendar))
    reasons = dict(result.rejected_by_reason)
    if landed.refused:
        reasons[CONFLICTING_DUPLICATE] = reasons.get(CONFLICTING_DUPLICATE, 0) + landed.refused
    return Landed(rows_read=result.rows_in, accepted=len(result.ticks), new=landed.new,
                  already=landed.already, conflicting=landed.refused,
                  quarantined_by_reason=dict(sorted(reasons.items())), quarantine_new=stored)


def keep_rejects(store: Store, part: Partition, quarantine: pd.DataFrame) -> int:
    """Add rows rejected while normalizing the partition (duplicates across its sources)
    to its quarantine, where ``judge_rejected_ratio`` counts them; returns the rows new."""
    return QuarantineRepository(store).add(quarantine, part.key)


def accepted_ticks(store: Store, part: Partition) -> int:
    """How many canonical ticks the partition holds in the store (without reading them)."""
    return store.ticks.count_canonical(part)


__all__ = ["Landed", "accepted_ticks", "conflicting_rows", "keep_rejects", "land_ticks",
           "partition_keys",
           "quarantine_partitions", "raw_partitions", "tick_partitions"]
