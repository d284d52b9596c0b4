"""Finnhub trade delivery: numbering, micro-batches, retries to callbacks, quarantine.

A trade item is stamped once, on receipt, with the next ``source_row``; items received
within ``batch_linger`` seconds (at most ``max_batch_rows``) are sealed into one raw
tick frame (``parsing.trade_frame``: bad items become quarantine rows with their
reason). A sealed frame lives in one pending buffer until every callback has taken it:
a callback that fails gets the *same* rows again later (so an idempotent landing table
keeps one copy) and callbacks that already took them are not called again.
Reconnecting never re-sends the buffer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..base import call, quarantine_frame
from ..fields import raw_text
from .parsing import Reason, trade_frame

log = logging.getLogger(__name__)

QuoteCallback = Callable[[dict], Awaitable[None] | None]
QuarantineCallback = Callable[[pd.DataFrame], Awaitable[None] | None]
ErrorCallback = Callable[[str], Awaitable[None] | None]


@dataclass
class _Pending:
    frame: pd.DataFrame
    done: set[int] = field(default_factory=set)


@dataclass
class StreamStats:
    connections: int = 0  # successful handshakes
    reconnects: int = 0  # handshakes after the first
    idle_reconnects: int = 0
    disconnects: int = 0
    messages: int = 0
    trade_messages: int = 0
    trades: int = 0  # trade items delivered as tick rows
    bad_trades: int = 0  # trade items quarantined
    pings: int = 0
    errors: int = 0
    malformed: int = 0  # frames quarantined
    delivery_failures: int = 0
    quotes: int = 0


class Deliveries:
    """Mixin of ``FinnhubConnector`` (needs ``source``, ``stats``, ``_callbacks`` and
    ``BaseConnector``'s quarantine methods)."""

    source: str
    stats: StreamStats
    _callbacks: list

    def __init__(self, batch_linger: float = 0.05, max_batch_rows: int = 10_000) -> None:
        self.batch_linger = batch_linger
        self.max_batch_rows = max_batch_rows
        self._open_items: list[tuple[int, dict]] = []
        self._open_since = 0.0
        self._pending: deque[_Pending] = deque()
        self._next_row = 0
        self._deliver_lock = asyncio.Lock()

    @property
    def rows_received(self) -> int:
        """Rows numbered so far: trade items and quarantined frames."""
        return self._next_row

    @property
    def pending_rows(self) -> int:
        return sum(len(p.frame) for p in self._pending)

    def _take_rows(self, n: int) -> np.ndarray:
        rows = np.arange(self._next_row, self._next_row + n, dtype="int64")
        self._next_row += n
        return rows

    async def _on_trades(self, data: list) -> None:
        rows = self._take_rows(len(data))
        if not self._open_items:
            self._open_since = asyncio.get_running_loop().time()
        bad = []
        for row, item in zip(rows.tolist(), data, strict=True):
            if isinstance(item, dict):
                self._open_items.append((row, item))
            else:
                bad.append((row, item))
        if bad:
            self.stats.bad_trades += len(bad)
            await self._quarantine(quarantine_frame(
                self.source, [r for r, _ in bad], [Reason.BAD_TRADE_ITEM] * len(bad),
                [raw_text(item) for _, item in bad]))

    def _seal(self) -> pd.DataFrame | None:
        """Turn the trades received since the last batch into one raw tick frame."""
        items, self._open_items = self._open_items, []
        if not items:
            return None
        rows = np.fromiter((r for r, _ in items), dtype="int64", count=len(items))
        frame, quarantine = trade_frame([d for _, d in items], rows, self.source)
        self.stats.trades += len(frame)
        self.stats.bad_trades += len(quarantine)
        if len(frame):
            self._pending.append(_Pending(frame))
        return quarantine

    async def _seal_and_flush(self) -> bool:
        quarantine = self._seal()
        if quarantine is not None and len(quarantine):
            await self._quarantine(quarantine)  # type: ignore[attr-defined]
        return await self.flush()

    async def flush(self) -> bool:
        """Deliver pending batches in order; False if a callback failed (kept for later)."""
        async with self._deliver_lock:
            while self._pending:
                p = self._pending[0]
                for i, cb in enumerate(self._callbacks):
                    if i in p.done:
                        continue
                    try:
                        await call(cb, p.frame)
                    except Exception as exc:  # noqa: BLE001 - retried with the same rows
                        self.stats.delivery_failures += 1
                        log.warning("Finnhub callback failed (%s: %s); %d rows kept for retry",
                                    type(exc).__name__, exc, self.pending_rows)
                        return False
                    p.done.add(i)
                self._pending.popleft()
        return True

    async def _quarantine_frame(self, text: str, reason: str) -> None:
        self.stats.malformed += 1
        row = int(self._take_rows(1)[0])
        await self._quarantine(  # type: ignore[attr-defined]
            quarantine_frame(self.source, [row], [reason], [text[:10_000]]))
