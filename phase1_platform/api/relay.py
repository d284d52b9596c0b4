"""Relay of the ingestion service's live bar broadcast to the read API's WebSocket clients.

``StreamRelay(url)`` keeps one client connection to the broadcast (``ws://HOST:PORT/ws/bars``,
``ingestion.broadcast``; every symbol) and reconnects with capped exponential backoff and
jitter (``connectors.net.Backoff``) whenever it drops or cannot be opened. Each message is
relayed **unchanged** (the same text frame) to every subscriber that wants it: ``bar``
messages to the subscribers of their symbol (or of every symbol), other messages
(``dropped``...) to all. The broadcast's own ``subscribed`` greeting is not relayed: each
subscriber gets the relay's, ``{"type": "subscribed", "schema", "symbols", "stream"}``,
and ``{"type": "status", "stream": ...}`` whenever the upstream connection comes or goes
(``connected``, ``disconnected``; ``not configured`` without a URL).

Slow subscribers never slow the relay: each has a bounded queue; when it is full the oldest
message is dropped and counted, and ``{"type": "dropped", "count": N}`` precedes its next
message, as the broadcast itself does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..connectors.net import Backoff, mask_secret
from ..ingestion.broadcast import SCHEMA_VERSION

log = logging.getLogger("phase1.api.stream")
NOT_CONFIGURED, CONNECTING, CONNECTED, DISCONNECTED = (
    "not configured", "connecting", "connected", "disconnected")


@dataclass(eq=False)
class Subscription:
    """One API client of the stream: the symbols it wants (None = all) and its queue."""

    symbols: frozenset[str] | None
    queue: asyncio.Queue
    dropped: int = 0  # not yet reported to the client
    closed: bool = False

    def put(self, text: str) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(text)

    async def next(self) -> str | None:
        """The next frame to send (a ``dropped`` notice first when messages were dropped);
        None once the relay closed this subscription."""
        if self.closed:
            return None
        if self.dropped:
            n, self.dropped = self.dropped, 0
            return json.dumps({"type": "dropped", "count": n})
        text = await self.queue.get()
        return None if text is None or self.closed else text


@dataclass(eq=False)
class StreamRelay:
    url: str | None
    queue_size: int = 1000
    backoff: Backoff = field(default_factory=lambda: Backoff(0.25, 5.0, 10.0))
    open_timeout: float = 5.0
    relayed: int = 0
    _state: str = field(default=NOT_CONFIGURED, init=False)
    _subs: set[Subscription] = field(default_factory=set, init=False)
    _task: asyncio.Task | None = field(default=None, init=False, repr=False)

    @property
    def state(self) -> str:
        return self._state

    @property
    def masked_url(self) -> str | None:
        return None if self.url is None else mask_secret(self.url)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def start(self) -> None:
        if self.url is not None and self._task is None:
            self._set_state(CONNECTING)
            self._task = asyncio.create_task(self._run(), name="phase1-stream-relay")

    async def stop(self) -> None:
        """Stop relaying and end every subscription (their clients are then closed)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sub in list(self._subs):
            self.unsubscribe(sub)

    def subscribe(self, symbols: frozenset[str] | None) -> Subscription:
        sub = Subscription(symbols or None, asyncio.Queue(maxsize=self.queue_size + 1))
        sub.put(json.dumps({"type": "subscribed", "schema": SCHEMA_VERSION,
                            "symbols": sorted(symbols) if symbols else ["*"],
                            "stream": self._state}))
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.discard(sub)
            sub.closed = True
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)  # wakes its sender, which then ends

    # ------------------------------------------------------------------ upstream
    def _set_state(self, state: str) -> None:
        if state == self._state:
            return
        self._state = state
        if state in (CONNECTED, DISCONNECTED):
            self._to_all(json.dumps({"type": "status", "stream": state}))

    def _to_all(self, text: str) -> None:
        for sub in list(self._subs):
            sub.put(text)

    def relay(self, text: str) -> None:
        """Pass one upstream message to the subscribers that want it (unchanged)."""
        try:
            msg = json.loads(text)
        except ValueError:
            log.warning("stream relay: a frame that is not JSON was skipped")
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == "subscribed":
            return
        symbol = msg.get("symbol") if kind == "bar" else None
        for sub in list(self._subs):
            if symbol is None or sub.symbols is None or symbol in sub.symbols:
                sub.put(text)
        self.relayed += 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with connect(self.url, open_timeout=self.open_timeout,
                                   max_size=2**22) as ws:
                    self.backoff.up(loop.time())
                    self._set_state(CONNECTED)
                    log.info("stream relay connected to %s", self.masked_url)
                    async for text in ws:
                        if isinstance(text, str):
                            self.relay(text)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake,
                    InvalidURI) as exc:
                log.warning("stream relay: %s unavailable (%s); retrying",
                            self.masked_url, mask_secret(type(exc).__name__))
            self.backoff.down(loop.time())
            self._set_state(DISCONNECTED)
            await asyncio.sleep(self.backoff.failed())


__all__ = ["CONNECTED", "CONNECTING", "DISCONNECTED", "NOT_CONFIGURED", "StreamRelay",
           "Subscription"]
