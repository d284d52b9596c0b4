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

This module holds the connector's settings, callbacks, lifecycle and subscriptions;
the reconnect loop, the session and frame handling are ``session.StreamLoop``, the REST
side is ``fallback.RestSide`` and batching and delivery are ``delivery.Deliveries``.
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
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from ...core.calendar import DEFAULT_CALENDAR, sessions_between
from ..base import BaseConnector, ConnectorError, call, wait_or_stop
from ..net import mask_secret
from ..settings import ConnectorSettings, load_settings, resolve_key
from .config import DEFAULT_REST_URL, DEFAULT_WS_URL, KEY_VARIABLE
from .delivery import Deliveries, ErrorCallback, QuoteCallback, StreamStats
from .fallback import RestSide
from .rest import FinnhubRestClient
from .session import StreamLoop

log = logging.getLogger(__name__)


def xnys_open(now: pd.Timestamp, calendar: str = DEFAULT_CALENDAR) -> bool:
    """True inside a regular trading session of ``calendar`` (exchange_calendars)."""
    ns = int(pd.Timestamp(now).tz_convert("UTC").value)
    sessions = sessions_between(ns, ns, calendar)
    return bool(sessions.locate(np.array([ns], dtype="int64"))[0] >= 0)


def _base_urls(ws_url: str | None, rest_url: str | None,
               settings: ConnectorSettings | None) -> tuple[str, str]:
    """Stream and REST base URLs: as given, else ``FINNHUB_WS_URL`` / ``FINNHUB_REST_URL``
    from the environment, then from ``settings`` (loaded when the key was not given),
    then the public defaults."""
    if settings is None and ws_url is not None and rest_url is not None:
        return ws_url, rest_url
    env_ws = os.environ.get("FINNHUB_WS_URL")
    env_rest = os.environ.get("FINNHUB_REST_URL")
    if settings is not None:
        env_ws, env_rest = env_ws or settings.FINNHUB_WS_URL, env_rest or settings.FINNHUB_REST_URL
    return ws_url or env_ws or DEFAULT_WS_URL, rest_url or env_rest or DEFAULT_REST_URL


class FinnhubConnector(StreamLoop, RestSide, Deliveries, BaseConnector):
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
        settings = load_settings() if api_key is None else None  # read only when needed
        self._key = resolve_key(api_key, KEY_VARIABLE, settings)
        self.ws_url, self.rest_url = _base_urls(ws_url, rest_url, settings)
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
