"""Structured access log: one JSON line per request (``phase1.api.access`` logger).

Fields: ``server`` (api, dashboard), ``method``, ``path`` (never the query string: it may
carry tokens), ``status``, ``duration_ms``, ``bytes`` (the body bytes sent, after
compression). A WebSocket is logged once, when it ends (``method`` ``WS``, ``status`` 101
when it was accepted). Nothing else of the request is logged: no header, no database URL.
A pure ASGI middleware (no per-request task or body buffering).
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("phase1.api.access")


class AccessLog:
    def __init__(self, app, server: str = "api"):
        self.app = app
        self.server = server

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen = {"status": None, "bytes": 0}

        async def sending(message) -> None:
            kind = message["type"]
            if kind == "http.response.start" or kind == "websocket.http.response.start":
                seen["status"] = message["status"]
            elif kind in ("http.response.body", "websocket.http.response.body"):
                seen["bytes"] += len(message.get("body", b""))
            elif kind == "websocket.accept":
                seen["status"] = 101
            elif kind == "websocket.close" and seen["status"] is None:
                seen["status"] = 403
            elif kind == "websocket.send":
                seen["bytes"] += len(message.get("text") or message.get("bytes") or b"")
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except BaseException:
            if seen["status"] is None:
                seen["status"] = 500
            raise
        finally:
            log.info("request", extra={"fields": {
                "server": self.server,
                "method": "WS" if scope["type"] == "websocket" else scope.get("method", ""),
                "path": scope.get("path", "")[:200], "status": seen["status"],
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "bytes": seen["bytes"]}})


__all__ = ["AccessLog"]
