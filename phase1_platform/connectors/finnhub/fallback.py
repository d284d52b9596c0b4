"""The REST side of ``FinnhubConnector``: quote fallback while the stream is down,
quotes and candles on demand, and trade history from ``/stock/tick`` (premium).

Quotes go to the quote callbacks only: they are not trades, never enter the tick
stream and cannot change bars.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pandas as pd

from ..base import ConnectorError, call

log = logging.getLogger(__name__)


class RestSide:
    """Mixin of ``FinnhubConnector`` (needs ``rest``, ``symbols``, ``stats``, ...)."""

    # -- REST fallback -----------------------------------------------------------------
    async def _start_fallback(self) -> None:
        if not self.rest_fallback or not self.symbols or self._stopping:
            return
        if self._fallback_task is None or self._fallback_task.done():
            self._fallback_task = asyncio.create_task(self._poll_quotes(),
                                                      name="finnhub-rest-fallback")

    async def _stop_fallback(self) -> None:
        task, self._fallback_task = self._fallback_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _poll_quotes(self) -> None:
        while not self._stopping and not self.connected:
            for symbol in sorted(self.symbols):
                try:
                    quote = await self.rest.quote(symbol)
                except ConnectorError as exc:
                    log.warning("Finnhub REST fallback: %s", exc)
                    continue
                self.stats.quotes += 1
                self.last_quotes[symbol] = quote
                for cb in self._quote_callbacks:
                    try:
                        await call(cb, quote)
                    except Exception:  # noqa: BLE001
                        log.exception("Finnhub quote callback failed")
            await asyncio.sleep(self.fallback_interval)

    async def get_quote(self, symbol: str) -> dict:
        return await self.rest.quote(symbol)

    async def get_candles(
        self, symbol: str, resolution: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> pd.DataFrame:
        return await self.rest.candles(symbol, resolution, start, end)

    # -- history (TickHistory) ---------------------------------------------------------
    async def get_historical_ticks(
        self, symbol: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> AsyncIterator[pd.DataFrame]:
        """Trades of [start, end) from ``/stock/tick`` (premium: 403 is a ConnectorError)."""
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end need a time zone (UTC or an offset)")
        if end <= start:
            raise ValueError(f"empty window: start {start} is not before end {end}")
        ny = "America/New_York"
        days = pd.date_range(start.tz_convert(ny).normalize(), end.tz_convert(ny).normalize(),
                             freq="D")
        lo, hi = start.tz_convert("UTC"), end.tz_convert("UTC")
        rest = self.rest
        for day in days:
            async for page in rest.tick_pages(symbol, day.strftime("%Y-%m-%d")):
                while rest.pending_quarantine:
                    await self._quarantine(rest.pending_quarantine.pop(0))
                keep = ((page["timestamp"] >= lo) & (page["timestamp"] < hi)).to_numpy(bool)
                if keep.any():
                    yield page[keep].reset_index(drop=True)
