"""``GET /v1/bars``: stored bars of one selection, by pages (JSON) or whole (CSV, Arrow).

JSON pages follow ``next_page_token`` (keyset on the bars key: every bar exactly once);
``format=csv`` / ``Accept: text/csv`` is the whole selection, byte-identical to
``phase1 export`` of it; ``Accept: application/vnd.apache.arrow.stream`` (or
``format=arrow``) the same rows as Arrow IPC. The ``ETag`` is the canonical sha256 of the
rows the response carries (the whole selection for CSV and Arrow, the page for JSON: for
a one-page answer that is the selection's); ``If-None-Match`` with it is a 304.

Rendered answers are cached (``api.response_cache``) under the store's change token, read
before the rows: a repeated query is served without reading or rendering while nothing
was written to the store (``X-Cache: hit``), and never after a write.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from ..app.read_bars import BarCursor, BarSelection, canonical_frame, read_all, read_page
from ..app.read_params import DEFAULT_LIMIT, MAX_LIMIT
from ..core.timeframes import TIMEFRAMES
from ..storage import Store
from .negotiation import ARROW, CSV, JSON, choose_media_type, etag
from .problems import PROBLEM_RESPONSES, InvalidPageTokenError
from .render import bars_arrow, bars_json
from .response_cache import BYPASS, HIT, MISS, CachedBody, respond

router = APIRouter(tags=["bars"])
# the documented shape (app.read_params.parse_timeframe decides, core.timeframes names them)
TIMEFRAME_PATTERN = "^(" + "|".join(TIMEFRAMES) + r"|[tvd][1-9][0-9]{0,17})$"
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
        symbol, ts, *nth = position  # tokens issued before ``nth`` existed hold two
        cursor = BarCursor(str(symbol), int(ts), int(nth[0]) if nth else 0)
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
    timeframe: Annotated[str, Query(
        description="bar timeframe: 1m, 5m, 15m, 30m, 1h, 4h, 1d, or information-driven "
        "t<N> (every N trades), v<V> (every V shares), d<X> (every X of price x size) per "
        "trading session, e.g. t1000", examples=["1m", "t1000"],
        json_schema_extra={"pattern": TIMEFRAME_PATTERN})] = "1m",
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
    cache = request.app.state.response_cache
    token = store.change_token() if cache.enabled else None  # before the rows: see doc
    key = ("bars", selection, media, limit if media == JSON else None, cursor)
    cached = cache.get(key, token)
    state = HIT if cached is not None else MISS if token is not None else BYPASS
    if cached is None:
        cached = _render(request, store, selection, media, limit, cursor)
        cache.put(key, token, cached, cached.size)
    return respond(request, cache, key, token, cached, state, _headers(cached.etag),
                   if_none_match)


def _render(request: Request, store: Store, selection: BarSelection, media: str, limit: int,
            cursor: BarCursor | None) -> CachedBody:
    """Read and render the answer (the body of a 200, whatever If-None-Match says)."""
    if media == JSON:
        page = read_page(store, selection, limit, cursor)
        token = None
        if page.next_cursor is not None:
            token = request.app.state.tokens.issue(
                TOKEN_KIND, selection.digest(),
                [page.next_cursor.symbol, page.next_cursor.ts, page.next_cursor.nth])
        return CachedBody(bars_json(page.text, token), JSON, etag(page.sha256))
    whole = read_all(store, selection)
    if media == CSV:
        return CachedBody(whole.data, "text/csv; charset=utf-8", etag(whole.sha256))
    return CachedBody(bars_arrow(canonical_frame(whole), whole.sha256), ARROW,
                      etag(whole.sha256))


__all__ = ["router"]
