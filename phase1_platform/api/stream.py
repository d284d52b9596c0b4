"""``WS /v1/stream/bars?symbols=A,B``: the live bar stream, relayed from the ingestion
broadcast (``api.relay``) in its own schema (``ingestion.broadcast``).

The first frame is ``{"type": "subscribed", "schema", "symbols", "stream"}``; then every
broadcast message for the symbols asked for (all without ``symbols``), unchanged, and
``{"type": "status", "stream": ...}`` when the relay's upstream connection comes or goes.
Without ``--stream-url`` the endpoint still answers: ``stream`` is ``not configured``.
Invalid ``symbols`` refuse the handshake with a 422 problem (where the server supports
denial responses; else the socket is closed with code 1008 and the detail as reason).
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket

from ..app.read_params import InvalidParameterError, parse_symbol_list
from .problems import user_error_response

router = APIRouter(tags=["stream"])
POLICY_VIOLATION = 1008


async def _pump(ws: WebSocket, sub) -> None:
    """Send the subscription's frames until the relay ends it."""
    while (text := await sub.next()) is not None:
        await ws.send_text(text)


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends until it closes."""
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


@router.websocket("/v1/stream/bars")
async def stream_bars(ws: WebSocket) -> None:
    try:
        wanted = parse_symbol_list(ws.query_params.get("symbols"), "symbols", required=False)
    except InvalidParameterError as exc:
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(user_error_response(exc, ws.url.path))
        else:
            await ws.close(POLICY_VIOLATION, str(exc)[:120])
        return
    relay = ws.app.state.relay
    await ws.accept()
    sub = relay.subscribe(frozenset(wanted) or None)
    sender = asyncio.create_task(_pump(ws, sub))
    receiver = asyncio.create_task(_drain(ws))
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        relay.unsubscribe(sub)
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if sender in done and sender.exception() is None:  # the relay ended it (shutdown)
        with contextlib.suppress(Exception):
            await ws.close(1001)


__all__ = ["router"]
