"""Check verdicts kept in the store of record: what the pipeline judged, for every reader.

The use cases behind the Dagster checks (``app.parity.judge_and_record_partition``,
``app.quality``) record each partition's verdict with ``record_check`` as they judge it, and
the check then hands the same verdict to Dagster; the read API and the dashboard read them
with ``partition_checks``. A verdict on bars carries the canonical sha256 of the
bars it judged, so a reader is told when the bars changed since (``CheckView.stale``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..core.export import CanonicalExporter
from ..core.partition import Partition
from ..storage import BarRepository, CheckResultRepository, Store, StoredCheck

PARITY, QUALITY, REJECTED_RATIO = "parity", "quality", "rejected_ratio"
LIVE_EQUALS_BATCH = "live_equals_batch"  # the live path's stored bars = the batch rebuild


def bars_sha256(store: Store, part: Partition, timeframe: str) -> str:
    """Canonical sha256 of the partition's stored bars of ``timeframe`` (the bytes
    ``phase1 export`` writes for that selection)."""
    bars = BarRepository(store).read_partition(part, [timeframe])
    return CanonicalExporter(bars).compute_hash()


def record_check(store: Store, part: Partition, check_name: str, passed: bool,
                 summary: dict, timeframe: str = "", bars=None,
                 digest: str | None = None) -> StoredCheck:
    """Keep ``part``'s latest verdict of ``check_name`` (per ``timeframe`` for checks of
    bars, which also records the sha256 of the bars judged: ``digest`` when the caller
    knows it, else of ``bars``, the stored bars of that timeframe when the caller has
    them, else read)."""
    if not timeframe:
        digest = ""
    elif digest is None:
        digest = CanonicalExporter(bars).compute_hash() if bars is not None \
            else bars_sha256(store, part, timeframe)
    return CheckResultRepository(store).record(part.key, check_name, timeframe, passed,
                                               summary, digest)


@dataclass(frozen=True)
class CheckView:
    check: StoredCheck
    stale: bool  # the bars changed since this verdict (always False for checks of ticks)


def partition_checks(store: Store, part: Partition,
                     known_sha256: Mapping[str, str] | None = None) -> list[CheckView]:
    """``part``'s latest verdicts, each marked stale when its bars changed since.
    ``known_sha256``: the current ``bars_sha256`` of timeframes the caller already read
    (the others are read here)."""
    views = []
    current: dict[str, str] = dict(known_sha256 or {})
    for check in CheckResultRepository(store).read(part.key):
        stale = False
        if check.timeframe:
            if check.timeframe not in current:
                current[check.timeframe] = bars_sha256(store, part, check.timeframe)
            stale = current[check.timeframe] != check.bars_sha256
        views.append(CheckView(check, stale))
    return views


__all__ = ["LIVE_EQUALS_BATCH", "PARITY", "QUALITY", "REJECTED_RATIO", "CheckView", "bars_sha256",
           "partition_checks", "record_check"]
