"""The REST side of ``FinnhubConnector``: quote fallback while the stream is down,
quotes and candles on demand, trade history from ``/stock/tick`` (premium) and the time
of the newest trade from ``/quote`` (``LatestTrade``).

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
MAX_SECONDS = 9_000_000_000  # before 2255: a nanosecond time fits in int64


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

    # -- history (TickHistory, LatestTrade) --------------------------------------------
    async def latest_trade_time(self, symbol: str) -> pd.Timestamp | None:
        """``/quote``'s ``t`` is the second of the latest price: the newest trade happened
        in it, so the end of that second; None when Finnhub has no price (``t`` = 0)."""
        symbol = symbol.upper()
        data = await self.rest.get("/quote", {"symbol": symbol}, f"/quote {symbol}")
        t = data.get("t") if isinstance(data, dict) else None
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < MAX_SECONDS:
            raise ConnectorError(f"Finnhub REST /quote {symbol}: unexpected answer "
                                 f"(t is not a time in seconds)", retryable=True)
        if t == 0:
            return None
        return pd.Timestamp((t + 1) * 1_000_000_000 - 1, unit="ns", tz="UTC")

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
