"""A local server that speaks Alpaca's real-time stock data stream, as alpaca-py's
``StockDataStream`` negotiates it: msgpack frames, each a list of messages.

- on connect: ``[{"T":"success","msg":"connected"}]``;
- ``{"action":"auth","key","secret"}`` -> ``authenticated``, or for a wrong key
  ``{"T":"error","code":402,"msg":"auth failed"}`` and the connection closed (with
  ``echo_key`` the message repeats the key it got, as a careless vendor might: the
  client must never show it);
- ``{"action":"subscribe","trades":[...]}`` -> ``{"T":"subscription","trades":[...],
  "corrections":[...],"cancelErrors":[...]}`` (corrections and cancels come with trades);
- market data pushed by the test or a script with ``publish``: trades ``t``
  (``S,i,x,p,s,c,t,z``), corrections ``c`` (``S,x,oi,op,os,oc,ci,cp,cs,cc,t,z``) and
  cancels ``x`` (``S,i,x,p,s,a,t,z``), ``t`` a msgpack timestamp with nanoseconds (the
  builders ``trade``, ``correction``, ``cancel`` take UTC ns), each sent to the
  connections subscribed to its symbol, in the order published.

``drop_all()`` closes every connection (the client reconnects, logs in and subscribes
again); ``published`` keeps everything sent, per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import msgpack
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..connectors.net import masked_logger

log = logging.getLogger(__name__)


def _ts(ns: int) -> msgpack.Timestamp:
    return msgpack.Timestamp.from_unix_nano(int(ns))


def trade(symbol: str, ns: int, price: float, size: int, trade_id: int, *,
          exchange: str = "V", tape: str = "C", conditions=("@",)) -> dict:
    return {"T": "t", "S": symbol, "i": int(trade_id), "x": exchange, "p": float(price),
            "s": int(size), "c": list(conditions), "t": _ts(ns), "z": tape}


def correction(symbol: str, ns: int, original: tuple, corrected: tuple, *,
               exchange: str = "V", tape: str = "C") -> dict:
    """``original`` / ``corrected``: (trade id, price, size, conditions)."""
    (oi, op, os_, oc), (ci, cp, cs, cc) = original, corrected
    return {"T": "c", "S": symbol, "x": exchange, "oi": int(oi), "op": float(op),
            "os": int(os_), "oc": list(oc), "ci": int(ci), "cp": float(cp), "cs": int(cs),
            "cc": list(cc), "t": _ts(ns), "z": tape}


def cancel(symbol: str, ns: int, trade_id: int, price: float, size: int, *,
           action: str = "C", exchange: str = "V", tape: str = "C") -> dict:
    return {"T": "x", "S": symbol, "i": int(trade_id), "x": exchange, "p": float(price),
            "s": int(size), "a": action, "t": _ts(ns), "z": tape}


@dataclass(eq=False)
class StreamConnection:
    ws: ServerConnection
    authenticated: bool = False
    symbols: set[str] = field(default_factory=set)


class AlpacaStreamFake:
    """The stream server (see the module); ``url`` once started."""

    def __init__(self, key: str, secret: str, *, host: str = "127.0.0.1", port: int = 0,
                 echo_key: bool = False) -> None:
        self.key, self.secret = key, secret
        self.host, self.port = host, port
        self.echo_key = echo_key
        self.connections: list[StreamConnection] = []
        self.logins = 0
        self.refused = 0
        self.published: list[dict] = []
        self.subscribed = asyncio.Event()
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/v2/iex"

    async def start(self) -> AlpacaStreamFake:
        self._server = await serve(self._handler, self.host, self.port,
                                   logger=masked_logger(__name__ + ".websocket"))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> AlpacaStreamFake:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def publish(self, *messages: dict) -> int:
        """Send ``messages`` (one frame) to each connection subscribed to their symbols;
        returns the connections reached."""
        self.published.extend(messages)
        reached = 0
        for conn in list(self.connections):
            mine = [m for m in messages if conn.authenticated and m.get("S") in conn.symbols]
            if mine:
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.send(msgpack.packb(mine))
                    reached += 1
        return reached

    def drop_all(self) -> None:
        for conn in list(self.connections):
            asyncio.ensure_future(conn.ws.close())
        self.subscribed.clear()

    async def _send(self, conn: StreamConnection, *messages: dict) -> None:
        await conn.ws.send(msgpack.packb(list(messages)))

    async def _handler(self, ws: ServerConnection) -> None:
        conn = StreamConnection(ws)
        self.connections.append(conn)
        try:
            await self._send(conn, {"T": "success", "msg": "connected"})
            async for frame in ws:
                try:
                    msg = msgpack.unpackb(frame) if isinstance(frame, bytes) else None
                except (ValueError, msgpack.ExtraData, msgpack.FormatError):
                    msg = None
                if not isinstance(msg, dict):
                    await self._send(conn, {"T": "error", "code": 400, "msg": "invalid syntax"})
                    continue
                if not await self._on_action(conn, msg):
                    return
        except ConnectionClosed:
            pass
        finally:
            self.connections.remove(conn)

    async def _on_action(self, conn: StreamConnection, msg: dict) -> bool:
        """Answer one client message; False to close the connection."""
        action = msg.get("action")
        if action == "auth":
            if msg.get("key") == self.key and msg.get("secret") == self.secret:
                conn.authenticated = True
                self.logins += 1
                await self._send(conn, {"T": "success", "msg": "authenticated"})
                return True
            self.refused += 1
            text = f"auth failed for key {msg.get('key')}" if self.echo_key else "auth failed"
            await self._send(conn, {"T": "error", "code": 402, "msg": text})
            await conn.ws.close()
            return False
        if not conn.authenticated:
            await self._send(conn, {"T": "error", "code": 401, "msg": "not authenticated"})
            return True
        if action in ("subscribe", "unsubscribe"):
            symbols = {str(s) for s in msg.get("trades", []) or []}
            conn.symbols = conn.symbols | symbols if action == "subscribe" else \
                conn.symbols - symbols
            listed = sorted(conn.symbols)
            await self._send(conn, {"T": "subscription", "trades": listed, "quotes": [],
                                    "bars": [], "corrections": listed,
                                    "cancelErrors": listed})
            if conn.symbols:
                self.subscribed.set()
            return True
        await self._send(conn, {"T": "error", "code": 400, "msg": "invalid syntax"})
        return True


__all__ = ["AlpacaStreamFake", "cancel", "correction", "trade"]
