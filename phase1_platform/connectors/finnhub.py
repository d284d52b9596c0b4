"""FinnhubConnector: Finnhub's trade WebSocket, with its REST API as fallback.

Stream (``wss://ws.finnhub.io?token=KEY``, overridable: constructor ``ws_url``, setting
``FINNHUB_WS_URL``): one ``{"type":"subscribe","symbol":S}`` message per symbol; trades
arrive as ``{"type":"trade","data":[{"s","p","t"(ms),"v","c"}]}``; the server sends
``{"type":"ping"}`` and ``{"type":"error","msg":...}``.

Identity. Finnhub sends no trade id and no sequence, and never replays. Each connector
gets one ``source`` name (``finnhub:<UTC start>:<random>`` unless given) and numbers
every trade item it receives with a monotonic ``source_row`` that continues across
reconnects. A row is stamped once, on receipt, and lives in one pending buffer until
every callback has taken it; a callback that fails gets the *same* rows again later
(so an idempotent landing table keeps one copy) and callbacks that already took them
are not called again. Reconnecting never re-sends the buffer: duplicates cannot arise
on our side, and Finnhub cannot send old trades again.

Failure handling:

- reconnect with capped exponential backoff and jitter; the attempt counter resets
  only after a connection stayed up for ``stable_period`` seconds;
- data-idle timeout: no trade for ``idle_timeout`` seconds while symbols are subscribed
  and the exchange (XNYS regular session, injectable clock) is open -> reconnect;
- every reconnect resubscribes every symbol;
- a 4xx handshake answer (bad token) is a ``ConnectorError`` and ends the connector:
  no retry loop. 429 and 5xx are retried with backoff;
- malformed frames are quarantined with a reason (``quarantine`` frame, quarantine
  callbacks) and counted; the stream goes on;
- while the stream is down, ``/quote`` is polled over REST (``rest_fallback``) and the
  quotes go to the quote callbacks: quotes are not trades and never enter the tick
  stream, so they cannot change bars.

REST (``https://finnhub.io/api/v1``, constructor ``rest_url`` or ``FINNHUB_REST_URL``):
token in the ``X-Finnhub-Token`` header, a client-side limiter (60 calls per minute and
30 per second), 429 answered by waiting (``Retry-After`` when given), 403 on a premium
endpoint (``/stock/candle``, ``/stock/tick``) reported as a clear ``ConnectorError``.

The API key never appears in a log line, an error or a repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import inspect
import json
import logging
import os
import random
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import numpy as np
import pandas as pd
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from ..core.calendar import DEFAULT_CALENDAR, sessions_between
from ..core.schema import CANONICAL_COLUMNS, QUARANTINE_COLUMNS, empty_canonical, empty_quarantine
from .base import BaseConnector, ConnectorError

log = logging.getLogger(__name__)

DEFAULT_WS_URL = "wss://ws.finnhub.io"
DEFAULT_REST_URL = "https://finnhub.io/api/v1"
KEY_VARIABLE = "FINNHUB_API_KEY"

QuoteCallback = Callable[[dict], Awaitable[None] | None]
QuarantineCallback = Callable[[pd.DataFrame], Awaitable[None] | None]
ErrorCallback = Callable[[str], Awaitable[None] | None]


class Reason:
    MALFORMED_JSON = "malformed JSON frame"
    NOT_AN_OBJECT = "frame is not a JSON object"
    UNKNOWN_TYPE = "unknown message type"
    BAD_TRADE_DATA = "trade message without a data list"
    BAD_TRADE_ITEM = "trade item is not an object"


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class FinnhubConfig:
    api_key: str = field(repr=False)
    ws_url: str
    rest_url: str


def load_finnhub_config() -> FinnhubConfig:
    """Key and URLs from the connector settings (environment or ``keys.env``).

    Falls back to the plain environment when the settings module is unavailable.
    """
    try:
        from .settings import load_settings
    except ImportError:  # pragma: no cover - settings module is part of the package
        key = os.environ.get(KEY_VARIABLE, "").strip()
        if not key:
            raise ConnectorError(
                f"missing API key {KEY_VARIABLE}: set it in the environment or in keys.env, "
                "or run with INGESTION_MODE=mock"
            ) from None
        return FinnhubConfig(
            key,
            os.environ.get("FINNHUB_WS_URL", DEFAULT_WS_URL),
            os.environ.get("FINNHUB_REST_URL", DEFAULT_REST_URL),
        )
    settings = load_settings()
    return FinnhubConfig(
        settings.require(KEY_VARIABLE), settings.FINNHUB_WS_URL, settings.FINNHUB_REST_URL
    )


# --------------------------------------------------------------------------- helpers
_TOKEN_IN_URL = re.compile(r"(?i)(token=)[^&\s'\"]+")


def mask_secret(text: str, secret: str | None = None) -> str:
    """``text`` with ``token=...`` query values and the secret itself replaced by ***."""
    out = _TOKEN_IN_URL.sub(r"\1***", str(text))
    if secret:
        out = out.replace(secret, "***")
    return out


class MaskTokenFilter(logging.Filter):
    """Rewrites every record of the logger it is attached to with tokens masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = mask_secret(text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


def masked_logger(name: str) -> logging.Logger:
    """A logger whose records never show ``token=...`` (websockets logs the request line)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, MaskTokenFilter) for f in logger.filters):
        logger.addFilter(MaskTokenFilter())
    return logger


def with_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "token"] + [("token", token)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


_WS_LOGGER = masked_logger(__name__ + ".websocket")


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Capped exponential backoff with equal jitter: in [d/2, d], d = min(cap, initial*2^n)."""
    d = min(cap, initial * (2 ** min(attempt, 62)))
    return d / 2 + rng.uniform(0, d / 2)


class Backoff:
    """Reconnect delays: capped exponential with jitter, reset after a stable period.

    ``failed()`` returns the next delay; ``up(at)``/``down(at)`` tell it when a
    connection opened and ended (loop time), and a connection that lasted at least
    ``stable_period`` resets the sequence. A flapping connection keeps backing off.
    """

    def __init__(self, initial: float, cap: float, stable_period: float,
                 rng: random.Random | None = None) -> None:
        self.initial, self.cap, self.stable_period = initial, cap, stable_period
        self.rng = rng or random.Random()
        self.attempt = 0
        self._up_since: float | None = None

    def up(self, at: float) -> None:
        self._up_since = at

    def down(self, at: float) -> None:
        if self._up_since is not None and at - self._up_since >= self.stable_period:
            self.attempt = 0
        self._up_since = None

    def failed(self) -> float:
        delay = backoff_delay(self.attempt, self.initial, self.cap, self.rng)
        self.attempt += 1
        return delay


def xnys_open(now: pd.Timestamp, calendar: str = DEFAULT_CALENDAR) -> bool:
    """True inside a regular trading session of ``calendar`` (exchange_calendars)."""
    ns = int(pd.Timestamp(now).tz_convert("UTC").value)
    sessions = sessions_between(ns, ns, calendar)
    return bool(sessions.locate(np.array([ns], dtype="int64"))[0] >= 0)


async def _call(cb: Callable[[Any], Any], arg: Any) -> None:
    out = cb(arg)
    if inspect.isawaitable(out):
        await out


# --------------------------------------------------------------------------- rate limit
class RateLimiter:
    """Sliding-window limiter: at most ``n`` calls in any ``window`` seconds, per limit.

    ``clock`` and ``sleep`` are injectable so tests drive it without real time.
    """

    def __init__(
        self,
        limits: Iterable[tuple[int, float]] = ((60, 60.0), (30, 1.0)),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limits = sorted((int(n), float(w)) for n, w in limits)
        if not self.limits or any(n < 1 or w <= 0 for n, w in self.limits):
            raise ValueError("rate limits must be positive (calls, seconds) pairs")
        self._clock = clock
        self._sleep = sleep
        self._calls: deque[float] = deque()
        self._horizon = max(w for _, w in self.limits)
        self.waited = 0.0  # total seconds spent waiting, for reports
        self._lock = asyncio.Lock()

    def delay(self, now: float | None = None) -> float:
        """Seconds to wait before the next call is allowed (0 = now)."""
        now = self._clock() if now is None else now
        while self._calls and self._calls[0] <= now - self._horizon:
            self._calls.popleft()
        wait = 0.0
        for n, window in self.limits:
            in_window = [t for t in self._calls if t > now - window]
            if len(in_window) >= n:
                wait = max(wait, in_window[-n] + window - now)
        return wait

    def record(self, now: float | None = None) -> None:
        self._calls.append(self._clock() if now is None else now)

    async def acquire(self) -> None:
        async with self._lock:
            while (wait := self.delay()) > 0:
                self.waited += wait
                await self._sleep(wait)
            self.record()


# --------------------------------------------------------------------------- REST client
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
        self._key = api_key
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
                        f"{mask_secret(type(exc).__name__ + ': ' + str(exc), self._key)}"
                    ) from None
                await self._sleep(backoff_delay(attempt, 0.5, 10.0, self._rng))
                continue
            status = resp.status_code
            if status == 200:
                try:
                    return resp.json()
                except ValueError:
                    raise ConnectorError(
                        f"Finnhub REST {what}: answer is not JSON ({resp.text[:80]!r})"
                    ) from None
            if status == 429 or status >= 500:
                if status == 429:
                    self.throttled += 1
                if attempt >= self.max_retries:
                    raise ConnectorError(
                        f"Finnhub REST {what}: HTTP {status} after {attempt + 1} attempts "
                        + ("(rate limit: 60 calls/min, 30/s)" if status == 429 else "")
                    )
                wait = retry_after_seconds(resp.headers.get("Retry-After"))
                if wait is None:
                    wait = backoff_delay(attempt, 1.0, 30.0, self._rng)
                log.warning("Finnhub REST %s: HTTP %s, retrying in %.1fs", what, status, wait)
                await self._sleep(wait)
                continue
            if status == 401:
                raise ConnectorError(
                    f"Finnhub REST {what}: HTTP 401, the API key was refused: "
                    f"check {KEY_VARIABLE}"
                )
            if status == 403:
                raise ConnectorError(
                    f"Finnhub REST {what}: HTTP 403, access denied: this endpoint is premium "
                    f"(not included in a free Finnhub plan) or {KEY_VARIABLE} lacks access"
                )
            raise ConnectorError(
                f"Finnhub REST {what}: HTTP {status}: {mask_secret(resp.text[:120], self._key)}"
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def quote(self, symbol: str) -> dict:
        """``/quote``: current price ``c``, day ``o/h/l``, previous close ``pc``, time ``t``."""
        symbol = symbol.upper()
        data = await self.get("/quote", {"symbol": symbol}, f"/quote {symbol}")
        if not isinstance(data, dict) or "c" not in data:
            raise ConnectorError(f"Finnhub REST /quote {symbol}: unexpected answer")
        if not data.get("t") and not data.get("c"):
            raise ConnectorError(f"Finnhub has no quote for {symbol!r}: unknown symbol?")
        return {"symbol": symbol, **data}

    async def candles(
        self, symbol: str, resolution: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> pd.DataFrame:
        """``/stock/candle`` (premium) as a canonical bar frame (no trade_count, vwap)."""
        symbol = symbol.upper()
        timeframe = _CANDLE_RESOLUTIONS.get(str(resolution))
        if timeframe is None:
            raise ValueError(
                f"unsupported Finnhub resolution {resolution!r} "
                f"(one of {', '.join(_CANDLE_RESOLUTIONS)})"
            )
        params = {
            "symbol": symbol,
            "resolution": str(resolution),
            "from": int(pd.Timestamp(start).timestamp()),
            "to": int(pd.Timestamp(end).timestamp()),
        }
        data = await self.get("/stock/candle", params, f"/stock/candle {symbol}")
        status = data.get("s") if isinstance(data, dict) else None
        if status == "no_data":
            return empty_canonical()
        if status != "ok":
            raise ConnectorError(f"Finnhub /stock/candle {symbol}: unexpected answer s={status!r}")
        ts = pd.to_datetime(np.asarray(data["t"], dtype="int64"), unit="s", utc=True)
        if timeframe == "1d":  # label: the session date's midnight in New York
            ny = ts.tz_convert("America/New_York").normalize()
            ts = ny.tz_convert("UTC")
        frame = pd.DataFrame(
            {
                "symbol": symbol,
                "timeframe": timeframe,
                "ts": ts.as_unit("ns").asi8,
                "open": data["o"],
                "high": data["h"],
                "low": data["l"],
                "close": data["c"],
                "volume": data["v"],
                "trade_count": np.nan,
                "vwap": np.nan,
            }
        )
        return frame.astype(CANONICAL_COLUMNS)

    async def tick_pages(
        self, symbol: str, date: str, limit: int = 25_000
    ) -> AsyncIterator[pd.DataFrame]:
        """``/stock/tick`` (premium) for one date, paged with ``skip``: raw tick frames.

        ``source`` is ``finnhub-tick:<SYMBOL>:<date>`` and ``source_row`` the row's
        position in the vendor's day, so fetching the day twice gives the same identities.
        """
        symbol = symbol.upper()
        skip = 0
        while True:
            params = {"symbol": symbol, "date": date, "limit": limit, "skip": skip}
            data = await self.get("/stock/tick", params, f"/stock/tick {symbol} {date}")
            if not isinstance(data, dict):
                raise ConnectorError(f"Finnhub /stock/tick {symbol}: unexpected answer")
            t = data.get("t") or []
            n = len(t)
            if n == 0:
                return
            conds = data.get("c") or [[] for _ in range(n)]
            frame = pd.DataFrame(
                {
                    "timestamp": _ms_to_utc(pd.Series(t)),
                    "symbol": symbol,
                    "price": data.get("p", [None] * n),
                    "size": data.get("v", [None] * n),
                    "exchange": [str(x) for x in data.get("x", [""] * n)],
                    "conditions": [_join_conditions(c) for c in conds],
                    "source": f"finnhub-tick:{symbol}:{date}",
                    "source_row": np.arange(skip, skip + n, dtype="int64"),
                }
            )
            yield frame
            skip += n
            total = data.get("total")
            if n < limit or (isinstance(total, int) and skip >= total):
                return


_CANDLE_RESOLUTIONS = {"1": "1m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "D": "1d"}


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _ms_to_utc(t: pd.Series) -> pd.Series:
    """Finnhub millisecond times -> tz-aware UTC; NaT where missing or not an integer."""
    num = pd.to_numeric(t, errors="coerce")
    ok = num.notna() & np.isfinite(num) & (num == np.floor(num)) & (num.abs() < 2**53)
    ns = np.where(ok, num.where(ok, 0).astype("int64") * 1_000_000, 0)
    out = pd.Series(pd.to_datetime(ns, utc=True).as_unit("ns"), index=t.index)
    return out.where(ok.to_numpy(bool), pd.NaT).astype("datetime64[ns, UTC]")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _text(v: Any) -> str:
    return "" if _missing(v) else str(v)


def _join_conditions(c: Any) -> str:
    if _missing(c):
        return ""
    if isinstance(c, list | tuple):
        return " ".join(str(x) for x in c)
    return str(c)


# --------------------------------------------------------------------------- stream
class _IdleTimeout(Exception):
    pass


class _Fatal(Exception):
    pass


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
    trades: int = 0
    pings: int = 0
    errors: int = 0
    malformed: int = 0
    delivery_failures: int = 0
    quotes: int = 0


class FinnhubConnector(BaseConnector):
    """Finnhub trades over WebSocket, delivered as raw tick frames to the callbacks."""

    name = "finnhub"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        ws_url: str | None = None,
        rest_url: str | None = None,
        source: str | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        stable_period: float = 30.0,
        idle_timeout: float | None = 60.0,
        connect_timeout: float = 30.0,
        open_timeout: float = 10.0,
        max_reconnects: int | None = None,
        clock: Callable[[], pd.Timestamp] | None = None,
        market_open: Callable[[pd.Timestamp], bool] | None = None,
        rng: random.Random | None = None,
        rest_fallback: bool = True,
        fallback_interval: float = 5.0,
        rest: FinnhubRestClient | None = None,
        rest_transport: httpx.AsyncBaseTransport | None = None,
        batch_linger: float = 0.05,
        max_batch_rows: int = 10_000,
    ) -> None:
        super().__init__()
        if api_key is None or ws_url is None or rest_url is None:
            env_ws = os.environ.get("FINNHUB_WS_URL")
            env_rest = os.environ.get("FINNHUB_REST_URL")
            if api_key is None:
                cfg = load_finnhub_config()
                api_key = cfg.api_key
                env_ws, env_rest = env_ws or cfg.ws_url, env_rest or cfg.rest_url
            ws_url = ws_url or env_ws or DEFAULT_WS_URL
            rest_url = rest_url or env_rest or DEFAULT_REST_URL
        if not api_key or not api_key.strip():
            raise ConnectorError(f"missing API key {KEY_VARIABLE}: set it or pass api_key")
        self._key = api_key.strip()
        self.ws_url = ws_url
        self.rest_url = rest_url
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
        self.source = source or f"finnhub:{stamp}:{uuid.uuid4().hex[:8]}"
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_period = stable_period
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.open_timeout = open_timeout
        self.max_reconnects = max_reconnects
        self._clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self._market_open = market_open or xnys_open
        self._rng = rng or random.Random()
        self.rest_fallback = rest_fallback
        self.batch_linger = batch_linger
        self.max_batch_rows = max_batch_rows
        self._open_items: list[tuple[int, dict]] = []
        self._open_since = 0.0
        self.fallback_interval = fallback_interval
        self._rest = rest
        self._rest_transport = rest_transport
        self._quote_callbacks: list[QuoteCallback] = []
        self._quarantine_callbacks: list[QuarantineCallback] = []
        self._error_callbacks: list[ErrorCallback] = []

        self.stats = StreamStats()
        self.errors: list[str] = []  # server error messages, in order
        self.last_quotes: dict[str, dict] = {}
        self.fatal_error: ConnectorError | None = None
        self._quarantine_rows: list[dict] = []
        self._pending: deque[_Pending] = deque()
        self._next_row = 0
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task | None = None
        self._fallback_task: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._first_outcome: asyncio.Event | None = None
        self._stopping = False
        self._last_data = 0.0
        self._send_lock = asyncio.Lock()
        self._deliver_lock = asyncio.Lock()
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return (f"FinnhubConnector(ws_url={mask_secret(self.ws_url, self._key)!r}, "
                f"source={self.source!r}, symbols={sorted(self.symbols)}, key=***)")

    # -- callbacks ---------------------------------------------------------------------
    def register_quote_callback(self, cb: QuoteCallback) -> None:
        """``cb(quote_dict)`` for each REST quote polled while the stream is down."""
        self._quote_callbacks.append(cb)

    def register_quarantine_callback(self, cb: QuarantineCallback) -> None:
        """``cb(quarantine_frame)`` for each malformed frame (QUARANTINE_COLUMNS)."""
        self._quarantine_callbacks.append(cb)

    def register_error_callback(self, cb: ErrorCallback) -> None:
        """``cb(message)`` for each server error message and for a fatal error."""
        self._error_callbacks.append(cb)

    @property
    def quarantine(self) -> pd.DataFrame:
        if not self._quarantine_rows:
            return empty_quarantine()
        return pd.DataFrame(self._quarantine_rows).astype(QUARANTINE_COLUMNS)

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._connected.is_set()

    @property
    def rows_received(self) -> int:
        return self._next_row

    @property
    def pending_rows(self) -> int:
        return sum(len(p.frame) for p in self._pending)

    @property
    def rest(self) -> FinnhubRestClient:
        if self._rest is None:
            self._rest = FinnhubRestClient(self._key, self.rest_url,
                                           transport=self._rest_transport)
        return self._rest

    # -- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        """Start the stream; returns once connected. ConnectorError if that cannot happen."""
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self.fatal_error = None
        self._first_outcome = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="finnhub-stream")
        try:
            await asyncio.wait_for(self._first_outcome.wait(), self.connect_timeout)
        except TimeoutError:
            await self.disconnect()
            raise ConnectorError(
                f"could not connect to Finnhub at {mask_secret(self.ws_url)} within "
                f"{self.connect_timeout:g}s (last error: {self.last_error or 'none'})"
            ) from None
        if self.fatal_error is not None:
            err = self.fatal_error
            await self.disconnect()
            raise err

    async def disconnect(self) -> None:
        self._stopping = True
        await self._stop_fallback()
        task, self._task = self._task, None
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._ws = None
        self._connected.clear()
        await self._seal_and_flush()
        if self._pending:
            log.warning("Finnhub connector stopped with %d rows not taken by the callbacks "
                        "(kept in .pending_rows)", self.pending_rows)
        if self._rest is not None:
            await self._rest.aclose()
            self._rest = None

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def wait_stopped(self) -> None:
        """Wait for the stream task to end; raises its fatal error if it had one."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.fatal_error is not None:
            raise self.fatal_error

    # -- subscriptions -----------------------------------------------------------------
    async def subscribe(self, symbols: Iterable[str]) -> None:
        new = [s.strip().upper() for s in symbols if s.strip()]
        new = [s for s in dict.fromkeys(new) if s not in self.symbols]
        self.symbols |= set(new)
        await self._send_subscriptions("subscribe", new)

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = [s.strip().upper() for s in symbols if s.strip()]
        gone = [s for s in dict.fromkeys(gone) if s in self.symbols]
        self.symbols -= set(gone)
        await self._send_subscriptions("unsubscribe", gone)

    async def _send_subscriptions(self, kind: str, symbols: list[str]) -> None:
        ws = self._ws
        if ws is None or not symbols:
            return  # sent on (re)connect
        async with self._send_lock:
            try:
                for s in symbols:
                    await ws.send(json.dumps({"type": kind, "symbol": s}))
            except ConnectionClosed:
                pass  # the run loop reconnects and resubscribes everything

    # -- the stream loop ---------------------------------------------------------------
    async def _run(self) -> None:
        backoff = Backoff(self.backoff_initial, self.backoff_max, self.stable_period, self._rng)
        loop = asyncio.get_running_loop()
        failures = 0  # consecutive attempts without a stable connection
        try:
            while not self._stopping:
                ws = await self._open()
                if ws is not None:
                    backoff.up(loop.time())
                    await self._stop_fallback()
                    try:
                        await self._session(ws)
                    except _IdleTimeout:
                        self.stats.idle_reconnects += 1
                        self.last_error = f"no data for {self.idle_timeout:g}s in market hours"
                    except ConnectionClosed as exc:
                        self.last_error = f"connection closed ({_close_text(exc)})"
                    finally:
                        self._ws = None
                        self._connected.clear()
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(ws.close(), 2.0)
                        self.stats.disconnects += 1
                        backoff.down(loop.time())
                    if self._stopping:
                        break
                    log.warning("Finnhub stream: %s, reconnecting", self.last_error)
                failures = backoff.attempt
                if self.max_reconnects is not None and failures >= self.max_reconnects:
                    raise _Fatal(f"Finnhub stream: gave up after {failures + 1} attempts "
                                 f"(last error: {self.last_error})")
                await self._start_fallback()
                await asyncio.sleep(backoff.failed())
        except _Fatal as exc:
            await self._set_fatal(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must end the stream loudly
            log.exception("Finnhub stream loop failed")
            await self._set_fatal(
                mask_secret(f"Finnhub stream failed: {type(exc).__name__}: {exc}", self._key)
            )
        finally:
            await self._stop_fallback()
            if self._first_outcome is not None:
                self._first_outcome.set()

    async def _set_fatal(self, message: str) -> None:
        self.fatal_error = ConnectorError(message)
        log.error("%s", message)
        for cb in self._error_callbacks:
            with contextlib.suppress(Exception):
                await _call(cb, message)

    async def _open(self) -> ClientConnection | None:
        """One handshake: the connection, None for a transient failure, _Fatal for 4xx."""
        url = with_token(self.ws_url, self._key)
        shown = mask_secret(self.ws_url)
        try:
            ws = await websockets.connect(url, open_timeout=self.open_timeout,
                                          max_size=2**24, close_timeout=2.0,
                                          logger=_WS_LOGGER)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 400 <= status < 500 and status != 429:
                hint = (f": the API key was refused, check {KEY_VARIABLE}"
                        if status in (401, 403) else "")
                raise _Fatal(f"Finnhub stream {shown} rejected the connection "
                             f"with HTTP {status}{hint}") from None
            self.last_error = f"handshake answered HTTP {status}"
        except InvalidURI:
            raise _Fatal(f"Finnhub stream URL is not a WebSocket URL: {shown}") from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            self.last_error = mask_secret(f"{type(exc).__name__}: {exc}", self._key)
        else:
            self.stats.connections += 1
            if self.stats.connections > 1:
                self.stats.reconnects += 1
            self._ws = ws
            log.info("Finnhub stream connected to %s", shown)
            return ws
        log.warning("Finnhub stream %s: %s", shown, self.last_error)
        return None

    async def _session(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        async with self._send_lock:
            for s in sorted(self.symbols):  # resubscribe after every (re)connect
                await ws.send(json.dumps({"type": "subscribe", "symbol": s}))
        self._last_data = loop.time()
        self._connected.set()
        if self._first_outcome is not None:
            self._first_outcome.set()
        poll = min(5.0, max(0.05, (self.idle_timeout or 20.0) / 4))
        try:
            while True:
                if self._open_items:
                    age = loop.time() - self._open_since
                    if age >= self.batch_linger or len(self._open_items) >= self.max_batch_rows:
                        await self._seal_and_flush()
                        continue
                    timeout = self.batch_linger - age
                else:
                    timeout = poll
                try:
                    message = await asyncio.wait_for(ws.recv(), timeout)
                except TimeoutError:
                    if not self._open_items and self._idle_expired(loop.time()):
                        raise _IdleTimeout() from None
                    continue
                await self._handle(message, loop.time())
        finally:
            await self._seal_and_flush()  # what was received is delivered, never dropped

    def _idle_expired(self, now: float) -> bool:
        if self.idle_timeout is None or not self.symbols:
            return False
        if now - self._last_data < self.idle_timeout:
            return False
        return bool(self._market_open(self._clock()))

    # -- messages ----------------------------------------------------------------------
    async def _handle(self, message: str | bytes, now: float) -> None:
        self.stats.messages += 1
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        try:
            msg = json.loads(text)
        except ValueError:
            await self._quarantine_frame(text, Reason.MALFORMED_JSON)
            return
        if not isinstance(msg, dict):
            await self._quarantine_frame(text, Reason.NOT_AN_OBJECT)
            return
        kind = msg.get("type")
        if kind == "ping":
            self.stats.pings += 1
        elif kind == "trade":
            data = msg.get("data")
            if not isinstance(data, list):
                await self._quarantine_frame(text, Reason.BAD_TRADE_DATA)
                return
            self._last_data = now
            self.stats.trade_messages += 1
            await self._on_trades(data)
        elif kind == "error":
            err = str(msg.get("msg", text))
            self.stats.errors += 1
            self.errors.append(err)
            log.warning("Finnhub server error: %s", mask_secret(err, self._key))
            for cb in self._error_callbacks:
                try:
                    await _call(cb, err)
                except Exception:  # noqa: BLE001 - a callback must not kill the stream
                    log.exception("Finnhub error callback failed")
        else:
            await self._quarantine_frame(text, f"{Reason.UNKNOWN_TYPE} {kind!r}")

    def _take_rows(self, n: int) -> np.ndarray:
        rows = np.arange(self._next_row, self._next_row + n, dtype="int64")
        self._next_row += n
        return rows

    async def _on_trades(self, data: list) -> None:
        rows = self._take_rows(len(data))
        if not self._open_items:
            self._open_since = asyncio.get_running_loop().time()
        for row, item in zip(rows.tolist(), data, strict=True):
            if isinstance(item, dict):
                self._open_items.append((row, item))
            else:
                await self._quarantine_item(json.dumps(item), row, Reason.BAD_TRADE_ITEM)

    def _seal(self) -> None:
        """Turn the trades received since the last batch into one raw tick frame."""
        items, self._open_items = self._open_items, []
        if not items:
            return
        get = [d for _, d in items]
        frame = pd.DataFrame(
            {
                "timestamp": _ms_to_utc(pd.Series([d.get("t") for d in get], dtype=object)),
                "symbol": pd.Series([_text(d.get("s")) for d in get], dtype="str"),
                "price": pd.to_numeric(pd.Series([d.get("p") for d in get], dtype=object),
                                       errors="coerce").astype("float64"),
                "size": pd.to_numeric(pd.Series([d.get("v") for d in get], dtype=object),
                                      errors="coerce").astype("float64"),
                "conditions": pd.Series([_join_conditions(d.get("c")) for d in get], dtype="str"),
                "source": self.source,
                "source_row": np.fromiter((r for r, _ in items), dtype="int64", count=len(items)),
            }
        )
        self.stats.trades += len(frame)
        self._pending.append(_Pending(frame))

    async def _seal_and_flush(self) -> bool:
        self._seal()
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
                        await _call(cb, p.frame)
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
        await self._quarantine_item(text, int(self._take_rows(1)[0]), reason)

    async def _quarantine_item(self, text: str, row: int, reason: str) -> None:
        raw = mask_secret(text[:10_000], self._key)
        entry = {"source": self.source, "source_row": row, "reason": reason, "raw": raw}
        self._quarantine_rows.append(entry)
        log.warning("Finnhub stream: quarantined frame (%s)", reason)
        frame = pd.DataFrame([entry]).astype(QUARANTINE_COLUMNS)
        for cb in self._quarantine_callbacks:
            try:
                await _call(cb, frame)
            except Exception:  # noqa: BLE001
                log.exception("Finnhub quarantine callback failed")

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
                        await _call(cb, quote)
                    except Exception:  # noqa: BLE001
                        log.exception("Finnhub quote callback failed")
            await asyncio.sleep(self.fallback_interval)

    async def get_quote(self, symbol: str) -> dict:
        return await self.rest.quote(symbol)

    async def get_candles(
        self, symbol: str, resolution: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> pd.DataFrame:
        return await self.rest.candles(symbol, resolution, start, end)

    # -- history -----------------------------------------------------------------------
    async def get_historical_ticks(  # type: ignore[override]
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
        for day in days:
            async for page in self.rest.tick_pages(symbol, day.strftime("%Y-%m-%d")):
                keep = ((page["timestamp"] >= lo) & (page["timestamp"] < hi)).to_numpy(bool)
                if keep.any():
                    yield page[keep].reset_index(drop=True)


def _close_text(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "no close frame"
    return f"code {frame.code}" + (f", {frame.reason}" if frame.reason else "")
