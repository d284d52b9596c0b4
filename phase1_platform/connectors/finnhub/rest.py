"""Finnhub REST (``https://finnhub.io/api/v1``): rate limited, 429-aware, clear errors.

The token travels in the ``X-Finnhub-Token`` header; a client-side limiter keeps to
Finnhub's 60 calls per minute and 30 per second; a 429 is answered by waiting
(``Retry-After`` when given, else backoff); 403 on a premium endpoint (``/stock/candle``,
``/stock/tick``) is a clear ``ConnectorError``. No error text shows a secret, whatever
the answer's body echoes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pandas as pd

from ..base import ConnectorError
from ..net import RateLimiter, backoff_delay, register_secret, retry_after_seconds
from .config import DEFAULT_REST_URL, KEY_VARIABLE
from .parsing import CANDLE_RESOLUTIONS, candles_frame, tick_page

log = logging.getLogger(__name__)


class FinnhubRestClient:
    """Finnhub REST calls with the rate limiter, 429 handling and clear errors."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_REST_URL,
        *,
        limiter: RateLimiter | None = None,
        max_retries: int = 5,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key:
            raise ConnectorError(f"missing API key {KEY_VARIABLE}")
        register_secret(api_key)
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter or RateLimiter(sleep=sleep)
        self.max_retries = max_retries
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers={"X-Finnhub-Token": api_key},
            timeout=timeout,
            transport=transport,
        )
        self.calls = 0
        self.throttled = 0  # 429 answers received
        self.pending_quarantine: list[pd.DataFrame] = []  # bad /stock/tick rows

    def __repr__(self) -> str:
        return f"FinnhubRestClient(base_url={self.base_url!r}, key=***)"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, endpoint: str, params: dict[str, Any], what: str | None = None) -> Any:
        what = what or endpoint
        path = endpoint.lstrip("/")  # no double slash (finnhub-python has one)
        for attempt in range(self.max_retries + 1):
            await self.limiter.acquire()
            self.calls += 1
            try:
                resp = await self._client.get(path, params=params)
            except httpx.HTTPError as exc:
                if attempt >= self.max_retries:
                    raise ConnectorError(
                        f"Finnhub REST {what} unreachable at {self.base_url}: "
                        f"{type(exc).__name__}: {exc}", retryable=True) from None
                await self._sleep(backoff_delay(attempt, 0.5, 10.0, self._rng))
                continue
            status = resp.status_code
            if status == 200:
                try:
                    return resp.json()
                except ValueError:
                    raise ConnectorError(
                        f"Finnhub REST {what}: answer is not JSON ({resp.text[:80]!r})",
                        retryable=True) from None
            if status == 429 or status >= 500:
                if status == 429:
                    self.throttled += 1
                if attempt >= self.max_retries:
                    raise ConnectorError(
                        f"Finnhub REST {what}: HTTP {status} after {attempt + 1} attempts "
                        + ("(rate limit: 60 calls/min, 30/s)" if status == 429 else ""),
                        retryable=True)
                wait = retry_after_seconds(resp.headers.get("Retry-After"))
                if wait is None:
                    wait = backoff_delay(attempt, 1.0, 30.0, self._rng)
                log.warning("Finnhub REST %s: HTTP %s, retrying in %.1fs", what, status, wait)
                await self._sleep(wait)
                continue
            if status == 401:
                raise ConnectorError(
                    f"Finnhub REST {what}: HTTP 401, the API key was refused: "
                    f"check {KEY_VARIABLE}")
            if status == 403:
                raise ConnectorError(
                    f"Finnhub REST {what}: HTTP 403, access denied: this endpoint is premium "
                    f"(not included in a free Finnhub plan) or {KEY_VARIABLE} lacks access")
            raise ConnectorError(f"Finnhub REST {what}: HTTP {status}: {resp.text[:120]}")
        raise AssertionError("unreachable")  # pragma: no cover

    async def quote(self, symbol: str) -> dict:
        """``/quote``: current price ``c``, day ``o/h/l``, previous close ``pc``, time ``t``."""
        symbol = symbol.upper()
        data = await self.get("/quote", {"symbol": symbol}, f"/quote {symbol}")
        if not isinstance(data, dict) or "c" not in data:
            raise ConnectorError(f"Finnhub REST /quote {symbol}: unexpected answer",
                                 retryable=True)
        if not data.get("t") and not data.get("c"):
            raise ConnectorError(f"Finnhub has no quote for {symbol!r}: unknown symbol?")
        return {"symbol": symbol, **data}

    async def candles(
        self, symbol: str, resolution: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> pd.DataFrame:
        """``/stock/candle`` (premium) as a canonical bar frame (no trade_count, vwap)."""
        symbol = symbol.upper()
        timeframe = CANDLE_RESOLUTIONS.get(str(resolution))
        if timeframe is None:
            raise ValueError(
                f"unsupported Finnhub resolution {resolution!r} "
                f"(one of {', '.join(CANDLE_RESOLUTIONS)})"
            )
        params = {
            "symbol": symbol,
            "resolution": str(resolution),
            "from": int(pd.Timestamp(start).timestamp()),
            "to": int(pd.Timestamp(end).timestamp()),
        }
        data = await self.get("/stock/candle", params, f"/stock/candle {symbol}")
        return candles_frame(data, symbol, timeframe)

    async def tick_pages(
        self, symbol: str, date: str, limit: int = 25_000
    ) -> AsyncIterator[pd.DataFrame]:
        """``/stock/tick`` (premium) for one date, paged with ``skip``: raw tick frames.

        Rows whose fields have the wrong type go to ``pending_quarantine`` (the caller
        takes them); ``source_row`` is the row's position in the vendor's day.
        """
        symbol = symbol.upper()
        skip = 0
        while True:
            params = {"symbol": symbol, "date": date, "limit": limit, "skip": skip}
            data = await self.get("/stock/tick", params, f"/stock/tick {symbol} {date}")
            frame, quarantine, n = tick_page(data, symbol, date, skip)
            if n == 0:
                return
            if len(quarantine):
                self.pending_quarantine.append(quarantine)
            yield frame
            skip += n
            total = data.get("total")
            if n < limit or (isinstance(total, int) and skip >= total):
                return
