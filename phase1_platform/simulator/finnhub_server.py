"""A local market that speaks Finnhub's trade WebSocket protocol.

Serves recorded ticks (DESIGN tick CSVs or LEAN tick zips) to clients connected at
``ws://HOST:PORT?token=TOKEN``, as Finnhub does:

- handshake: a missing or wrong token is refused with HTTP 401;
- ``{"type":"subscribe","symbol":S}`` / ``unsubscribe``; a symbol the market does not
  know gets ``{"type":"error","msg":"Unknown symbol: S"}``, one over ``max_symbols``
  gets ``{"type":"error","msg":"Subscribing to too many symbols"}``;
- trades as ``{"type":"trade","data":[{"s","p","t"(ms),"v","c"}]}``, only of the
  symbols each connection subscribed; ``{"type":"ping"}`` every ``ping_interval``.

One market clock is shared by every connection, like the real exchange: a trade goes to
whoever is subscribed when it happens. ``speed`` is the replay rate (1 = real time,
0 = as fast as possible). At speed 0 the market pauses while no connection is
subscribed and listening (``pause_when_idle``), so a client that reconnects misses
nothing; at a real speed the market goes on, as a real one does.

The same port answers Finnhub's REST calls ``/api/v1/quote`` and ``/api/v1/stock/tick``
about the trades the market has traded so far (``finnhub_rest``; ``rest_url``), so gap
backfill and the ingestion service's startup catch-up speak Finnhub's protocol to it.

Test hooks: ``drop_after`` (close a connection after N trade messages, ``drop_times``
times), ``stall_after`` (go silent after N trade messages, no pings either, while
keeping the socket open), ``inject_raw(text)`` (send any frame, e.g. malformed JSON),
``drop_all()``, ``stall_all()``. The market starts (and, paused, resumes) ``settle``
seconds after the first subscription, so all of a client's subscribe messages count.
Every trade sent is logged in ``sent`` (which connection got which trade), so tests can
check nothing was lost or duplicated, and when in ``sent_at`` (the latency benchmark).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..connectors.net import masked_logger
from ..core.errors import ConfigError
from ..core.normalizer import TickNormalizer
from ..core.schema import ts_ns
from ..readers import read_ticks
from .finnhub_rest import REST_PREFIX, FinnhubRest

log = logging.getLogger(__name__)

TOO_MANY_SYMBOLS = "Subscribing to too many symbols"


class ListenError(ConfigError):
    """The simulator cannot listen on the host and port it was given."""


def listen_error(exc: OSError, host: str, port: int) -> ListenError | None:
    """The one-line error (naming the address and the fix) for a failed bind, or None
    when ``exc`` is not one the user can fix by choosing another address."""
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return ListenError(f"cannot listen on {where}: port {port} is already in use; "
                           "choose another port (phase1 simulate --port N, 0 picks a free "
                           "one) or stop the process listening there")
    if exc.errno == errno.EACCES:
        return ListenError(f"cannot listen on {where}: permission denied (ports below 1024 "
                           "need privileges); choose a port from 1024 up, or 0 for a free one")
    if exc.errno == errno.EADDRNOTAVAIL:
        return ListenError(f"cannot listen on {where}: {host} is not an address of this "
                           "machine; use 127.0.0.1 (phase1 simulate --host)")
    return None


@dataclass(eq=False)
class SimConnection:
    id: int
    ws: ServerConnection
    symbols: set[str] = field(default_factory=set)
    trade_messages: int = 0
    stalled: bool = False
    closed: bool = False

    @property
    def listening(self) -> bool:
        return not self.closed and not self.stalled and bool(self.symbols)


@dataclass
class MarketTape:
    """Recorded trades in market order, as the lists the protocol sends."""

    symbol: list[str]
    t_ms: np.ndarray
    price: list[float]
    size: list[float | int]
    conditions: list[list[str]]
    skipped: int = 0  # rows the normalizer quarantined (never sent)

    def __len__(self) -> int:
        return len(self.symbol)

    @classmethod
    def from_raw(cls, raw: pd.DataFrame) -> MarketTape:
        result = TickNormalizer().normalize(raw)
        ticks = result.ticks
        ts = ts_ns(ticks["ts"])
        order = np.argsort(ts, kind="stable")  # market time; canonical order among ties
        ticks = ticks.iloc[order]
        ts = ts[order]
        size = ticks["size"].to_numpy("float64")
        sizes = [int(v) if v == int(v) else float(v) for v in size.tolist()]
        return cls(
            symbol=ticks["symbol"].tolist(),
            t_ms=np.floor_divide(ts, 1_000_000),
            price=ticks["price"].to_numpy("float64").tolist(),
            size=sizes,
            conditions=[c.split() for c in ticks["conditions"].tolist()],
            skipped=result.rejected,
        )

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> MarketTape:
        frames = [read_ticks(p) for p in paths]
        if not frames:
            raise ValueError("no tick file given")
        return cls.from_raw(pd.concat(frames, ignore_index=True))

    def trade(self, i: int) -> dict:
        return {"s": self.symbol[i], "p": self.price[i], "t": int(self.t_ms[i]),
                "v": self.size[i], "c": self.conditions[i]}


class FinnhubSimulator:
    def __init__(
        self,
        tape: MarketTape,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 0.0,
        batch_size: int = 50,
        batch_window_ms: int = 100,
        ping_interval: float = 10.0,
        max_symbols: int = 50,
        known_symbols: Iterable[str] | None = None,
        pause_when_idle: bool | None = None,
        drop_after: int | None = None,
        drop_times: int = 1,
        stall_after: int | None = None,
        stall_times: int = 1,
        settle: float = 0.05,
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0 (0 = as fast as possible), got {speed}")
        self.tape = tape
        self.token = token
        self.host = host
        self.port = port
        self.speed = float(speed)
        self.batch_size = max(1, int(batch_size))
        self.batch_window_ms = max(1, int(batch_window_ms))
        self.ping_interval = ping_interval
        self.max_symbols = max_symbols
        self.known = set(tape.symbol) | {s.upper() for s in (known_symbols or ())}
        self.settle = settle
        self.pause_when_idle = (self.speed == 0) if pause_when_idle is None else pause_when_idle
        self.drop_after, self.drops_left = drop_after, (drop_times if drop_after else 0)
        self.stall_after, self.stalls_left = stall_after, (stall_times if stall_after else 0)

        self.connections: list[SimConnection] = []
        self.rest = FinnhubRest(tape, token)
        self.traded = 0  # trades of the tape the market has passed (its clock)
        self.sent: list[tuple[int, int]] = []  # (connection id, tape index) per trade sent
        self.sent_at: list[float] = []  # time.time() each trade of ``sent`` left, same order
        self.rejected_handshakes = 0
        self.errors_sent: list[str] = []
        self.done = asyncio.Event()
        self._active = asyncio.Event()
        self._started = asyncio.Event()  # first subscription
        self._server: Server | None = None
        self._market_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._next_id = 0

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], **kwargs) -> FinnhubSimulator:
        return cls(MarketTape.from_files(paths), **kwargs)

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """Base URL of the REST side (``FINNHUB_REST_URL``)."""
        return f"http://{self.host}:{self.port}{REST_PREFIX.rstrip('/')}"

    async def start(self) -> FinnhubSimulator:
        """Listen and start the market clock; ``ListenError`` (one line) when the address
        cannot be used (port in use, privileged port, not a local address)."""
        try:
            self._server = await serve(
                self._handler, self.host, self.port, process_request=self._check_token,
                ping_interval=20, max_size=2**20,
                logger=masked_logger(__name__ + ".websocket"),
            )
        except OSError as exc:
            error = listen_error(exc, self.host, self.port)
            if error is None:
                raise
            raise error from None
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        self._market_task = asyncio.create_task(self._market(), name="finnhub-sim-market")
        log.info("Finnhub simulator on %s: %d trades of %d symbols", self.url, len(self.tape),
                 len(self.known))
        return self

    async def stop(self) -> None:
        for task in [self._market_task, *self._tasks]:
            if task is not None:
                task.cancel()
        for task in [self._market_task, *self._tasks]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def __aenter__(self) -> FinnhubSimulator:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.stop()

    # -- test hooks --------------------------------------------------------------------
    async def inject_raw(self, text: str) -> int:
        """Send ``text`` as one frame to every open, non-stalled connection."""
        n = 0
        for conn in list(self.connections):
            if not conn.closed and not conn.stalled:
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.send(text)
                    n += 1
        return n

    def drop_all(self) -> None:
        for conn in list(self.connections):
            self._drop(conn)

    def stall_all(self) -> None:
        for conn in self.connections:
            conn.stalled = True
        self._update_active()

    def sent_frame(self) -> pd.DataFrame:
        """The trades sent, one row per (connection, trade)."""
        conn = np.array([c for c, _ in self.sent], dtype="int64")
        idx = np.array([i for _, i in self.sent], dtype="int64")
        return pd.DataFrame({
            "connection": conn,
            "symbol": [self.tape.symbol[i] for i in idx],
            "t": self.tape.t_ms[idx] if len(idx) else np.empty(0, dtype="int64"),
            "price": [self.tape.price[i] for i in idx],
            "size": [float(self.tape.size[i]) for i in idx],
            "tape_index": idx,
        })

    # -- protocol ----------------------------------------------------------------------
    def _check_token(self, connection: ServerConnection, request):
        parts = urlsplit(request.path)
        query = parse_qs(parts.query)
        if parts.path.startswith(REST_PREFIX):  # a REST call, not a stream handshake
            return self.rest.answer(request, parts.path,
                                    {k: v[0] for k, v in query.items()}, self.traded)
        given = (query.get("token") or [""])[0]
        if not given or (self.token is not None and given != self.token):
            self.rejected_handshakes += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid API key\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        self._next_id += 1
        conn = SimConnection(self._next_id, ws)
        self.connections.append(conn)
        pinger = asyncio.create_task(self._pings(conn))
        try:
            async for message in ws:
                await self._on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            conn.closed = True
            pinger.cancel()
            self._update_active()

    async def _on_message(self, conn: SimConnection, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
            kind, symbol = msg.get("type"), str(msg.get("symbol", "")).strip().upper()
        except (ValueError, AttributeError):
            await self._error(conn, "Invalid message")
            return
        if kind == "subscribe":
            if symbol not in self.known:
                await self._error(conn, f"Unknown symbol: {symbol}")
            elif symbol not in conn.symbols and len(conn.symbols) >= self.max_symbols:
                await self._error(conn, TOO_MANY_SYMBOLS)
            else:
                conn.symbols.add(symbol)
                self._started.set()
        elif kind == "unsubscribe":
            conn.symbols.discard(symbol)
        else:
            await self._error(conn, f"Unknown message type: {kind}")
        self._update_active()

    async def _error(self, conn: SimConnection, text: str) -> None:
        self.errors_sent.append(text)
        if not conn.stalled:
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.send(json.dumps({"type": "error", "msg": text}))

    async def _pings(self, conn: SimConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while not conn.closed:
                await asyncio.sleep(self.ping_interval)
                if not conn.stalled and not conn.closed:
                    await conn.ws.send('{"type":"ping"}')

    def _update_active(self) -> None:
        if any(c.listening for c in self.connections):
            self._active.set()
        else:
            self._active.clear()
        self.connections = [c for c in self.connections if not c.closed]

    def _drop(self, conn: SimConnection) -> None:
        if conn.closed:
            return
        conn.closed = True
        task = asyncio.create_task(conn.ws.close(1011, "simulated drop"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._update_active()

    # -- the market --------------------------------------------------------------------
    def _groups(self) -> list[tuple[int, int]]:
        n = len(self.tape)
        if n == 0:
            return []
        window = self.tape.t_ms // self.batch_window_ms
        new = np.r_[True, window[1:] != window[:-1]]
        group = np.cumsum(new) - 1
        pos = np.arange(n) - np.flatnonzero(new)[group]
        starts = np.flatnonzero(new | (pos % self.batch_size == 0))
        return list(zip(starts.tolist(), np.r_[starts[1:], n].tolist(), strict=True))

    async def _market(self) -> None:
        loop = asyncio.get_running_loop()
        groups = self._groups()
        await self._started.wait()
        await asyncio.sleep(self.settle)  # let a client's other subscriptions arrive
        t0_loop = loop.time()
        t0_mkt = int(self.tape.t_ms[0]) if groups else 0
        for start, end in groups:
            if self.pause_when_idle and not self._active.is_set():
                await self._active.wait()
                await asyncio.sleep(self.settle)
            if self.speed > 0:
                due = t0_loop + (int(self.tape.t_ms[start]) - t0_mkt) / 1000 / self.speed
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
            else:
                await asyncio.sleep(0)
            self.traded = end  # these trades happen now, whoever listens
            for conn in list(self.connections):
                if conn.listening:
                    await self._send_trades(conn, start, end)
        self.done.set()

    async def _send_trades(self, conn: SimConnection, start: int, end: int) -> None:
        idx = [i for i in range(start, end) if self.tape.symbol[i] in conn.symbols]
        if not idx:
            return
        text = json.dumps({"type": "trade", "data": [self.tape.trade(i) for i in idx]})
        try:
            await conn.ws.send(text)
        except ConnectionClosed:
            conn.closed = True
            self._update_active()
            return
        now = time.time()
        self.sent.extend((conn.id, i) for i in idx)
        self.sent_at.extend(now for _ in idx)
        conn.trade_messages += 1
        if self.drops_left and conn.trade_messages == self.drop_after:
            self.drops_left -= 1
            self._drop(conn)
        elif self.stalls_left and conn.trade_messages == self.stall_after:
            self.stalls_left -= 1
            conn.stalled = True
            self._update_active()
