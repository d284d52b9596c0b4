"""What callers use of a connector, as protocols (no ``getattr``/``hasattr`` probing).

- ``LiveTicks``: a live tick stream (Finnhub WebSocket, Alpaca polling or data stream,
  the mock replay). The service registers callbacks, subscribes, ``connect(stop)``s,
  awaits ``run(stop)`` until the stream ends or ``stop`` is set, and ``disconnect``s.
  ``run`` raises the stream's fatal error (a ``ConnectorError``) if it has one.
- ``LiveAmendments``: a live stream that also sends trade cancels and corrections.
- ``TickHistory``: trades of a symbol in ``[start, end)`` as raw tick pages (gap
  backfill, Dagster's ``raw_ticks`` for a vendor tick source).
- ``LatestTrade``: when the newest trade of a symbol the vendor knows happened (Alpaca's
  ``/v2/stocks/trades/latest``, Finnhub's ``/quote``, a file's newest row): "the present"
  of a history, up to which the live service catches up at start.
- ``BarHistory``: the vendor's own bars (the parity reference).

Each returns the core's raw frames: ticks as ``TickNormalizer`` takes them, bars in the
canonical bar frame. ``name`` is the vendor's name; ``source`` what its ticks are landed
under. A connector implements the protocols it can serve; ``isinstance(c, TickHistory)``
tells (they are ``runtime_checkable``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Protocol, runtime_checkable

import pandas as pd

TickCallback = Callable[[pd.DataFrame], Awaitable[None] | None]


@runtime_checkable
class LiveTicks(Protocol):
    name: str

    def register_callback(self, cb: TickCallback) -> None:
        """``cb(raw_tick_frame)`` for every batch received."""

    def register_quarantine_callback(self, cb: TickCallback) -> None:
        """``cb(quarantine_frame)`` for every message that could not be parsed."""

    async def subscribe(self, symbols: Iterable[str]) -> None: ...

    async def connect(self, stop: asyncio.Event | None = None) -> None:
        """Open the stream; returns promptly (not connected) when ``disconnect`` is
        called or ``stop`` is set meanwhile."""

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver ticks until the stream ends (a replay) or ``stop`` is set."""

    async def disconnect(self) -> None: ...


@runtime_checkable
class LiveAmendments(Protocol):
    """A live stream that also sends cancels and corrections of the trades it sent
    (Alpaca's data stream)."""

    def register_amendment_callback(self, cb: TickCallback) -> None:
        """``cb(amendment_frame)`` (``core.amendments.AMENDMENT_COLUMNS``) for every batch
        of cancels and corrections received, in arrival order with the ticks."""


@runtime_checkable
class TickHistory(Protocol):
    name: str

    def get_historical_ticks(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp
                             ) -> AsyncIterator[pd.DataFrame]:
        """Raw tick frames for [start, end), in pages."""


@runtime_checkable
class LatestTrade(Protocol):
    async def latest_trade_time(self, symbol: str) -> pd.Timestamp | None:
        """When the newest trade of ``symbol`` the vendor has happened (UTC), rounded up
        to the vendor's resolution (a time in seconds: the end of that second); None when
        the vendor has no trade of it."""


@runtime_checkable
class BarHistory(Protocol):
    name: str

    def get_bars(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp
                 ) -> pd.DataFrame:
        """The vendor's bars of ``timeframe`` in [start, end), canonical bar frame."""
