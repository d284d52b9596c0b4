"""Alpaca market data through the official SDK (alpaca-py).

- Historical trades: ``/v2/stocks/trades`` page by page (``next_page_token``), each page
  yielded as a raw tick frame while the next is fetched. ``raw_data=True`` keeps the
  vendor's nanosecond RFC 3339 strings (the SDK's models cut them to microseconds).
- Live micro-batches: ``/v2/stocks/trades/latest`` polling; only trades not delivered
  before are emitted, and when the latest trade has moved past the cursor the gap is
  fetched from the historical endpoint so no trade between two polls is lost.
- Vendor bars (1Min..1Day) as a parity reference, converted to the canonical frame.
- Rate limits: a 429 is answered by waiting until ``X-RateLimit-Reset`` (epoch seconds),
  not by the SDK's fixed 3 s x 3 retries. ``RESTClient._one_request`` is overridden for
  that (checked against alpaca-py 0.44: ``_request`` loops on ``RetryException`` with a
  fixed sleep; our override never raises it, so the wait is ours alone).

Trade identity is (symbol, id, exchange, tape): ``trade_id = "<x>-<z>-<i>"`` and the
normalizer deduplicates on (symbol, trade_id), so overlapping pages or polls never
count a trade twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import datetime

import numpy as np
import pandas as pd
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest, StockLatestTradeRequest, StockTradesRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from ..core.calendar import exchange_tz
from ..core.schema import CANONICAL_COLUMNS, empty_canonical, empty_frame
from .base import BaseConnector, ConnectorError
from .settings import ConnectorSettings, load_settings

log = logging.getLogger(__name__)

# the raw tick frame this connector delivers (timestamps stay the vendor's strings)
RAW_TICK_COLUMNS: dict[str, object] = {
    "timestamp": "str",
    "symbol": "str",
    "price": "float64",
    "size": "float64",
    "exchange": "str",
    "conditions": "str",
    "trade_id": "str",
    "source": "str",
    "source_row": "int64",
}

# canonical timeframe -> Alpaca TimeFrame
TIMEFRAMES: dict[str, TimeFrame] = {
    "1m": TimeFrame(1, TimeFrameUnit.Minute),
    "5m": TimeFrame(5, TimeFrameUnit.Minute),
    "15m": TimeFrame(15, TimeFrameUnit.Minute),
    "30m": TimeFrame(30, TimeFrameUnit.Minute),
    "1h": TimeFrame(1, TimeFrameUnit.Hour),
    "4h": TimeFrame(4, TimeFrameUnit.Hour),
    "1d": TimeFrame(1, TimeFrameUnit.Day),
}

FEEDS = {"iex": DataFeed.IEX, "sip": DataFeed.SIP, "delayed_sip": DataFeed.DELAYED_SIP}


def reset_wait(headers, now: float, default: float = 3.0, cap: float = 120.0) -> float:
    """Seconds to wait after a 429: until ``X-RateLimit-Reset`` (epoch s), within [0, cap]."""
    value = headers.get("X-RateLimit-Reset") if headers is not None else None
    try:
        reset = float(str(value).split(",")[0])
    except (TypeError, ValueError):
        return default
    return float(min(max(reset - now, 0.0) + 0.25, cap))


class RateLimitAwareDataClient(StockHistoricalDataClient):
    """``StockHistoricalDataClient`` whose 429 handling honours ``X-RateLimit-Reset``.

    ``sleep`` and ``clock`` are injectable (tests record the wait instead of sleeping).
    5xx gateway errors are retried with a short exponential backoff.
    """

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        url_override: str | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_rate_limit_waits: int = 5,
        max_wait_seconds: float = 120.0,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(api_key, secret_key, raw_data=True, url_override=url_override)
        self._sleep = sleep
        self._clock = clock
        self._max_waits = max_rate_limit_waits
        self._max_wait_seconds = max_wait_seconds
        self._timeout = timeout
        self.rate_limit_waits: list[float] = []

    def __repr__(self) -> str:  # the SDK object holds the keys: never show them
        return f"{type(self).__name__}(base_url={str(self._base_url)!r})"

    def _one_request(self, method: str, url: str, opts: dict, retry: int) -> dict:
        opts = {**opts, "timeout": self._timeout}
        waits = 0
        while True:
            response = self._session.request(method, url, **opts)
            status = response.status_code
            if status == 429 and waits < self._max_waits:
                wait = reset_wait(response.headers, self._clock(), cap=self._max_wait_seconds)
                log.warning("Alpaca rate limit reached; waiting %.1f s until X-RateLimit-Reset",
                            wait)
                self.rate_limit_waits.append(wait)
                self._sleep(wait)
                waits += 1
                continue
            if status in (502, 503, 504) and waits < self._max_waits:
                self._sleep(min(2.0**waits, 30.0))
                waits += 1
                continue
            break
        try:
            response.raise_for_status()
        except requests.HTTPError as http_error:
            raise APIError(response.text, http_error) from None
        if response.text != "":
            return response.json()
        return {}


class AlpacaConnector(BaseConnector):
    name = "alpaca"

    def __init__(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        *,
        base_url: str | None = None,
        feed: str | None = None,
        settings: ConnectorSettings | None = None,
        page_limit: int = 10_000,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_rate_limit_waits: int = 5,
        calendar: str = "XNYS",
    ) -> None:
        super().__init__()
        settings = settings or load_settings()
        key = api_key or settings.require("APCA_API_KEY_ID")
        secret = secret_key or settings.require("APCA_API_SECRET_KEY")
        self.base_url = base_url or settings.ALPACA_DATA_URL
        self.feed = (feed or settings.ALPACA_FEED).lower()
        if self.feed not in FEEDS:
            raise ConnectorError(
                f"unknown Alpaca feed {self.feed!r}: use one of {', '.join(FEEDS)}"
            )
        self.page_limit = int(page_limit)
        self.calendar = calendar
        self.client = RateLimitAwareDataClient(
            key, secret, url_override=self.base_url, sleep=sleep, clock=clock,
            max_rate_limit_waits=max_rate_limit_waits,
        )
        self.source = f"alpaca:{self.feed}"
        self._rows = 0  # arrival position across everything this connector delivered
        self._cursor: dict[str, tuple[str, set[str]]] = {}  # symbol -> (last t, ids at t)
        self._connected = False

    def __repr__(self) -> str:
        return f"AlpacaConnector(feed={self.feed!r}, base_url={self.base_url!r})"

    # -- BaseConnector -------------------------------------------------------------

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False

    async def get_historical_ticks(
        self, symbol: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> AsyncIterator[pd.DataFrame]:
        """Raw tick frames for [start, end), one per vendor page."""
        pages = self.iter_trade_pages(symbol, start, end)
        while True:
            frame = await asyncio.to_thread(next, pages, None)
            if frame is None:
                return
            yield frame

    # -- historical trades ---------------------------------------------------------

    def iter_trade_pages(self, symbol: str, start, end) -> Iterable[pd.DataFrame]:
        """Blocking generator of raw tick frames, one per page, trades in [start, end).

        Pages are requested through the SDK client (its auth, URL and our 429 handling)
        one at a time, so each is yielded as soon as it arrives; the SDK's
        ``get_stock_trades`` would hold the whole window in memory first.
        """
        symbol = symbol.upper()
        start_ts, end_ts = _utc(start), _utc(end)
        for trades in self._trade_pages(symbol, start_ts, end_ts):
            frame = self.trades_frame(symbol, trades, end_ns=end_ts.value)
            if len(frame):
                yield frame

    def _trade_pages(
        self, symbol: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> Iterator[list[dict]]:
        """The vendor's trade objects of ``symbol`` in [start, end] (Alpaca's end is
        inclusive), one list per page, following ``next_page_token``."""
        request = StockTradesRequest(
            symbol_or_symbols=[symbol], start=_floor_us(start), end=_ceil_us(end),
            feed=FEEDS[self.feed],
        )
        params = request.to_request_fields()
        params["limit"] = self.page_limit
        token = None
        while True:
            if token is not None:
                params["page_token"] = token
            response = self._call(self.client.get, "/stocks/trades", params)
            yield (response.get("trades") or {}).get(symbol, [])
            token = response.get("next_page_token")
            if not token:
                return

    def fetch_trades(self, symbol: str, start, end) -> pd.DataFrame:
        """All trades of [start, end) as one raw tick frame (empty frame if none)."""
        frames = list(self.iter_trade_pages(symbol, start, end))
        if not frames:
            return _empty_raw()
        return pd.concat(frames, ignore_index=True)

    def trades_frame(self, symbol: str, trades: list[dict], end_ns: int | None = None
                     ) -> pd.DataFrame:
        """Alpaca trade objects (t,x,p,s,c,i,z) -> the raw tick frame the normalizer takes.

        Timestamps stay the vendor's strings (nanoseconds kept; a bad one is quarantined
        by the normalizer, not dropped here).
        """
        if not trades:
            return _empty_raw()
        raw = pd.DataFrame.from_records(trades)
        for col in ("t", "x", "p", "s", "c", "i", "z"):
            if col not in raw.columns:
                raw[col] = None
        if end_ns is not None:
            ts = pd.to_datetime(raw["t"], utc=True, format="ISO8601", errors="coerce")
            late = (ts.astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").view("int64")
                    >= end_ns) & ts.notna().to_numpy()
            raw = raw[~late]  # Alpaca's end is inclusive; ours is exclusive
        n = len(raw)
        exchange = raw["x"].fillna("").astype(str)
        tape = raw["z"].fillna("").astype(str)
        ids = raw["i"].astype("string").fillna("")
        trade_id = (exchange + "-" + tape + "-" + ids).where(ids.ne("").to_numpy(), "")
        conditions = raw["c"].astype(object).str.join(" ").fillna("")
        frame = pd.DataFrame(
            {
                "timestamp": raw["t"].astype("string").fillna("").to_numpy(),
                "symbol": symbol,
                "price": pd.to_numeric(raw["p"], errors="coerce").to_numpy("float64"),
                "size": pd.to_numeric(raw["s"], errors="coerce").to_numpy("float64"),
                "exchange": exchange.to_numpy(),
                "conditions": conditions.to_numpy(),
                "trade_id": trade_id.to_numpy(),
                "source": self.source,
                "source_row": np.arange(self._rows, self._rows + n, dtype="int64"),
            }
        )
        self._rows += n
        return frame

    # -- live polling --------------------------------------------------------------

    def start_from(self, symbol: str, start) -> None:
        """Make the next poll deliver every trade of ``symbol`` from ``start`` on."""
        ts = _utc(start)
        self._cursor[symbol.upper()] = (ts.isoformat(), set())

    def poll_once(self, symbols: Iterable[str] | None = None) -> pd.DataFrame:
        """One poll: the trades not delivered before, for every subscribed symbol.

        First poll of a symbol: its latest trade. Later polls: if the latest trade is
        new, every trade from the cursor up to it (historical endpoint), minus those
        already delivered at the cursor's timestamp.
        """
        symbols = sorted({s.upper() for s in (symbols or self.symbols)})
        if not symbols:
            return _empty_raw()
        request = StockLatestTradeRequest(symbol_or_symbols=symbols, feed=FEEDS[self.feed])
        response = self._call(self.client.get, "/stocks/trades/latest",
                              request.to_request_fields())
        latest = response.get("trades") or {}
        frames = []
        for sym in symbols:
            trade = latest.get(sym)
            if not trade:
                continue
            frames.append(self._new_trades(sym, trade))
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else _empty_raw()

    def _new_trades(self, symbol: str, trade: dict) -> pd.DataFrame:
        key = _trade_key(trade)
        cursor = self._cursor.get(symbol)
        if cursor is None:
            self._cursor[symbol] = (trade["t"], {key})
            return self.trades_frame(symbol, [trade])
        last_t, seen = cursor
        last_ts, trade_ts = _utc(last_t), _utc(trade["t"])
        if key in seen or trade_ts < last_ts:
            return _empty_raw()
        # gap fill [last_t, trade.t] inclusive (Alpaca end is inclusive)
        gap = [t for page in self._trade_pages(symbol, last_ts, trade_ts) for t in page]
        if not any(_trade_key(t) == key for t in gap):
            gap.append(trade)
        fresh = [t for t in gap if _trade_key(t) not in seen
                 and last_ts <= _utc(t["t"]) <= trade_ts]
        if not fresh:
            return _empty_raw()
        newest = max(fresh, key=lambda t: _utc(t["t"]))["t"]
        newest_ts = _utc(newest)
        at_newest = {_trade_key(t) for t in fresh if _utc(t["t"]) == newest_ts}
        if newest_ts == last_ts:
            at_newest |= seen
        self._cursor[symbol] = (newest, at_newest)
        return self.trades_frame(symbol, fresh)

    async def run_polling(self, interval: float = 1.0, stop: asyncio.Event | None = None) -> None:
        """Poll every ``interval`` seconds, emitting each non-empty batch to the callbacks."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            batch = await asyncio.to_thread(self.poll_once)
            if len(batch):
                await self._emit(batch)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    # -- vendor bars ---------------------------------------------------------------

    def get_bars(self, symbol: str, timeframe: str, start, end) -> pd.DataFrame:
        """Vendor bars in the canonical frame; bars whose open is in [start, end).

        Alpaca's 1Day bars are stamped at midnight New York (04:00Z/05:00Z); the
        canonical daily timestamp is the session date's midnight in exchange time, in
        UTC, which is the same instant (normalised here whatever the vendor stamp).
        """
        if timeframe not in TIMEFRAMES:
            raise ConnectorError(
                f"Alpaca bars: unsupported timeframe {timeframe!r} (use {', '.join(TIMEFRAMES)})"
            )
        symbol = symbol.upper()
        start_ts, end_ts = _utc(start), _utc(end)
        request = StockBarsRequest(
            symbol_or_symbols=[symbol], timeframe=TIMEFRAMES[timeframe],
            start=_floor_us(start_ts), end=_ceil_us(end_ts),
            feed=FEEDS[self.feed], adjustment=Adjustment.RAW,
        )
        try:
            data = self._call(self.client.get_stock_bars, request)
        except ValueError as exc:  # SDK: response with no known data key
            raise ConnectorError(f"Alpaca bars: unexpected response: {exc}") from None
        bars = (data or {}).get(symbol, [])
        return self.bars_frame(symbol, timeframe, bars, start_ts.value, end_ts.value)

    def bars_frame(self, symbol: str, timeframe: str, bars: list[dict],
                   start_ns: int | None = None, end_ns: int | None = None) -> pd.DataFrame:
        if not bars:
            return empty_canonical()
        raw = pd.DataFrame.from_records(bars)
        ts = pd.to_datetime(raw["t"], utc=True, format="ISO8601", errors="coerce")
        if ts.isna().any():
            bad = raw.loc[ts.isna(), "t"].iloc[0]
            raise ConnectorError(f"Alpaca bars: unparseable bar timestamp {bad!r}")
        if timeframe == "1d":
            tz = exchange_tz(self.calendar)
            ts = ts.dt.tz_convert(tz).dt.normalize().dt.tz_convert("UTC")
        ts_ns = ts.astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").view("int64")
        frame = pd.DataFrame(
            {
                "symbol": symbol,
                "timeframe": timeframe,
                "ts": ts_ns,
                "open": pd.to_numeric(raw["o"]).to_numpy("float64"),
                "high": pd.to_numeric(raw["h"]).to_numpy("float64"),
                "low": pd.to_numeric(raw["l"]).to_numpy("float64"),
                "close": pd.to_numeric(raw["c"]).to_numpy("float64"),
                "volume": pd.to_numeric(raw["v"]).to_numpy("float64"),
                "trade_count": pd.to_numeric(raw.get("n"), errors="coerce")
                if "n" in raw else np.nan,
                "vwap": pd.to_numeric(raw.get("vw"), errors="coerce") if "vw" in raw else np.nan,
            }
        )
        keep = np.ones(len(frame), dtype=bool)
        if start_ns is not None and timeframe != "1d":
            keep &= frame["ts"].to_numpy() >= start_ns
        if end_ns is not None and timeframe != "1d":
            keep &= frame["ts"].to_numpy() < end_ns
        frame = frame[keep].sort_values("ts", kind="stable").reset_index(drop=True)
        return frame.astype(CANONICAL_COLUMNS)[list(CANONICAL_COLUMNS)]

    # -- errors --------------------------------------------------------------------

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except APIError as exc:
            raise ConnectorError(_api_error_text(exc, self.base_url)) from None
        except requests.RequestException as exc:
            where = self.base_url or "https://data.alpaca.markets"
            raise ConnectorError(
                f"cannot reach Alpaca at {where}: {type(exc).__name__}"
            ) from None


