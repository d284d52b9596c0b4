"""Network helpers every connector shares: backoff, rate limits, Retry-After, secrets.

- ``backoff_delay`` / ``Backoff``: capped exponential reconnect delays with jitter.
- ``RateLimiter``: a sliding-window client-side limiter (several limits at once).
- ``retry_after_seconds`` (``Retry-After``) and ``rate_limit_reset_wait``
  (``X-RateLimit-Reset``): how long a vendor asked us to wait.
- ``Interrupt``: a sleep that ends early when a stop is requested (from any thread).
- Secret masking: ``mask_secret(text, *extra)`` replaces every configured secret
  (the values of ``settings.SECRET_FIELDS`` in the environment, every value registered
  with ``register_secret``: ``load_settings`` and each connector register theirs),
  in its raw, URL-encoded and JSON-escaped forms, plus ``token=...`` in URLs and the
  values of auth headers (``APCA-API-KEY-ID``, ``APCA-API-SECRET-KEY``,
  ``X-Finnhub-Token``, ``Authorization``) quoted back by a vendor. Importing this
  module installs a log-record hook that masks every record's message, exception and
  stack text, whichever logger it comes from (``install_log_masking``).

Secrets shorter than ``MIN_SECRET_LENGTH`` characters are not masked (masking "a"
would rewrite every message and hides nothing a real key needs hidden).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 4


# --------------------------------------------------------------------------- backoff
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


def rate_limit_reset_wait(headers: Mapping[str, str] | None, now: float,
                          default: float = 3.0, cap: float = 120.0) -> float:
    """Seconds to wait after a 429: until ``X-RateLimit-Reset`` (epoch s), within [0, cap]."""
    value = headers.get("X-RateLimit-Reset") if headers is not None else None
    try:
        reset = float(str(value).split(",")[0])
    except (TypeError, ValueError):
        return default
    if reset != reset:  # NaN
        return default
    return float(min(max(reset - now, 0.0) + 0.25, cap))


class Interrupt:
    """A stop request that blocking and async waits see at once, from any thread."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    def sleep(self, seconds: float) -> bool:
        """Blocking sleep of ``seconds``; returns True (early) when interrupted."""
        return self._event.wait(max(0.0, seconds))


# --------------------------------------------------------------------------- secrets
_TOKEN_IN_URL = re.compile(r"(?i)(token=)[^&\s'\"]+")
_AUTH_VALUE = re.compile(
    r"(?i)((?:APCA[-_]API[-_](?:KEY[-_]ID|SECRET[-_]KEY)|X[-_]Finnhub[-_]Token|Authorization)"
    r"[\"']?\s*[:=]\s*[\"']?(?:(?:Bearer|Basic|Token)\s+)?)[^\s\"',;}&\]]+"
)
_registered: set[str] = set()
_variants_cache: dict[frozenset[str], tuple[str, ...]] = {}
_lock = threading.Lock()


def _secret_env_names() -> tuple[str, ...]:
    from .settings import SECRET_FIELDS  # settings imports base, which imports this module

    return SECRET_FIELDS


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every message from now on (a configured key or token)."""
    if value is not None and len(value.strip()) >= MIN_SECRET_LENGTH:
        with _lock:
            _registered.add(value.strip())


def _variants(secrets: frozenset[str]) -> tuple[str, ...]:
    out = _variants_cache.get(secrets)
    if out is None:
        forms: set[str] = set()
        for s in secrets:
            forms |= {s, quote(s, safe=""), quote_plus(s), json.dumps(s)[1:-1]}
        # longest first: a secret that contains another is masked whole
        out = tuple(sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH),
                           key=lambda f: (-len(f), f)))
        with _lock:
            if len(_variants_cache) > 64:
                _variants_cache.clear()
            _variants_cache[secrets] = out
    return out


def known_secrets(*extra: str | None) -> frozenset[str]:
    """Every secret ``mask_secret`` masks right now (plus ``extra``)."""
    values = set(_registered)
    for name in _secret_env_names():
        env = os.environ.get(name)
        if env:
            values.add(env.strip())
    values.update(e.strip() for e in extra if e)
    return frozenset(v for v in values if len(v) >= MIN_SECRET_LENGTH)


def mask_secret(text: object, *extra: str | None) -> str:
    """``text`` with every known secret (and ``extra``), token= values and auth headers
    replaced by ``***``."""
    out = _AUTH_VALUE.sub(r"\1" + MASK, _TOKEN_IN_URL.sub(r"\1" + MASK, str(text)))
    for form in _variants(known_secrets(*extra)):
        if form in out:
            out = out.replace(form, MASK)
    return out


def _mask_record(record: logging.LogRecord) -> None:
    try:
        text = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is the handler's to report
        return
    masked = mask_secret(text)
    if masked != text:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = mask_secret(_FORMATTER.formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = mask_secret(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_secret(record.stack_info)


_FORMATTER = logging.Formatter()


class SecretMaskFilter(logging.Filter):
    """Masks secrets in every record of the logger or handler it is attached to."""

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_record(record)
        return True


MaskTokenFilter = SecretMaskFilter  # the name finnhub.py used


def masked_logger(name: str) -> logging.Logger:
    """A logger whose records never show a secret (websockets logs the request line)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, SecretMaskFilter) for f in logger.filters):
        logger.addFilter(SecretMaskFilter())
    return logger


_installed = False


def install_log_masking() -> None:
    """Mask secrets in every log record created in this process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _mask_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


install_log_masking()
