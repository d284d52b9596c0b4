"""FinnhubConnector: Finnhub's trade WebSocket, with its REST API as fallback.

Stream (``wss://ws.finnhub.io?token=KEY``): one ``{"type":"subscribe","symbol":S}`` per
symbol; trades arrive as ``{"type":"trade","data":[...]}`` (``parsing``); the server
sends ``{"type":"ping"}`` and ``{"type":"error","msg":...}``.

Identity. Finnhub sends no trade id and no sequence, and never replays. Each connector
gets one ``source`` name (``finnhub:<UTC start>:<random>`` unless given) and numbers
every trade item it receives with a monotonic ``source_row`` that continues across
reconnects. Rows are delivered by ``delivery.Deliveries`` (a failed callback gets the
same rows again; the others are not called twice).

Failure handling: reconnect with capped exponential backoff and jitter (reset after
``stable_period`` up); a data-idle timeout in market hours reconnects; every reconnect
resubscribes; a 4xx handshake answer (bad token) is a ``ConnectorError`` that ends the
connector (429 and 5xx are retried); malformed frames and bad trades are quarantined
with a reason and the stream goes on; while the stream is down ``/quote`` is polled
(``rest_fallback``) for the quote callbacks (quotes never enter the tick stream).
``connect`` returns promptly when ``disconnect`` is called or ``stop`` is set meanwhile.
The API key never appears in a log line, an error or a repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import uuid
from collections.abc import Callable, Iterable

import httpx
import numpy as np
import pandas as pd
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from ...core.calendar import DEFAULT_CALENDAR, sessions_between
from ..base import BaseConnector, ConnectorError, call, wait_or_stop
from ..net import Backoff, mask_secret, masked_logger, register_secret
from .config import DEFAULT_REST_URL, DEFAULT_WS_URL, KEY_VARIABLE, load_finnhub_config, with_token
from .delivery import Deliveries, ErrorCallback, QuoteCallback, StreamStats
from .fallback import RestSide
from .parsing import decode
from .rest import FinnhubRestClient

log = logging.getLogger(__name__)
_WS_LOGGER = masked_logger("phase1_platform.connectors.finnhub.websocket")


class _IdleTimeout(Exception):
    pass


class _Fatal(Exception):
    pass


def xnys_open(now: pd.Timestamp, calendar: str = DEFAULT_CALENDAR) -> bool:
    """True inside a regular trading session of ``calendar`` (exchange_calendars)."""
    ns = int(pd.Timestamp(now).tz_convert("UTC").value)
    sessions = sessions_between(ns, ns, calendar)
    return bool(sessions.locate(np.array([ns], dtype="int64"))[0] >= 0)


class FinnhubConnector(RestSide, Deliveries, BaseConnector):
    """Finnhub trades over WebSocket, delivered as raw tick frames to the callbacks."""

    name = "finnhub"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        ws_url: str | None = None,
        rest_url: str | None = None,
        source: str | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        stable_period: float = 30.0,
        idle_timeout: float | None = 60.0,
        connect_timeout: float = 30.0,
        open_timeout: float = 10.0,
        max_reconnects: int | None = None,
        clock: Callable[[], pd.Timestamp] | None = None,
        market_open: Callable[[pd.Timestamp], bool] | None = None,
        rng: random.Random | None = None,
        rest_fallback: bool = True,
        fallback_interval: float = 5.0,
        rest: FinnhubRestClient | None = None,
        rest_transport: httpx.AsyncBaseTransport | None = None,
        batch_linger: float = 0.05,
        max_batch_rows: int = 10_000,
    ) -> None:
        BaseConnector.__init__(self)
        if api_key is None or ws_url is None or rest_url is None:
            env_ws = os.environ.get("FINNHUB_WS_URL")
            env_rest = os.environ.get("FINNHUB_REST_URL")
            if api_key is None:
                cfg = load_finnhub_config()
                api_key = cfg.api_key
                env_ws, env_rest = env_ws or cfg.ws_url, env_rest or cfg.rest_url
            ws_url = ws_url or env_ws or DEFAULT_WS_URL
            rest_url = rest_url or env_rest or DEFAULT_REST_URL
        if not api_key or not api_key.strip():
            raise ConnectorError(f"missing API key {KEY_VARIABLE}: set it or pass api_key")
        self._key = api_key.strip()
        register_secret(self._key)
        self.ws_url = ws_url
        self.rest_url = rest_url
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
        self.source = source or f"finnhub:{stamp}:{uuid.uuid4().hex[:8]}"
        Deliveries.__init__(self, batch_linger=batch_linger, max_batch_rows=max_batch_rows)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_period = stable_period
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.open_timeout = open_timeout
        self.max_reconnects = max_reconnects
        self._clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self._market_open = market_open or xnys_open
        self._rng = rng or random.Random()
        self.rest_fallback = rest_fallback
        self.fallback_interval = fallback_interval
        self._rest = rest
        self._rest_transport = rest_transport
        self._quote_callbacks: list[QuoteCallback] = []
        self._error_callbacks: list[ErrorCallback] = []
        self.stats = StreamStats()
        self.errors: list[str] = []  # server error messages (masked), in order
        self.last_quotes: dict[str, dict] = {}
        self.fatal_error: ConnectorError | None = None
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task | None = None
        self._fallback_task: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._first_outcome: asyncio.Event | None = None
        self._stopping = False
        self._last_data = 0.0
        self._send_lock = asyncio.Lock()
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return (f"FinnhubConnector(ws_url={mask_secret(self.ws_url, self._key)!r}, "
                f"source={self.source!r}, symbols={sorted(self.symbols)}, key=***)")

    # -- callbacks ---------------------------------------------------------------------
    def register_quote_callback(self, cb: QuoteCallback) -> None:
        """``cb(quote_dict)`` for each REST quote polled while the stream is down."""
        self._quote_callbacks.append(cb)

    def register_error_callback(self, cb: ErrorCallback) -> None:
        """``cb(message)`` for each server error message and for a fatal error (masked)."""
        self._error_callbacks.append(cb)

    async def _tell_errors(self, message: str) -> None:
        for cb in self._error_callbacks:
            try:
                await call(cb, message)
            except Exception:  # noqa: BLE001 - a callback must not kill the stream
                log.exception("Finnhub error callback failed")

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._connected.is_set()

    @property
    def rest(self) -> FinnhubRestClient:
        if self._rest is None:
            self._rest = FinnhubRestClient(self._key, self.rest_url,
                                           transport=self._rest_transport)
        return self._rest

    # -- lifecycle (LiveTicks) ---------------------------------------------------------
    async def connect(self, stop: asyncio.Event | None = None) -> None:
        """Start the stream; returns once connected. ConnectorError if that cannot happen.

        Returns at once, not connected, when ``disconnect()`` is called or ``stop`` is
        set before the first connection is up.
        """
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self.fatal_error = None
        first = self._first_outcome = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="finnhub-stream")
        try:
            outcome = await asyncio.wait_for(wait_or_stop(first.wait(), stop),
                                             self.connect_timeout)
        except TimeoutError:
            await self.disconnect()
            raise ConnectorError(
                f"could not connect to Finnhub at {mask_secret(self.ws_url)} within "
                f"{self.connect_timeout:g}s (last error: {self.last_error or 'none'})"
            ) from None
        if not outcome:  # stop was set
            await self.disconnect()
            return
        if self._stopping:  # disconnect() was called meanwhile
            return
        if self.fatal_error is not None:
            err = self.fatal_error
            await self.disconnect()
            raise err

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver trades until ``stop`` is set; the stream's fatal error if it ends."""
        task = self._task
        if task is not None and not task.done():
            waiter = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
        if self.fatal_error is not None and not stop.is_set():
            raise self.fatal_error

    async def disconnect(self) -> None:
        self._stopping = True
        if self._first_outcome is not None:
            self._first_outcome.set()  # a connect() waiting for the first handshake ends
        await self._stop_fallback()
        task, self._task = self._task, None
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._ws = None
        self._connected.clear()
        await self._seal_and_flush()
        if self._pending:
            log.warning("Finnhub connector stopped with %d rows not taken by the callbacks "
                        "(kept in .pending_rows)", self.pending_rows)
        if self._rest is not None:
            await self._rest.aclose()
            self._rest = None

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def wait_stopped(self) -> None:
        """Wait for the stream task to end; raises its fatal error if it had one."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.fatal_error is not None:
            raise self.fatal_error

    # -- subscriptions -----------------------------------------------------------------
    async def subscribe(self, symbols: Iterable[str]) -> None:
        new = [s.strip().upper() for s in symbols if s.strip()]
        new = [s for s in dict.fromkeys(new) if s not in self.symbols]
        self.symbols |= set(new)
        await self._send_subscriptions("subscribe", new)

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = [s.strip().upper() for s in symbols if s.strip()]
        gone = [s for s in dict.fromkeys(gone) if s in self.symbols]
        self.symbols -= set(gone)
        await self._send_subscriptions("unsubscribe", gone)

    async def _send_subscriptions(self, kind: str, symbols: list[str]) -> None:
        ws = self._ws
        if ws is None or not symbols:
            return  # sent on (re)connect
        async with self._send_lock:
            try:
                for s in symbols:
                    await ws.send(json.dumps({"type": kind, "symbol": s}))
            except ConnectionClosed:
                pass  # the run loop reconnects and resubscribes everything

    # -- the stream loop ---------------------------------------------------------------
    async def _run(self) -> None:
        backoff = Backoff(self.backoff_initial, self.backoff_max, self.stable_period, self._rng)
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping:
                ws = await self._open()
                if ws is not None:
                    backoff.up(loop.time())
                    await self._stop_fallback()
                    try:
                        await self._session(ws)
                    except _IdleTimeout:
                        self.stats.idle_reconnects += 1
                        self.last_error = f"no data for {self.idle_timeout:g}s in market hours"
                    except ConnectionClosed as exc:
                        self.last_error = f"connection closed ({_close_text(exc)})"
                    finally:
                        self._ws = None
                        self._connected.clear()
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(ws.close(), 2.0)
                        self.stats.disconnects += 1
                        backoff.down(loop.time())
                    if self._stopping:
                        break
                    log.warning("Finnhub stream: %s, reconnecting", self.last_error)
                failures = backoff.attempt
                if self.max_reconnects is not None and failures >= self.max_reconnects:
                    raise _Fatal(f"Finnhub stream: gave up after {failures + 1} attempts "
                                 f"(last error: {self.last_error})")
                await self._start_fallback()
                await asyncio.sleep(backoff.failed())
        except _Fatal as exc:
            await self._set_fatal(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must end the stream loudly
            log.exception("Finnhub stream loop failed")
            await self._set_fatal(f"Finnhub stream failed: {type(exc).__name__}: {exc}")
        finally:
            await self._stop_fallback()
            if self._first_outcome is not None:
                self._first_outcome.set()

    async def _set_fatal(self, message: str) -> None:
        self.fatal_error = ConnectorError(message)
        log.error("%s", self.fatal_error)
        await self._tell_errors(str(self.fatal_error))

    async def _open(self) -> ClientConnection | None:
        """One handshake: the connection, None for a transient failure, _Fatal for 4xx."""
        url = with_token(self.ws_url, self._key)
        shown = mask_secret(self.ws_url)
        try:
            ws = await websockets.connect(url, open_timeout=self.open_timeout,
                                          max_size=2**24, close_timeout=2.0,
                                          logger=_WS_LOGGER)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 400 <= status < 500 and status != 429:
                hint = (f": the API key was refused, check {KEY_VARIABLE}"
                        if status in (401, 403) else "")
                raise _Fatal(f"Finnhub stream {shown} rejected the connection "
                             f"with HTTP {status}{hint}") from None
            self.last_error = f"handshake answered HTTP {status}"
        except InvalidURI:
            raise _Fatal(f"Finnhub stream URL is not a WebSocket URL: {shown}") from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            self.last_error = mask_secret(f"{type(exc).__name__}: {exc}", self._key)
        else:
            self.stats.connections += 1
            if self.stats.connections > 1:
                self.stats.reconnects += 1
            self._ws = ws
            log.info("Finnhub stream connected to %s", shown)
            return ws
        log.warning("Finnhub stream %s: %s", shown, self.last_error)
        return None

    async def _session(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        async with self._send_lock:
            for s in sorted(self.symbols):  # resubscribe after every (re)connect
                await ws.send(json.dumps({"type": "subscribe", "symbol": s}))
        self._last_data = loop.time()
        self._connected.set()
        if self._first_outcome is not None:
            self._first_outcome.set()
        poll = min(5.0, max(0.05, (self.idle_timeout or 20.0) / 4))
        try:
            while True:
                if self._open_items:
                    age = loop.time() - self._open_since
                    if age >= self.batch_linger or len(self._open_items) >= self.max_batch_rows:
                        await self._seal_and_flush()
                        continue
                    timeout = self.batch_linger - age
                else:
                    timeout = poll
                try:
                    message = await asyncio.wait_for(ws.recv(), timeout)
                except TimeoutError:
                    if not self._open_items and self._idle_expired(loop.time()):
                        raise _IdleTimeout() from None
                    continue
                await self._handle(message, loop.time())
        finally:
            await self._seal_and_flush()  # what was received is delivered, never dropped

    def _idle_expired(self, now: float) -> bool:
        if self.idle_timeout is None or not self.symbols:
            return False
        if now - self._last_data < self.idle_timeout:
            return False
        return bool(self._market_open(self._clock()))

    # -- messages ----------------------------------------------------------------------
    async def _handle(self, message: str | bytes, now: float) -> None:
        self.stats.messages += 1
        frame = decode(message)
        if frame.kind == "ping":
            self.stats.pings += 1
        elif frame.kind == "trade":
            self._last_data = now
            self.stats.trade_messages += 1
            await self._on_trades(frame.data or [])
        elif frame.kind == "error":
            err = frame.error or ""
            self.stats.errors += 1
            self.errors.append(err)
            log.warning("Finnhub server error: %s", err)
            await self._tell_errors(err)
        else:
            await self._quarantine_frame(frame.text, frame.reason or "unreadable frame")


def _close_text(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "no close frame"
    return f"code {frame.code}" + (f", {frame.reason}" if frame.reason else "")
