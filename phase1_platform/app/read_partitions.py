"""Read what the store holds for one partition: its counts, export hash and verdicts, and
its quarantined rows.

- ``partition_summary(store, date, symbol)``: ticks stored, quarantined rows per reason,
  bars per timeframe, the rule set the bars were built with, the sha256 of the bytes
  ``phase1 export --symbols S --start D --end D`` writes (its default timeframes), and the
  latest verdicts the Dagster checks recorded (``app.checks.partition_checks``): parity and
  quality per timeframe and the rejected ratio, each ``passed``, ``failed`` or ``stale``
  (the bars changed since it was judged); a check never judged is absent. A partition the
  store holds nothing for is a ``NotFoundError``.
- ``quarantine_page(store, date, symbol, limit, after)``: the partition's quarantined rows
  with their reasons, by keyset pages.

Each call reads in one read-only transaction (``Store.read_snapshot``): one state of the
store, never blocking a writer.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..core.calendar import DEFAULT_CALENDAR
from ..core.export import CanonicalExporter
from ..core.partition import InvalidSymbolError, Partition, validate_symbol
from ..core.schema import empty_quarantine
from ..core.timeframes import DEFAULT_TIMEFRAMES, TIMEFRAMES
from ..storage import BarRepository, Store
from ..storage.reads import BarReads, QuarantineCursor, QuarantineReads
from .checks import PARITY, QUALITY, REJECTED_RATIO, CheckView, partition_checks
from .export import Exported, export_bars
from .read_params import InvalidParameterError, NotFoundError, parse_trading_date

PASSED, FAILED, STALE = "passed", "failed", "stale"


def parse_partition(date: str, symbol: str, calendar: str = DEFAULT_CALENDAR) -> Partition:
    """The partition of path or query parameters ``date`` and ``symbol`` (errors name the
    parameter; a date that is no trading session is a ``NotFoundError``)."""
    sym = str(symbol).strip().upper()
    try:
        validate_symbol(sym)
    except InvalidSymbolError as exc:
        raise InvalidParameterError("symbol", f"symbol: {exc}") from None
    return Partition(parse_trading_date(date, "date", calendar), sym, calendar)


@dataclass(frozen=True)
class Verdict:
    """One recorded check verdict as a reader sees it."""

    check_name: str
    timeframe: str  # "" for checks of the ticks
    passed: bool
    stale: bool
    evaluated_ns: int
    summary: dict

    @property
    def status(self) -> str:
        return STALE if self.stale else PASSED if self.passed else FAILED

    @classmethod
    def of(cls, view: CheckView) -> Verdict:
        c = view.check
        return cls(c.check_name, c.timeframe, c.passed, view.stale, c.evaluated_ns,
                   dict(c.summary))


def overall_status(verdicts: list[Verdict]) -> str | None:
    """``failed`` if any failed, else ``stale`` if any is stale, else ``passed``; None when
    there is none."""
    if not verdicts:
        return None
    statuses = {v.status for v in verdicts}
    return FAILED if FAILED in statuses else STALE if STALE in statuses else PASSED


@dataclass(frozen=True)
class PartitionSummary:
    partition: Partition
    ticks: int
    quarantined_by_reason: dict[str, int]
    bars: dict[str, int]  # per timeframe, duration order
    rule_set: str | None  # None: no bars; several are joined by ","
    export_sha256: str
    export_timeframes: tuple[str, ...]
    export_bars: int
    parity: list[Verdict]  # per timeframe, duration order
    quality: list[Verdict]  # per timeframe, duration order
    rejected_ratio: Verdict | None

    @property
    def quarantined(self) -> int:
        return sum(self.quarantined_by_reason.values())


def _by_duration(verdicts: list[Verdict]) -> list[Verdict]:
    rank = {tf: i for i, tf in enumerate(TIMEFRAMES)}
    return sorted(verdicts, key=lambda v: rank.get(v.timeframe, len(rank)))


def timeframe_sha256(exported: Exported) -> dict[str, str]:
    """``app.checks.bars_sha256`` of each exported timeframe, from the bars already read."""
    frame = exported.frame
    return {tf: CanonicalExporter(frame[frame["timeframe"] == tf]).compute_hash()
            for tf in exported.counts}


def partition_summary(store: Store, date: str, symbol: str,
                      calendar: str = DEFAULT_CALENDAR) -> PartitionSummary:
    """What the store holds for the partition ``date|symbol`` (see the module doc)."""
    part = parse_partition(date, symbol, calendar)
    with store.read_snapshot():
        ticks = store.ticks.count_canonical(part)
        quarantined = QuarantineReads(store).counts_by_reason(part.key)
        bars = BarReads(store).counts(part.symbol, part.start_ns, part.end_ns)
        exported = export_bars(store, [part.symbol], DEFAULT_TIMEFRAMES, part.date, part.date,
                               calendar)
        verdicts = [Verdict.of(v) for v in
                    partition_checks(store, part, timeframe_sha256(exported))]
        if not (ticks or quarantined or bars or verdicts):
            raise NotFoundError(None, f"no partition {part.key}: the store holds no ticks, "
                                "bars, quarantined rows or verdicts for it; see GET /v1/symbols "
                                "for what is stored")
        rule_sets = sorted(BarRepository(store).rule_sets(part)) if bars else []
    return PartitionSummary(
        part, ticks, quarantined, bars, ",".join(rule_sets) or None, exported.sha256,
        tuple(DEFAULT_TIMEFRAMES), int(sum(exported.counts.values())),
        _by_duration([v for v in verdicts if v.check_name == PARITY]),
        _by_duration([v for v in verdicts if v.check_name == QUALITY]),
        next((v for v in verdicts if v.check_name == REJECTED_RATIO), None))


@dataclass(frozen=True)
class QuarantinePage:
    partition: Partition
    by_reason: dict[str, int]
    rows: pd.DataFrame  # core.schema.QUARANTINE_COLUMNS
    next_cursor: QuarantineCursor | None

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


def quarantine_page(store: Store, date: str, symbol: str, limit: int,
                    after: QuarantineCursor | None = None,
                    calendar: str = DEFAULT_CALENDAR) -> QuarantinePage:
    """Up to ``limit`` quarantined rows of the partition after ``after``, with the
    partition's count per reason."""
    part = parse_partition(date, symbol, calendar)
    with store.read_snapshot():
        reads = QuarantineReads(store)
        by_reason = reads.counts_by_reason(part.key)
        rows = reads.page(part.key, limit + 1, after) if by_reason else empty_quarantine()
    following = None
    if len(rows) > limit:
        rows = rows.iloc[:limit].reset_index(drop=True)
        last = rows.iloc[-1]
        following = QuarantineCursor(str(last["source"]), int(last["source_row"]),
                                     str(last["reason"]))
    return QuarantinePage(part, by_reason, rows, following)


__all__ = ["FAILED", "PASSED", "STALE", "PartitionSummary", "QuarantinePage", "Verdict",
           "overall_status", "parse_partition", "partition_summary", "quarantine_page"]
