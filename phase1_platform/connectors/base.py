"""BaseConnector: the one interface every source implements.

Output is always the core's raw tick frame (columns ``timestamp`` (int64 UTC ns or
tz-aware), ``symbol``, ``price``, ``size`` and optionally ``exchange``, ``conditions``,
``trade_id``, ``sequence``, ``source``, ``source_row``) that ``TickNormalizer`` takes;
bar sources return the canonical bar frame (``core.schema.CANONICAL_COLUMNS``).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import pandas as pd

TickCallback = Callable[[pd.DataFrame], Awaitable[None] | None]


class ConnectorError(RuntimeError):
    """A connector problem the user can act on (bad key, unknown symbol, vendor down)."""


class BaseConnector(abc.ABC):
    name: str = "base"

    def __init__(self) -> None:
        self._callbacks: list[TickCallback] = []
        self.symbols: set[str] = set()

    def register_callback(self, cb: TickCallback) -> None:
        """``cb(raw_tick_frame)`` is called (or awaited) for every live batch received."""
        self._callbacks.append(cb)

    async def _emit(self, batch: pd.DataFrame) -> None:
        import inspect

        for cb in self._callbacks:
            out = cb(batch)
            if inspect.isawaitable(out):
                await out

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def disconnect(self) -> None: ...

    async def subscribe(self, symbols: Iterable[str]) -> None:
        self.symbols |= {s.upper() for s in symbols}

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        self.symbols -= {s.upper() for s in symbols}

    @abc.abstractmethod
    def get_historical_ticks(
        self, symbol: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> AsyncIterator[pd.DataFrame]:
        """Raw tick frames for [start, end), in pages."""
