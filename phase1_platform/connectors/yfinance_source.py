"""Yahoo Finance bars through yfinance: backfills and a parity reference.

yfinance 1.7 calls ``https://query2.finance.yahoo.com/v8/finance/chart/{SYM}`` after a
cookie + crumb dance (``https://fc.yahoo.com``, ``/v1/test/getcrumb``, the csrf consent
pages as fallback), over a curl_cffi session. The session is the seam: with
``YAHOO_BASE_URL`` (or ``base_url=``) every ``*.yahoo.com`` request goes to that host
instead, path and query unchanged, so a mirror, a proxy or a local fake serves the same
protocol while the production code path stays as is.

Yahoo's limits: 1m bars at most 8 days per request and only within the last 30 days;
5m/15m within the last 60 days. Longer 1m windows inside the 30 days are split into
requests of 8 days; anything beyond is a clear error. Yahoo's 1h bars start at :30 on US
equities (not the clock hour of canonical 1h bars), so 1h is not offered.

yfinance state to know about: ``yf.config.debug.hide_exceptions`` (errors become empty
frames; switched off around our calls so every failure is a clear ConnectorError), its
SQLite caches (``cache_dir`` -> ``yfinance.cache.set_cache_location``) and an in-memory response
cache of past windows (cleared before each fetch, so a retry really asks again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import yfinance as yf
from curl_cffi import requests as curl_requests
from yfinance import exceptions as yf_exc
from yfinance.cache import set_cache_location
from yfinance.data import YfData

from ..core.calendar import exchange_tz
from ..core.schema import CANONICAL_COLUMNS, empty_canonical
from .base import BaseConnector, ConnectorError
from .settings import ConnectorSettings, load_settings

log = logging.getLogger(__name__)

# timeframe -> (Yahoo interval, max span per request, how far back Yahoo serves it)
INTERVALS: dict[str, tuple[str, pd.Timedelta | None, pd.Timedelta | None]] = {
    "1m": ("1m", pd.Timedelta(days=8), pd.Timedelta(days=30)),
    "5m": ("5m", pd.Timedelta(days=60), pd.Timedelta(days=60)),
    "15m": ("15m", pd.Timedelta(days=60), pd.Timedelta(days=60)),
    "1d": ("1d", None, None),
}

_LOCK = threading.Lock()  # yfinance keeps one process-wide session and config


class YahooRewriteSession(curl_requests.Session):
    """curl_cffi session that sends every ``*.yahoo.com`` request to ``base_url``."""

    def __init__(self, base_url: str, **kwargs) -> None:
        kwargs.setdefault("impersonate", "chrome")
        super().__init__(**kwargs)
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConnectorError(f"bad YAHOO_BASE_URL {base_url!r}: use http(s)://host[:port]")
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host == "yahoo.com" or host.endswith(".yahoo.com"):
            return urlunsplit((self._scheme, self._netloc, self._prefix + parts.path,
                               parts.query, parts.fragment))
        return url

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        return super().request(method, self.rewrite(url), *args, **kwargs)


class YFinanceConnector(BaseConnector):
    """Bars from Yahoo Finance: a ``BarHistory`` only (Yahoo serves no trade ticks)."""

    name = "yfinance"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        session=None,
        settings: ConnectorSettings | None = None,
        cache_dir: str | None = None,
        now: Callable[[], pd.Timestamp] | None = None,
        calendar: str = "XNYS",
        timeout: float = 10.0,
    ) -> None:
        super().__init__()
        if base_url is None and session is None:
            base_url = (settings or load_settings()).YAHOO_BASE_URL
        self.base_url = base_url
        self.session = session if session is not None else (
            YahooRewriteSession(base_url) if base_url else None
        )
        self.cache_dir = cache_dir
        if cache_dir is not None:
            set_cache_location(str(cache_dir))
        self._now = now or (lambda: pd.Timestamp.now("UTC"))
        self.calendar = calendar
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"YFinanceConnector(base_url={self.base_url!r})"

    async def connect(self, stop: asyncio.Event | None = None) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    # -- bars ----------------------------------------------------------------------

    def get_bars(self, symbol: str, timeframe: str, start, end, prepost: bool = False
                 ) -> pd.DataFrame:
        """Canonical bar frame of ``symbol`` for bars opening in [start, end).

        Daily bars: sessions whose date (exchange time) is in [start, end), stamped at
        the session date's midnight in exchange time, in UTC. ``prepost`` asks Yahoo for
        pre- and post-market intraday bars too.
        """
        symbol = symbol.strip().upper()
        if timeframe not in INTERVALS:
            raise ConnectorError(
                f"yfinance: unsupported timeframe {timeframe!r} (use {', '.join(INTERVALS)}; "
                "Yahoo's 1h bars start at :30 and are not canonical hours)"
            )
        start_ts, end_ts = _utc(start), _utc(end)
        if end_ts <= start_ts:
            raise ConnectorError(f"yfinance: empty window {start_ts} .. {end_ts}")
        interval, span, lookback = INTERVALS[timeframe]
        if lookback is not None:
            oldest = self._now() - lookback
            if start_ts < oldest:
                raise ConnectorError(
                    f"yfinance: Yahoo serves {timeframe} bars only for the last "
                    f"{lookback.days} days (since {oldest:%Y-%m-%d}); asked from "
                    f"{start_ts:%Y-%m-%d}: use 1d bars or another source for older data"
                )
        chunks = []
        lo = start_ts
        while lo < end_ts:
            hi = min(end_ts, lo + span) if span is not None else end_ts
            chunks.append((lo, hi))
            lo = hi
        frames = [self._fetch(symbol, timeframe, interval, lo, hi, prepost) for lo, hi in chunks]
        frames = [f for f in frames if len(f)]
        if not frames:
            raise ConnectorError(
                f"yfinance: no {timeframe} bars for {symbol} between {start_ts:%Y-%m-%d %H:%M}Z "
                f"and {end_ts:%Y-%m-%d %H:%M}Z (unknown symbol, holiday or outside Yahoo's range)"
            )
        out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        out = out.drop_duplicates(subset=["ts"], keep="first")
        return out.sort_values("ts", kind="stable").reset_index(drop=True)

    def _fetch(self, symbol, timeframe, interval, start_ts, end_ts, prepost) -> pd.DataFrame:
        tz = exchange_tz(self.calendar)
        if timeframe == "1d":
            # Yahoo takes dates; ask for whole exchange days covering the window
            first = start_ts.tz_convert(tz).normalize()
            last = end_ts.tz_convert(tz)
            last = last.normalize() + (pd.Timedelta(days=1) if last != last.normalize() else
                                       pd.Timedelta(0))
            req_start, req_end = first, last
        else:
            req_start, req_end = start_ts, end_ts
        with _LOCK, _raising_yfinance():
            YfData.cache_get.cache_clear()
            try:
                ticker = yf.Ticker(symbol, session=self.session)
                df = ticker.history(
                    start=req_start.to_pydatetime(), end=req_end.to_pydatetime(),
                    interval=interval, prepost=prepost, auto_adjust=False, back_adjust=False,
                    actions=False, repair=False, keepna=False, rounding=False,
                    timeout=self.timeout,
                )
            except yf_exc.YFRateLimitError:
                raise ConnectorError(
                    f"yfinance: Yahoo Finance rate limit (HTTP 429) while fetching {symbol}: "
                    "wait a few minutes and retry, or lower the request rate"
                ) from None
            except yf_exc.YFPricesMissingError as exc:
                if exc.yahoo_reason is not None:  # Yahoo said why: that is the error
                    raise ConnectorError(f"yfinance: no {timeframe} data for {symbol}: "
                                         f"{_reason(exc)}") from None
                df = None  # plain "no price data": an empty chunk (holiday, weekend)
            except yf_exc.YFTickerMissingError as exc:
                raise ConnectorError(f"yfinance: no {timeframe} data for {symbol}: "
                                     f"{_reason(exc)}") from None
            except yf_exc.YFException as exc:
                raise ConnectorError(f"yfinance: {symbol}: {_reason(exc)}") from None
            except curl_requests.exceptions.HTTPError as exc:
                status = getattr(getattr(exc, "response", None), "status_code", None)
                if status == 404:
                    raise ConnectorError(
                        f"yfinance: Yahoo Finance knows no symbol {symbol} (HTTP 404)"
                    ) from None
                raise ConnectorError(
                    f"yfinance: Yahoo Finance answered HTTP {status} for {symbol} {timeframe}"
                ) from None
            except curl_requests.RequestsError as exc:
                where = self.base_url or "Yahoo Finance"
                raise ConnectorError(
                    f"yfinance: cannot reach {where} ({type(exc).__name__}) for {symbol}"
                ) from None
            except (KeyError, TypeError, ValueError) as exc:
                raise ConnectorError(
                    f"yfinance: unexpected response for {symbol} {timeframe}: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        return self.history_frame(symbol, timeframe, df, start_ts, end_ts)

    def history_frame(self, symbol: str, timeframe: str, df: pd.DataFrame,
                      start_ts: pd.Timestamp, end_ts: pd.Timestamp) -> pd.DataFrame:
        """``Ticker.history`` output -> canonical frame (UTC, open-labelled)."""
        if df is None or df.empty:
            return empty_canonical()
        missing = [c for c in ("Open", "High", "Low", "Close", "Volume") if c not in df.columns]
        if missing:
            raise ConnectorError(f"yfinance: response for {symbol} lacks {', '.join(missing)}")
        idx = pd.DatetimeIndex(df.index)
        if idx.tz is None:
            raise ConnectorError(f"yfinance: {symbol} bars without a time zone")
        tz = exchange_tz(self.calendar)
        if timeframe == "1d":
            # the session date's midnight in exchange time, whatever zone Yahoo used
            local = idx.tz_convert(tz)
            idx = pd.DatetimeIndex(local.date).tz_localize(tz)
        ts = idx.tz_convert("UTC").as_unit("ns").asi8
        frame = pd.DataFrame(
            {
                "symbol": symbol,
                "timeframe": timeframe,
                "ts": ts,
                "open": df["Open"].to_numpy("float64"),
                "high": df["High"].to_numpy("float64"),
                "low": df["Low"].to_numpy("float64"),
                "close": df["Close"].to_numpy("float64"),
                "volume": df["Volume"].to_numpy("float64"),
                "trade_count": np.nan,
                "vwap": np.nan,
            }
        )
        if timeframe == "1d":
            lo = start_ts.tz_convert(tz).normalize().tz_convert("UTC").value
            keep = (frame["ts"] >= lo) & (frame["ts"] < end_ts.value)
        else:
            keep = (frame["ts"] >= start_ts.value) & (frame["ts"] < end_ts.value)
        keep &= frame[["open", "high", "low", "close"]].notna().all(axis=1)
        return frame[keep.to_numpy()].astype(CANONICAL_COLUMNS)[list(CANONICAL_COLUMNS)]


@contextlib.contextmanager
def _raising_yfinance():
    debug = yf.config.debug
    old = debug.hide_exceptions
    debug.hide_exceptions = False
    try:
        yield
    finally:
        debug.hide_exceptions = old


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        raise ConnectorError(f"timestamp without time zone: {value!r} (give UTC or an offset)")
    return ts.tz_convert("UTC")
