"""Live bar broadcast over WebSocket: ``ws://HOST:PORT/ws/bars?symbols=AAPL,MSFT``.

Message schema (JSON text frames, one object per frame):

- on connect: ``{"type": "subscribed", "symbols": ["AAPL"], "schema": 1}``
  (no ``symbols`` query parameter = every symbol, listed as ``["*"]``);
- per bar update: ``{"type": "bar", "symbol", "timeframe", "timestamp"
  (bar open, ``YYYY-MM-DDTHH:MM:SSZ``), "open", "high", "low", "close", "volume",
  "trade_count", "vwap", "revision", "restated"}``. ``revision`` counts the updates
  of that bar sent so far (1 = first); ``restated`` is true when a bar already sent
  changed again (a later tick in an open bar, or a late tick re-opening a closed bar).
  Numbers follow the canonical CSV's rule (``core.export``) and are sent as strings,
  so clients see the same digits as the canonical export;
- ``{"type": "dropped", "count": N}`` before the next update when a slow client's
  queue overflowed and its N oldest messages were dropped.

A client reading the stream keeps, per (symbol, timeframe, timestamp), the message
with the highest ``revision``: that is the bar's current state. Another path than
``/ws/bars`` is refused with HTTP 404 during the handshake. Revisions count per
broadcaster (service) lifetime; the service drops the counts of bars it no longer
restates (``forget_before``), so a bar that old would start again at revision 1.

Slow clients never slow ingestion: ``publish`` only puts messages on each client's
bounded queue (oldest dropped and counted when full); one sender task per client
drains it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pandas as pd
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..core.export import format_decimal, format_qty, format_timestamps
from ..core.schema import bar_vwap

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1


@dataclass(eq=False)
class _Client:
    conn: ServerConnection
    symbols: frozenset[str] | None  # None = all
    queue: asyncio.Queue
    dropped: int = 0  # not yet reported to the client
    dropped_total: int = 0
    sent: int = 0
    sender: asyncio.Task | None = None


@dataclass
class BarBroadcaster:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port (see .port after start)
    queue_size: int = 1000
    _server: Server | None = field(default=None, init=False, repr=False)
    _clients: set[_Client] = field(default_factory=set, init=False, repr=False)
    _revisions: dict[tuple[str, str, int], int] = field(default_factory=dict, init=False)
    dropped_total: int = field(default=0, init=False)
    sent_total: int = field(default=0, init=False)

    async def start(self) -> None:
        if self._server is not None:
            return  # already serving (e.g. started before the service)
        self._server = await serve(self._handle, self.host, self.port,
                                   process_request=self._check_path)
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        log.info("bar broadcast listening on ws://%s:%d/ws/bars", self.host, self.port)

    async def stop(self) -> None:
        for client in list(self._clients):  # a stuck sender must not hold the close
            if client.sender is not None:
                client.sender.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    def client_stats(self) -> list[dict]:
        """Per connected client: symbols, queued, sent and dropped message counts."""
        return [{"symbols": sorted(c.symbols) if c.symbols else ["*"],
                 "queued": c.queue.qsize(), "sent": c.sent, "dropped": c.dropped_total}
                for c in self._clients]

    @staticmethod
    def _check_path(connection: ServerConnection, request):
        if urlsplit(request.path).path.rstrip("/") != "/ws/bars":
            return connection.respond(HTTPStatus.NOT_FOUND,
                                      "unknown path: use /ws/bars?symbols=A,B\n")
        return None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws/bars"

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def publish(self, bars: pd.DataFrame) -> int:
        """Queue updates of these bars (internal bar frame) for every interested client.

        Never blocks and never awaits: a full client queue drops its oldest message.
        Returns the number of messages queued.
        """
        if bars is None or len(bars) == 0:
            return 0
        messages = self._messages(bars)
        queued = 0
        for client in list(self._clients):
            for symbol, text in messages:
                if client.symbols is not None and symbol not in client.symbols:
                    continue
                if client.queue.full():
                    client.queue.get_nowait()
                    client.dropped += 1
                    client.dropped_total += 1
                    self.dropped_total += 1
                client.queue.put_nowait(text)
                queued += 1
        return queued

    def _messages(self, bars: pd.DataFrame) -> list[tuple[str, str]]:
        qty = bars["qty"].to_numpy("int64")
        columns = {
            "timestamp": format_timestamps(bars["ts"].to_numpy("int64")).tolist(),
            "open": format_decimal(bars["open"].to_numpy("float64")),
            "high": format_decimal(bars["high"].to_numpy("float64")),
            "low": format_decimal(bars["low"].to_numpy("float64")),
            "close": format_decimal(bars["close"].to_numpy("float64")),
            "volume": format_qty(qty),
            "vwap": format_decimal(bar_vwap(bars["notional"].to_numpy("int64"), qty)),
        }
        out = []
        rows = zip(bars["symbol"].tolist(), bars["timeframe"].tolist(),
                   bars["ts"].to_numpy("int64").tolist(),
                   bars["trade_count"].to_numpy("int64").tolist(), strict=True)
        for i, (symbol, tf, ts, count) in enumerate(rows):
            key = (symbol, tf, ts)
            revision = self._revisions.get(key, 0) + 1
            self._revisions[key] = revision
            msg = {"type": "bar", "symbol": symbol, "timeframe": tf}
            msg.update({name: values[i] for name, values in columns.items()})
            msg.update(trade_count=count, revision=revision, restated=revision > 1)
            out.append((symbol, json.dumps(msg, separators=(",", ":"))))
        return out

    def forget_before(self, floors: Mapping[str, int]) -> int:
        """Drop the revision counts of bars of ``symbol`` opening before
        ``floors[symbol]``: bars the live service no longer restates (its retention),
        so the counts stay bounded in a long run. Returns how many were dropped."""
        old = [k for k in self._revisions if k[0] in floors and k[2] < floors[k[0]]]
        for k in old:
            del self._revisions[k]
        return len(old)

    @property
    def tracked_bars(self) -> int:
        """Bars whose revision count is kept."""
        return len(self._revisions)

    async def _handle(self, conn: ServerConnection) -> None:
        url = urlsplit(conn.request.path if conn.request else "/ws/bars")
        wanted = parse_qs(url.query).get("symbols", [""])[0]
        symbols = frozenset(s.strip().upper() for s in wanted.split(",") if s.strip()) or None
        client = _Client(conn, symbols, asyncio.Queue(maxsize=self.queue_size))
        # the greeting goes through the queue too: nothing here may wait on the client
        client.queue.put_nowait(json.dumps({"type": "subscribed", "schema": SCHEMA_VERSION,
                                            "symbols": sorted(symbols) if symbols else ["*"]}))
        self._clients.add(client)
        client.sender = asyncio.create_task(self._send_loop(client))
        try:
            async for _ in conn:  # clients only listen; reading detects the close
                pass
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            client.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client.sender

    async def _send_loop(self, client: _Client) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                text = await client.queue.get()
                if client.dropped:
                    n, client.dropped = client.dropped, 0
                    await client.conn.send(json.dumps({"type": "dropped", "count": n}))
                await client.conn.send(text)
                client.sent += 1
                self.sent_total += 1
