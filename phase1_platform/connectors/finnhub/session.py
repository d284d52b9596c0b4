"""The WebSocket side of ``FinnhubConnector``: the reconnect loop, one session, frames.

``_run`` opens the stream, runs a session until it ends, and reconnects with capped
exponential backoff and jitter (``net.Backoff``, reset after ``stable_period`` up),
starting the REST quote fallback (``fallback``) while the stream is down. A 4xx
handshake answer other than 429 ends the loop with a ``ConnectorError``; 429, 5xx and
network failures are retried (``max_reconnects`` bounds the attempts). A session
resubscribes every symbol, seals micro-batches after ``batch_linger`` (``delivery``)
and reconnects when no data came for ``idle_timeout`` seconds in market hours.
``_handle`` routes each decoded frame: pings are counted, trades numbered and batched,
server errors told to the error callbacks, anything else quarantined with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from ..base import ConnectorError
from ..net import Backoff, mask_secret, masked_logger
from .config import KEY_VARIABLE, with_token
from .parsing import decode

log = logging.getLogger(__name__)
_WS_LOGGER = masked_logger("phase1_platform.connectors.finnhub.websocket")


class _IdleTimeout(Exception):
    pass


class _Fatal(Exception):
    pass


class StreamLoop:
    """Mixin of ``FinnhubConnector`` (needs its settings, ``stats``, ``symbols``, the
    ``Deliveries`` batching and the ``RestSide`` fallback)."""

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
