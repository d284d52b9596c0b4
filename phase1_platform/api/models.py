"""Response models of the read API (DESIGN section 10): its OpenAPI schema and, except for
bars (whose JSON is written by ``api.render`` with the canonical digits), its bodies.

``summary`` members carry a check's own summary as it recorded it (``app.parity`` /
``app.quality``); the fields beside it are the parts every client needs, under fixed names.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Status = Literal["passed", "failed", "stale"]
StreamState = Literal["not configured", "connecting", "connected", "disconnected"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    store: str = Field(description="the store's URL, password masked")
    schema_revision: str = Field(description="the store's schema revision")
    stream: StreamState = Field(description="the live bar stream relay")
    stream_url: str | None = Field(None, description="the ingestion broadcast relayed")


class SymbolInfo(BaseModel):
    symbol: str
    first_date: str = Field(description="trading date of its first bar, YYYY-MM-DD")
    last_date: str = Field(description="trading date of its last bar, YYYY-MM-DD")
    timeframes: list[str] = Field(description="timeframes with bars, by duration")


class Symbols(BaseModel):
    symbols: list[SymbolInfo]


class Bar(BaseModel):
    symbol: str
    timeframe: str
    t: str = Field(description="bar open, UTC, the canonical CSV's YYYY-MM-DDTHH:MM:SSZ")
    o: float
    h: float
    low: float = Field(alias="l")
    c: float
    v: float = Field(description="volume, the canonical CSV's exact digits")
    n: int | None = Field(description="trade count (null: unknown)")
    vw: float | None = Field(description="volume-weighted average price (null: no volume)")


class Bars(BaseModel):
    bars: list[Bar] = Field(description="in canonical CSV order: symbol, then t")
    next_page_token: str | None = Field(
        description="pass as page_token with the same query for the next page; null: last")


class QuarantineCounts(BaseModel):
    total: int
    by_reason: dict[str, int]


class Counts(BaseModel):
    ticks: int = Field(description="canonical ticks stored for the partition")
    quarantined: QuarantineCounts
    bars: dict[str, int] = Field(description="bars per timeframe, by duration")


class ExportInfo(BaseModel):
    sha256: str = Field(description="sha256 of what `phase1 export --symbols S --start D "
                        "--end D` writes")
    timeframes: list[str]
    bars: int


class VerdictInfo(BaseModel):
    status: Status = Field(description="stale: the bars changed since it was judged")
    passed: bool
    stale: bool
    evaluated_at: str = Field(description="when it was judged, UTC (RFC 3339)")
    summary: dict = Field(description="the check's own summary, as recorded")


class ParityTimeframe(VerdictInfo):
    compared: bool
    bars_compared: int
    bars_matched: int
    matched_pct: float | None = Field(description="exact-match share in percent")
    unexplained_pct: float | None
    mismatches_by_category: dict[str, int]
    note: str | None = None


class Parity(BaseModel):
    status: Status
    compared: bool = Field(description="whether any timeframe had vendor bars to compare")
    bars_compared: int
    bars_matched: int
    matched_pct: float | None = Field(description="over every compared timeframe, percent")
    mismatches_by_category: dict[str, int]
    timeframes: dict[str, ParityTimeframe]


class QualityTimeframe(VerdictInfo):
    failed_rules: list[str]


class Quality(BaseModel):
    status: Status | None = Field(description="over the timeframes and the rejected ratio")
    timeframes: dict[str, QualityTimeframe]
    rejected_ratio: VerdictInfo | None


class PartitionInfo(BaseModel):
    partition: str = Field(description="the partition key, YYYY-MM-DD|SYMBOL")
    date: str
    symbol: str
    counts: Counts
    rule_set: str | None = Field(description="the rule set the bars were built with")
    export: ExportInfo
    parity: Parity | None = Field(description="null: never judged")
    quality: Quality | None = Field(description="null: never judged")


class QuarantinedRow(BaseModel):
    source: str
    source_row: int
    reason: str
    raw: str = Field(description="the row as received")


class QuarantinePage(BaseModel):
    partition: str
    date: str
    symbol: str
    total: int
    by_reason: dict[str, int]
    rows: list[QuarantinedRow]
    next_page_token: str | None


__all__ = ["Bar", "Bars", "Counts", "ExportInfo", "Health", "Parity", "ParityTimeframe",
           "PartitionInfo", "Quality", "QualityTimeframe", "QuarantineCounts",
           "QuarantinePage", "QuarantinedRow", "Status", "StreamState", "SymbolInfo",
           "Symbols", "VerdictInfo"]
