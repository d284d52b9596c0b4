"""The read API's ASGI app (DESIGN section 10): ``create_api_app(settings)``.

Routes: ``/v1/health``, ``/v1/symbols``, ``/v1/bars``, ``/v1/partitions/{date}/{symbol}``,
``/v1/quarantine``, ``WS /v1/stream/bars``, ``/openapi.json``, ``/docs`` (a local page:
no CDN). Every error is problem+json (``api.problems``). Middleware, outermost first: the
JSON access log, gzip (``Accept-Encoding: gzip``), CORS for the dashboard's origins
(``ETag`` exposed). Reads are sync endpoints (run in the worker threads), each in one
read-only store transaction; the live stream relay runs in the event loop. Rendered bars
and the symbol list are cached while the store is unchanged (``api.response_cache``).

The store is opened at startup when it answers, else on the first request after it does
(``api.store_handle``); the relay connects to ``settings.stream_url`` and keeps
reconnecting (``api.relay``). Both are closed at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import bars, catalog, openapi, partitions, problems, stream
from .access_log import AccessLog
from .docs_page import docs_response
from .relay import StreamRelay
from .response_cache import GZIP_LEVEL, GZIP_MINIMUM_SIZE, ResponseCache
from .settings import ApiSettings
from .store_handle import StoreHandle
from .tokens import PageTokens

log = logging.getLogger("phase1.api")
VERSION = "1"
DESCRIPTION = ("Read API of the phase1 market-data platform: stored bars (JSON with the "
               "canonical CSV's digits, the canonical CSV itself, Arrow IPC), what each "
               "partition holds and how it was judged, quarantined rows, and the live bar "
               "stream. Times are UTC; a date YYYY-MM-DD means the start of that trading "
               "date's partition (midnight, exchange time).")
STREAM_DOC = ("Live bars: ?symbols=A,B (none: every symbol). First frame {type: subscribed, "
              "schema, symbols, stream}; then the ingestion broadcast's messages unchanged "
              "({type: bar, symbol, timeframe, timestamp, open, high, low, close, volume, "
              "trade_count, vwap, revision, restated}; {type: dropped, count}) and {type: "
              "status, stream} when the upstream connection comes or goes.")


def _lifespan(handle: StoreHandle, relay: StreamRelay):
    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        reason = await asyncio.to_thread(handle.try_open)
        if reason is not None:
            log.warning("store not available yet (requests answer 503 until it is): %s",
                        reason)
        await relay.start()
        try:
            yield
        finally:
            await relay.stop()
            handle.close()

    return lifespan


def create_api_app(settings: ApiSettings) -> FastAPI:
    """The read API over ``settings.database_url`` (see the module doc)."""
    handle = StoreHandle(settings.database_url)
    relay = StreamRelay(settings.stream_url)
    middleware = [
        Middleware(AccessLog, server="api"),
        # level 3: a day of 1m bars in 0.7 ms (level 9, Starlette's default: 5.6 ms for
        # a tenth less bytes), the largest cost of a request otherwise
        Middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_SIZE,
                   compresslevel=GZIP_LEVEL),
        Middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                   allow_methods=["GET"], allow_headers=["Accept", "If-None-Match"],
                   expose_headers=["ETag", "X-Cache"], max_age=600),
    ]
    app = FastAPI(title="phase1 read API", version=VERSION, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  lifespan=_lifespan(handle, relay), middleware=middleware)
    app.state.settings = settings
    app.state.store = handle
    app.state.relay = relay
    app.state.tokens = PageTokens(settings.token_key)
    app.state.response_cache = ResponseCache(settings.cache_bytes)
    for module in (catalog, bars, partitions, stream):
        app.include_router(module.router)
    problems.install(app)
    openapi.install(app)

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return docs_response(app.openapi(), [("WS", "/v1/stream/bars", STREAM_DOC)])

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> Response:
        paths = sorted(app.openapi().get("paths", {}))
        return JSONResponse({"docs": "/docs", "openapi": "/openapi.json",
                             "paths": [*paths, "/v1/stream/bars (WebSocket)"]})

    return app


__all__ = ["VERSION", "create_api_app"]
