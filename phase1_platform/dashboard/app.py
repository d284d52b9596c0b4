"""Starlette app that serves the dashboard page, its static files and its API address.

The page is plain HTML + ES modules; nothing is built at run time. `/config.json` is the one
dynamic route: it carries the read API's base URL (the API sits on another port, so the page
cannot guess it) and the live stream's URL derived from it. When the API listens on every
interface (`0.0.0.0`, `::`), the page swaps that address for the host it was loaded from.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
WILDCARD_HOSTS = ("0.0.0.0", "::")

# The page and its config must never be cached: a restarted server may point at another API.
_NO_STORE = {"Cache-Control": "no-store"}

# Content-Security-Policy: everything from this origin, except API calls and the stream
# (another port of the same host, named in /config.json). No remote script, font or image;
# inline styles are allowed because lightweight-charts injects one for its attribution logo.
_CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self' {api} {ws}",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])


def stream_url_of(api_url: str) -> str:
    """The API's WebSocket stream address: same host and port, `ws(s)://` scheme."""
    base = api_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://"):]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://"):]
    return base + "/v1/stream/bars"


def csp_for(api_url: str) -> str:
    """The page's policy for an API at `api_url` (any host on its port when the API listens
    on every interface: the page then calls the host it was loaded from)."""
    parts = urlsplit(api_url)
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    if parts.hostname in WILDCARD_HOSTS:
        port = f":{parts.port}" if parts.port else ""
        return _CSP.format(api=f"{parts.scheme}://*{port}", ws=f"{ws_scheme}://*{port}")
    return _CSP.format(api=f"{parts.scheme}://{parts.netloc}", ws=f"{ws_scheme}://{parts.netloc}")


def create_dashboard_app(api_url: str) -> Starlette:
    """Build the dashboard ASGI app for a read API at `api_url` (e.g. http://127.0.0.1:8000).

    Routes: `/` (index.html), `/config.json` (`{"api_url", "stream_url"}`), `/static/...`.
    """
    api = api_url.rstrip("/")
    stream = stream_url_of(api)
    csp = csp_for(api)

    async def index(_request: Request) -> Response:
        headers = {**_NO_STORE, "Content-Security-Policy": csp}
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=headers)

    async def config(_request: Request) -> Response:
        return JSONResponse({"api_url": api, "stream_url": stream}, headers=_NO_STORE)

    routes = [
        Route("/", index),
        Route("/index.html", index),
        Route("/config.json", config),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(routes=routes)