def _api_error_text(exc: APIError, base_url: str | None) -> str:
    status = exc.status_code
    try:
        message = exc.message
    except Exception:
        message = str(exc)[:200]
    if status in (401, 403):
        return (
            f"Alpaca rejected the API key (HTTP {status}: {message}): check "
            "APCA_API_KEY_ID and APCA_API_SECRET_KEY (and that the key may use the chosen feed)"
        )
    if status == 429:
        return ("Alpaca rate limit still exceeded after waiting for X-RateLimit-Reset "
                "several times: retry later or lower the request rate")
    if status in (400, 404, 422):
        return f"Alpaca rejected the request (HTTP {status}): {message}"
    return f"Alpaca error (HTTP {status}): {message}"


def _trade_key(trade: dict) -> str:
    return f"{trade.get('x', '')}-{trade.get('z', '')}-{trade.get('i', '')}|{trade.get('t')}"


def _utc(value) -> pd.Timestamp:
    if isinstance(value, (int, np.integer)):
        return pd.Timestamp(int(value), unit="ns", tz="UTC")
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        raise ConnectorError(f"timestamp without time zone: {value!r} (give UTC or an offset)")
    return ts.tz_convert("UTC")


def _floor_us(ts: pd.Timestamp) -> datetime:
    return ts.floor("us").to_pydatetime()


def _ceil_us(ts: pd.Timestamp) -> datetime:
    return ts.ceil("us").to_pydatetime()


def _empty_raw() -> pd.DataFrame:
    return empty_frame(RAW_TICK_COLUMNS)
