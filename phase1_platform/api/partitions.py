"""``GET /v1/partitions/{date}/{symbol}`` and ``GET /v1/quarantine``: one partition's counts,
export hash and verdicts, and its quarantined rows (``app.read_partitions``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ..app.read_params import DEFAULT_LIMIT, MAX_LIMIT
from ..app.read_partitions import (
    PartitionSummary,
    Verdict,
    overall_status,
    parse_partition,
    partition_summary,
    quarantine_page,
)
from ..storage.reads import QuarantineCursor
from . import models as m
from .bars import DATE_PATTERN, SYMBOL_PATTERN
from .problems import PROBLEM_RESPONSES, InvalidPageTokenError

router = APIRouter(tags=["partitions"])
TOKEN_KIND = "quarantine"
_ERRORS = {c: PROBLEM_RESPONSES[c] for c in (404, 422, 503)}
_PAGED_ERRORS = {c: PROBLEM_RESPONSES[c] for c in (400, 404, 422, 503)}


def rfc3339(ns: int) -> str:
    """UTC RFC 3339 text of a wall-clock time in ns (microseconds kept)."""
    when = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _verdict_fields(v: Verdict) -> dict:
    return {"status": v.status, "passed": v.passed, "stale": v.stale,
            "evaluated_at": rfc3339(v.evaluated_ns), "summary": v.summary}


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _pct(matched: int, compared: int) -> float | None:
    return round(100.0 * matched / compared, 4) if compared else None


def parity_info(verdicts: list[Verdict]) -> m.Parity | None:
    """The parity verdicts per timeframe and over all of them (None: never judged)."""
    if not verdicts:
        return None
    per_tf: dict[str, m.ParityTimeframe] = {}
    categories: dict[str, int] = {}
    for v in verdicts:
        s = v.summary
        cats = {str(k): _int(n) for k, n in (s.get("mismatched_by_category") or {}).items()}
        for k, n in cats.items():
            categories[k] = categories.get(k, 0) + n
        per_tf[v.timeframe] = m.ParityTimeframe(
            **_verdict_fields(v), compared=bool(s.get("compared", False)),
            bars_compared=_int(s.get("bars_compared")), bars_matched=_int(s.get("bars_matched")),
            matched_pct=s.get("match_pct"), unexplained_pct=s.get("unexplained_pct"),
            mismatches_by_category=cats, note=s.get("note"))
    compared = sum(p.bars_compared for p in per_tf.values())
    matched = sum(p.bars_matched for p in per_tf.values())
    return m.Parity(status=overall_status(verdicts),
                    compared=any(p.compared for p in per_tf.values()),
                    bars_compared=compared, bars_matched=matched,
                    matched_pct=_pct(matched, compared),
                    mismatches_by_category=dict(sorted(categories.items())), timeframes=per_tf)


def quality_info(verdicts: list[Verdict], rejected: Verdict | None) -> m.Quality | None:
    """The quality verdicts per timeframe and the rejected ratio (None: never judged)."""
    if not verdicts and rejected is None:
        return None
    per_tf = {v.timeframe: m.QualityTimeframe(
        **_verdict_fields(v), failed_rules=[str(r) for r in v.summary.get("failed_rules") or []])
        for v in verdicts}
    every = verdicts + ([rejected] if rejected is not None else [])
    return m.Quality(status=overall_status(every), timeframes=per_tf,
                     rejected_ratio=None if rejected is None
                     else m.VerdictInfo(**_verdict_fields(rejected)))


def partition_info(s: PartitionSummary) -> m.PartitionInfo:
    part = s.partition
    return m.PartitionInfo(
        partition=part.key, date=part.date, symbol=part.symbol,
        counts=m.Counts(ticks=s.ticks, bars=s.bars, quarantined=m.QuarantineCounts(
            total=s.quarantined, by_reason=s.quarantined_by_reason)),
        rule_set=s.rule_set,
        export=m.ExportInfo(sha256=s.export_sha256, timeframes=list(s.export_timeframes),
                            bars=s.export_bars),
        parity=parity_info(s.parity), quality=quality_info(s.quality, s.rejected_ratio))


@router.get("/v1/partitions/{date}/{symbol}", response_model=m.PartitionInfo,
            summary="One partition: counts, rule set, export sha256, parity and quality",
            responses=_ERRORS)
def get_partition(
    request: Request,
    date: Annotated[str, Path(description="trading date YYYY-MM-DD", examples=["2013-10-07"],
                              json_schema_extra={"pattern": DATE_PATTERN})],
    symbol: Annotated[str, Path(description="symbol, e.g. SPY", examples=["SPY"],
                                json_schema_extra={"pattern": f"^{SYMBOL_PATTERN}$"})],
) -> m.PartitionInfo:
    """What the store holds for the partition: ticks, quarantined rows per reason, bars per
    timeframe, the rule set, the sha256 of its ``phase1 export``, and the latest parity and
    quality verdicts the pipeline recorded (``stale`` when the bars changed since; null
    when never judged). A partition with nothing stored is a 404 problem."""
    store = request.app.state.store.get()
    return partition_info(partition_summary(store, date, symbol,
                                            request.app.state.settings.calendar))


def _quarantine_cursor(request: Request, token: str | None, key: str) -> QuarantineCursor | None:
    if token is None:
        return None
    position = request.app.state.tokens.read(token, TOKEN_KIND, key)
    try:
        source, row, reason = position
        return QuarantineCursor(str(source), int(row), str(reason))
    except (TypeError, ValueError):
        raise InvalidPageTokenError("page_token", "page_token does not point into this "
                                    "partition's quarantine: leave it out") from None


@router.get("/v1/quarantine", response_model=m.QuarantinePage, responses=_PAGED_ERRORS,
            summary="Quarantined rows of a partition, with their reasons")
def get_quarantine(
    request: Request,
    date: Annotated[str, Query(description="trading date YYYY-MM-DD", examples=["2013-10-07"],
                               json_schema_extra={"pattern": DATE_PATTERN})],
    symbol: Annotated[str, Query(description="symbol, e.g. AAPL", examples=["AAPL"],
                                 json_schema_extra={"pattern": f"^{SYMBOL_PATTERN}$"})],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")
                     ] = DEFAULT_LIMIT,
    page_token: Annotated[str | None, Query(
        max_length=1024, description="next_page_token of the previous page")] = None,
) -> m.QuarantinePage:
    """The rows quarantined under the partition ``date|symbol`` (ordered by source, row
    and reason), the count per reason, and a token for the next page."""
    settings = request.app.state.settings
    key = parse_partition(date, symbol, settings.calendar).key
    cursor = _quarantine_cursor(request, page_token, key)
    page = quarantine_page(request.app.state.store.get(), date, symbol, limit, cursor,
                           settings.calendar)
    token = None
    if page.next_cursor is not None:
        c = page.next_cursor
        token = request.app.state.tokens.issue(TOKEN_KIND, key,
                                               [c.source, c.source_row, c.reason])
    rows = [m.QuarantinedRow(source=src, source_row=int(n), reason=why, raw=raw)
            for src, n, why, raw in zip(page.rows["source"].tolist(),
                                        page.rows["source_row"].tolist(),
                                        page.rows["reason"].tolist(),
                                        page.rows["raw"].tolist(), strict=True)]
    return m.QuarantinePage(partition=key, date=page.partition.date,
                            symbol=page.partition.symbol, total=page.total,
                            by_reason=page.by_reason, rows=rows, next_page_token=token)


__all__ = ["parity_info", "partition_info", "quality_info", "router"]
