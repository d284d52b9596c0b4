"""``GET /v1/health`` and ``GET /v1/symbols``: is the API up, and what does the store hold.

The symbol list is cached under the store's change token like bars (``X-Cache``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..app.read_symbols import stored_symbols
from ..storage import StoreError
from .models import Health, SymbolInfo, Symbols
from .problems import PROBLEM_RESPONSES
from .response_cache import BYPASS, HIT, MISS

SYMBOLS_KEY = ("symbols",)
SYMBOLS_ENTRY_BYTES = 4096  # a generous guess: the answer is one small object per symbol

router = APIRouter(tags=["catalog"])


@router.get("/v1/health", summary="Health: the store and the live stream relay",
            response_model=Health, responses={503: PROBLEM_RESPONSES[503]})
def health(request: Request) -> Health:
    """``ok`` when the store answers (its masked URL and schema revision); a 503 problem
    when it does not. ``stream`` is the relay's state (``not configured`` without
    ``--stream-url``)."""
    handle = request.app.state.store
    relay = request.app.state.relay
    revision = handle.get().current_revision()
    if revision is None:
        raise StoreError(f"database {handle.masked_url} has no phase1 tables (no schema "
                         "revision): it was replaced or emptied; run `phase1 db upgrade` on it, "
                         "or point --database-url / DATABASE_URL at the store")
    return Health(store=handle.masked_url, schema_revision=revision, stream=relay.state,
                  stream_url=relay.masked_url)


@router.get("/v1/symbols", summary="Symbols with stored bars",
            response_model=Symbols, responses={503: PROBLEM_RESPONSES[503]})
def symbols(request: Request, response: Response) -> Symbols:
    """Every symbol with bars in the store: its first and last trading date and the
    timeframes it has bars of."""
    store = request.app.state.store.get()
    cache = request.app.state.response_cache
    token = store.change_token() if cache.enabled else None  # before the rows
    answer = cache.get(SYMBOLS_KEY, token)
    response.headers["X-Cache"] = HIT if answer is not None else \
        MISS if token is not None else BYPASS
    if answer is None:
        spans = stored_symbols(store, request.app.state.settings.calendar)
        answer = Symbols(symbols=[SymbolInfo(symbol=s.symbol, first_date=s.first_date,
                                             last_date=s.last_date,
                                             timeframes=list(s.timeframes))
                                  for s in spans])
        cache.put(SYMBOLS_KEY, token, answer,
                  SYMBOLS_ENTRY_BYTES + 256 * len(answer.symbols))
    return answer


__all__ = ["router"]
