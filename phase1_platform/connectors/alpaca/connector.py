"""AlpacaConnector: Alpaca market data through the official SDK (alpaca-py).

- Historical trades (``TickHistory``): ``/v2/stocks/trades`` page by page
  (``next_page_token``), each page yielded as a raw tick frame while the next is
  fetched. ``raw_data=True`` keeps the vendor's nanosecond RFC 3339 strings. The
  newest trade (``LatestTrade``): ``/v2/stocks/trades/latest``.
- Live micro-batches (``LiveTicks``): ``/v2/stocks/trades/latest`` polling every
  ``poll_interval`` seconds (``run(stop)``); only trades not delivered before are
  emitted, and when the latest trade has moved past the cursor the gap is fetched from
  the historical endpoint so no trade between two polls is lost. A poll that fails for
  a passing reason (outage, unreadable reply) is logged and polling goes on; a refused
  key ends it with its ``ConnectorError``.
- Vendor bars (``BarHistory``, 1Min..1Day) as a parity reference, canonical frame.

Trades are checked field by field (``parsing``); a bad trade is a quarantine row with
its reason (``quarantine``, quarantine callbacks), the rest of the page is kept.
Trade identity is (symbol, id, exchange, tape): ``trade_id = "<x>-<z>-<i>"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import datetime

import numpy as np
import pandas as pd
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.requests import StockBarsRequest, StockLatestTradeRequest, StockTradesRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from ...core.calendar import exchange_tz
from ..base import BaseConnector, ConnectorError, quarantine_frame
from ..fields import raw_text
from ..settings import ConnectorSettings, load_settings, resolve_key
from . import client as _client
from .parsing import (
    bars_frame,
    check_trades,
    empty_raw,
    latest_trades,
    page_items,
    raw_tick_frame,
)

log = logging.getLogger(__name__)

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
_BAD_SEEN_PER_SYMBOL = 1000  # bad latest/gap trades remembered, so a poll repeats none


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
        poll_interval: float = 1.0,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        max_rate_limit_waits: int = 5,
        calendar: str = "XNYS",
    ) -> None:
        super().__init__()
        settings = settings or load_settings()
        # an empty key or secret counts as not given: it comes from the settings
        key = resolve_key(api_key or None, "APCA_API_KEY_ID", settings)
        secret = resolve_key(secret_key or None, "APCA_API_SECRET_KEY", settings)
        self.base_url = base_url or settings.ALPACA_DATA_URL
        self.feed = (feed or settings.ALPACA_FEED).lower()
        if self.feed not in FEEDS:
            raise ConnectorError(
                f"unknown Alpaca feed {self.feed!r}: use one of {', '.join(FEEDS)}"
            )
        self.page_limit = int(page_limit)
        self.poll_interval = float(poll_interval)
        self.calendar = calendar
        self._credentials = (key, secret)  # the data stream logs in with them (``stream``)
        self.client = _client.RateLimitAwareDataClient(
            key, secret, url_override=self.base_url, sleep=sleep, clock=clock,
            max_rate_limit_waits=max_rate_limit_waits,
        )
        self.source = f"alpaca:{self.feed}"
        self._rows = 0  # arrival position across everything this connector received
        self._cursor: dict[str, tuple[int, set[str]]] = {}  # symbol -> (last ns, keys at it)
        self._bad_seen: dict[str, OrderedDict[str, None]] = {}
        self._connected = False
        self.poll_errors = 0  # polls that failed for a passing reason

    def __repr__(self) -> str:
        return f"AlpacaConnector(feed={self.feed!r}, base_url={self.base_url!r})"

    # -- LiveTicks -----------------------------------------------------------------
    async def connect(self, stop: asyncio.Event | None = None) -> None:
        self.client.interrupt.clear()
        self._connected = True

    async def disconnect(self) -> None:
        self.client.interrupt.set()  # a rate-limit wait in a worker thread ends now
        self._connected = False
        await self._deliver_quarantine()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``poll_interval`` seconds until ``stop`` is set."""
        await self.run_polling(self.poll_interval, stop)

    async def run_polling(self, interval: float = 1.0, stop: asyncio.Event | None = None) -> None:
        """Poll every ``interval`` seconds, emitting each non-empty batch to the callbacks."""
        stop = stop or asyncio.Event()
        watcher = asyncio.create_task(self._interrupt_when(stop))
        try:
            while not stop.is_set():
                try:
                    batch = await asyncio.to_thread(self.poll_once)
                except ConnectorError as exc:
                    await self._deliver_quarantine()
                    if stop.is_set():
                        break
                    if not exc.retryable:
                        raise
                    self.poll_errors += 1
                    log.warning("Alpaca poll failed, polling goes on: %s", exc.one_line())
                else:
                    await self._deliver_quarantine()
                    if len(batch):
                        await self._emit(batch)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)
        finally:
            watcher.cancel()

    async def _interrupt_when(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.client.interrupt.set()

    # -- TickHistory ---------------------------------------------------------------
    async def get_historical_ticks(
        self, symbol: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> AsyncIterator[pd.DataFrame]:
        """Raw tick frames for [start, end), one per vendor page."""
        pages = iter(self.iter_trade_pages(symbol, start, end))
        while True:
            frame = await asyncio.to_thread(next, pages, None)
            await self._deliver_quarantine()
            if frame is None:
                return
            yield frame

    async def latest_trade_time(self, symbol: str) -> pd.Timestamp | None:
        """The time of the newest trade of ``symbol`` (``/v2/stocks/trades/latest``); None
        when Alpaca has none or its time cannot be read."""
        return await asyncio.to_thread(self._latest_trade_time, symbol.upper())

    def _latest_trade_time(self, symbol: str) -> pd.Timestamp | None:
        request = StockLatestTradeRequest(symbol_or_symbols=[symbol], feed=FEEDS[self.feed])
        trade = latest_trades(self._call(self.client.get, "/stocks/trades/latest",
                                         request.to_request_fields())).get(symbol)
        checked, _ = check_trades([] if trade is None else [trade])
        return _utc(int(checked["ns"].iloc[0])) if len(checked) else None

    def iter_trade_pages(self, symbol: str, start, end) -> Iterable[pd.DataFrame]:
        """Blocking generator of raw tick frames, one per page, trades in [start, end).

        Pages are requested through the SDK client (its auth, URL and our 429 handling)
        one at a time, so each is yielded as soon as it arrives.
        """
        symbol = symbol.upper()
        start_ts, end_ts = _utc(start), _utc(end)
        for trades in self._pages("/stocks/trades", self._trades_params(symbol, start_ts, end_ts),
                                  symbol, "trades"):
            frame = self.trades_frame(symbol, trades, end_ns=end_ts.value)
            if len(frame):
                yield frame

    def _trades_params(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp) -> dict:
        """Trades of ``symbol`` in [start, end] (Alpaca's end is inclusive)."""
        request = StockTradesRequest(symbol_or_symbols=[symbol], start=_floor_us(start),
                                     end=_ceil_us(end), feed=FEEDS[self.feed])
        return request.to_request_fields()

    def _pages(self, path: str, params: dict, symbol: str, key: str) -> Iterator[list]:
        """The vendor's ``key`` objects of ``symbol``, one list per page."""
        params = {**params, "limit": self.page_limit}
        while True:
            response = self._call(self.client.get, path, params)
            items, token = page_items(response, symbol, key)
            yield items
            if not token:
                return
            params["page_token"] = token

    def fetch_trades(self, symbol: str, start, end) -> pd.DataFrame:
        """All trades of [start, end) as one raw tick frame (empty frame if none)."""
        frames = list(self.iter_trade_pages(symbol, start, end))
        if not frames:
            return empty_raw()
        return pd.concat(frames, ignore_index=True)

    def trades_frame(self, symbol: str, trades: list, end_ns: int | None = None
                     ) -> pd.DataFrame:
        """Alpaca trade objects (t,x,p,s,c,i,z) -> the raw tick frame the normalizer takes.

        Every trade takes the next arrival position; bad ones are quarantined with it.
        Trades at or after ``end_ns`` are left out (Alpaca's end is inclusive).
        """
        checked, bad = check_trades(trades)
        first = self._rows
        self._rows += len(trades)
        if bad:
            self._record_quarantine(quarantine_frame(
                self.source, [first + p for p, _, _ in bad], [r for _, _, r in bad],
                [raw_text(item) for _, item, _ in bad]))
        if end_ns is not None:
            checked = checked[checked["ns"].to_numpy() < end_ns]
        return raw_tick_frame(checked, symbol.upper(), self.source,
                              first + checked["pos"].to_numpy())

    # -- live polling --------------------------------------------------------------
    def start_from(self, symbol: str, start) -> None:
        """Make the next poll deliver every trade of ``symbol`` from ``start`` on."""
        self._cursor[symbol.upper()] = (_utc(start).value, set())

    def poll_once(self, symbols: Iterable[str] | None = None) -> pd.DataFrame:
        """One poll: the trades not delivered before, for every subscribed symbol.

        First poll of a symbol: its latest trade. Later polls: if the latest trade is
        new, every trade from the cursor up to it (historical endpoint), minus those
        already delivered at the cursor's timestamp.
        """
        symbols = sorted({s.upper() for s in (symbols or self.symbols)})
        if not symbols:
            return empty_raw()
        request = StockLatestTradeRequest(symbol_or_symbols=symbols, feed=FEEDS[self.feed])
        latest = latest_trades(self._call(self.client.get, "/stocks/trades/latest",
                                          request.to_request_fields()))
        frames = []
        for sym in symbols:
            trade = latest.get(sym)
            if trade is None:
                continue
            checked, bad = check_trades([trade])
            if bad:
                self._quarantine_polled(sym, bad)
                continue
            frames.append(self._new_trades(sym, checked))
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else empty_raw()

    def _quarantine_polled(self, symbol: str, bad: list[tuple[int, object, str]]) -> None:
        """Quarantine bad polled trades once each (a poll sees the same ones again)."""
        seen = self._bad_seen.setdefault(symbol, OrderedDict())
        rows, reasons, raws = [], [], []
        for _, item, reason in bad:
            raw = raw_text(item)
            if raw in seen:
                continue
            seen[raw] = None
            if len(seen) > _BAD_SEEN_PER_SYMBOL:
                seen.popitem(last=False)
            rows.append(self._rows)
            self._rows += 1
            reasons.append(reason)
            raws.append(raw)
        if rows:
            self._record_quarantine(quarantine_frame(self.source, rows, reasons, raws))

    def _new_trades(self, symbol: str, latest: pd.DataFrame) -> pd.DataFrame:
        key, t_ns = str(latest["key"].iloc[0]), int(latest["ns"].iloc[0])
        cursor = self._cursor.get(symbol)
        if cursor is None:
            self._cursor[symbol] = (t_ns, {key})
            return self._deliverable(symbol, latest)
        last_ns, seen = cursor
        if key in seen or t_ns < last_ns:
            return empty_raw()
        # gap fill [last, latest] inclusive (Alpaca end is inclusive)
        parts = []
        params = self._trades_params(symbol, _utc(last_ns), _utc(t_ns))
        for items in self._pages("/stocks/trades", params, symbol, "trades"):
            checked, bad = check_trades(items)
            self._quarantine_polled(symbol, bad)
            parts.append(checked)
        gap = pd.concat(parts, ignore_index=True) if parts else latest.iloc[:0]
        if not gap["key"].eq(key).any():
            gap = pd.concat([gap, latest], ignore_index=True)
        ns = gap["ns"].to_numpy()
        fresh = gap[~gap["key"].isin(seen).to_numpy() & (ns >= last_ns) & (ns <= t_ns)]
        if not len(fresh):
            return empty_raw()
        newest = int(fresh["ns"].max())
        at_newest = set(fresh.loc[fresh["ns"] == newest, "key"])
        if newest == last_ns:
            at_newest |= seen
        self._cursor[symbol] = (newest, at_newest)
        return self._deliverable(symbol, fresh)

    def _deliverable(self, symbol: str, checked: pd.DataFrame) -> pd.DataFrame:
        rows = np.arange(self._rows, self._rows + len(checked), dtype="int64")
        self._rows += len(checked)
        return raw_tick_frame(checked, symbol, self.source, rows)

    # -- BarHistory ----------------------------------------------------------------
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
        bars = [b for page in self._pages("/stocks/bars", request.to_request_fields(),
                                          symbol, "bars") for b in page]
        return bars_frame(symbol, timeframe, bars, exchange_tz(self.calendar),
                          start_ts.value, end_ts.value)

    def _call(self, fn, *args):
        return _client.call(fn, *args, base_url=self.base_url)


def _utc(value) -> pd.Timestamp:
    if isinstance(value, int | np.integer):
        return pd.Timestamp(int(value), unit="ns", tz="UTC")
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        raise ConnectorError(f"timestamp without time zone: {value!r} (give UTC or an offset)")
    return ts.tz_convert("UTC")


def _floor_us(ts: pd.Timestamp) -> datetime:
    return ts.floor("us").to_pydatetime()


def _ceil_us(ts: pd.Timestamp) -> datetime:
    return ts.ceil("us").to_pydatetime()
