"""Land normalized ticks in the store: the one "land ticks" use case of every entry point
(``phase1 replay --database-url``, Dagster's ``raw_ticks``, the live service).

``land_ticks(store, result, partition)`` lands ``result.ticks`` by the tick identity
(``storage.TickRepository.land``) and quarantines, under ``partition``, the
normalizer's rejects followed by the ticks the store refused as conflicting duplicates
(identity stored with other content, DESIGN section 3): no row disappears silently.

``keep_rejects`` / ``accepted_ticks`` are the two sides of a partition's rejected ratio
(``app.quality.judge_rejected_ratio``) as the pipeline keeps them: rows rejected while
merging the partition's sources (its landed ticks, normalized) join its quarantine, and
the count of canonical ticks it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..core.identity import CONFLICTING_DUPLICATE
from ..core.normalizer import NormalizeResult
from ..core.partition import Partition
from ..core.schema import QUARANTINE_COLUMNS, empty_quarantine
from ..storage import QuarantineRepository, Store, TickRepository


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


def land_ticks(store: Store, result: NormalizeResult, quarantine_partition: str) -> Landed:
    """Land ``result.ticks``; quarantine ``result.quarantine`` and then the conflicting
    duplicates under ``quarantine_partition`` (a partition key, or a run's name)."""
    landed = TickRepository(store).land(result.ticks)
    refused = conflicting_rows(landed.conflicting)
    quarantine = QuarantineRepository(store)
    stored = 0
    for rows in (result.quarantine, refused):
        if len(rows):
            stored += quarantine.add(rows, quarantine_partition)
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
    return TickRepository(store).count_canonical(part)


__all__ = ["Landed", "accepted_ticks", "conflicting_rows", "keep_rejects", "land_ticks"]
