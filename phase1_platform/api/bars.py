"""``GET /v1/bars``: stored bars of one selection, by pages (JSON) or whole (CSV, Arrow).

JSON pages follow ``next_page_token`` (keyset on the bars key: every bar exactly once);
``format=csv`` / ``Accept: text/csv`` is the whole selection, byte-identical to
``phase1 export`` of it; ``Accept: application/vnd.apache.arrow.stream`` (or
``format=arrow``) the same rows as Arrow IPC. The ``ETag`` is the canonical sha256 of the
rows the response carries (the whole selection for CSV and Arrow, the page for JSON: for
a one-page answer that is the selection's); ``If-None-Match`` with it is a 304.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from ..app.read_bars import BarCursor, BarSelection, canonical_frame, read_all, read_page
from ..app.read_params import DEFAULT_LIMIT, MAX_LIMIT
from ..core.timeframes import TIMEFRAMES
from .negotiation import ARROW, CSV, JSON, choose_media_type, etag, is_current
from .problems import PROBLEM_RESPONSES, InvalidPageTokenError
from .render import bars_arrow, bars_json

router = APIRouter(tags=["bars"])
Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
assert tuple(Timeframe.__args__) == tuple(TIMEFRAMES)  # the one list of timeframes
TOKEN_KIND = "bars"
# the documented shapes (the parsers of app.read_params decide, with one-line messages)
SYMBOL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9.\-]{0,15}"
SYMBOLS_PATTERN = rf"^{SYMBOL_PATTERN}(,{SYMBOL_PATTERN}){{0,99}}$"
INSTANT_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
                   r"(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$")
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

_CONTENT = {"application/json": {}, "text/csv": {"schema": {"type": "string"}},
            ARROW: {"schema": {"type": "string", "format": "binary"}}}


def _headers(tag: str) -> dict[str, str]:
    return {"ETag": tag, "Cache-Control": "no-cache", "Vary": "Accept",
            "X-Content-Type-Options": "nosniff"}


def _cursor(request: Request, token: str | None, selection: BarSelection) -> BarCursor | None:
    if token is None:
        return None
    position = request.app.state.tokens.read(token, TOKEN_KIND, selection.digest())
    try:
        symbol, ts = position
        cursor = BarCursor(str(symbol), int(ts))
    except (TypeError, ValueError):
        cursor = None
    if cursor is None or not selection.admits(cursor):
        raise InvalidPageTokenError("page_token", "page_token does not point into this "
                                    "selection: leave it out to start over")
    return cursor


@router.get(
    "/v1/bars", summary="Bars of symbols and one timeframe in [start, end)",
    response_description="a page of bars (JSON), or the whole selection (CSV, Arrow)",
    responses={200: {"content": _CONTENT, "headers": {"ETag": {
        "description": "canonical sha256 of the rows carried", "schema": {"type": "string"}}}},
        304: {"description": "If-None-Match names the current ETag"}, **PROBLEM_RESPONSES,
        406: PROBLEM_RESPONSES[422] | {"description": "Accept admits no representation"}},
    response_model=None)
def get_bars(
    request: Request,
    symbols: Annotated[str, Query(
        description="comma-separated symbols, e.g. SPY,AAPL (at most 100)",
        examples=["SPY,AAPL"], json_schema_extra={"pattern": SYMBOLS_PATTERN})],
    timeframe: Annotated[Timeframe, Query(description="bar timeframe")] = "1m",
    start: Annotated[str | None, Query(
        description="inclusive: RFC 3339 (2013-10-07T13:30:00Z) or YYYY-MM-DD (the start "
        "of that trading date's partition)", examples=["2013-10-07"],
        json_schema_extra={"pattern": INSTANT_PATTERN})] = None,
    end: Annotated[str | None, Query(description="exclusive, same forms as start",
                                     examples=["2013-10-08"],
                                     json_schema_extra={"pattern": INSTANT_PATTERN})] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="bars per JSON page (CSV "
                                "and Arrow ignore it)")] = DEFAULT_LIMIT,
    page_token: Annotated[str | None, Query(
        max_length=1024, description="next_page_token of the previous page")] = None,
    format: Annotated[Literal["json", "csv", "arrow"] | None, Query(
        description="representation; default from Accept, else json")] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
    if_none_match: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    settings = request.app.state.settings
    selection = BarSelection.parse(symbols, timeframe, start, end, settings.calendar)
    media = choose_media_type(format, accept)
    cursor = _cursor(request, page_token, selection)
    store = request.app.state.store.get()
    if media == JSON:
        page = read_page(store, selection, limit, cursor)
        tag = etag(page.sha256)
        if is_current(if_none_match, tag):
            return Response(status_code=304, headers=_headers(tag))
        token = None
        if page.next_cursor is not None:
            token = request.app.state.tokens.issue(
                TOKEN_KIND, selection.digest(), [page.next_cursor.symbol, page.next_cursor.ts])
        return Response(bars_json(page.text, token), media_type=JSON,
                        headers=_headers(tag))
    whole = read_all(store, selection)
    tag = etag(whole.sha256)
    if is_current(if_none_match, tag):
        return Response(status_code=304, headers=_headers(tag))
    if media == CSV:
        return Response(whole.data, media_type="text/csv; charset=utf-8",
                        headers=_headers(tag))
    return Response(bars_arrow(canonical_frame(whole), whole.sha256), media_type=ARROW,
                    headers=_headers(tag))


__all__ = ["router"]
