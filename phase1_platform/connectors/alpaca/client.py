"""The alpaca-py data client with our rate-limit handling, stop requests and errors.

A 429 is answered by waiting until ``X-RateLimit-Reset`` (epoch seconds), not by the
SDK's fixed 3 s x 3 retries: ``RESTClient._one_request`` is overridden for that
(checked against alpaca-py 0.44: ``_request`` loops on ``RetryException`` with a fixed
sleep; our override never raises it, so the wait is ours alone). 502/503/504 are
retried with a short backoff. Every wait ends early when ``interrupt`` is set (a stop).

Error text never shows a key: the SDK's ``APIError`` carries the body as the vendor
sent it, and a vendor may echo the request headers; ``api_error_text`` reads the
message and ``ConnectorError`` masks every configured secret.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable

import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical.stock import StockHistoricalDataClient

from ..base import ConnectorError
from ..net import Interrupt, backoff_delay, mask_secret, rate_limit_reset_wait, register_secret

log = logging.getLogger(__name__)
KEY_VARIABLES = "APCA_API_KEY_ID and APCA_API_SECRET_KEY"


def reset_wait(headers, now: float, default: float = 3.0, cap: float = 120.0) -> float:
    """Seconds to wait after a 429: until ``X-RateLimit-Reset`` (epoch s), within [0, cap]."""
    return rate_limit_reset_wait(headers, now, default=default, cap=cap)


class Stopped(Exception):
    """A wait was interrupted by a stop request."""


class Unreadable(Exception):
    """A 2xx answer that is not JSON."""


class RateLimitAwareDataClient(StockHistoricalDataClient):
    """``StockHistoricalDataClient`` whose 429 handling honours ``X-RateLimit-Reset``.

    ``sleep`` and ``clock`` are injectable (tests record the wait instead of sleeping);
    without ``sleep`` a wait is ``interrupt.sleep`` and ends when a stop is requested.
    """

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        url_override: str | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        max_rate_limit_waits: int = 5,
        max_wait_seconds: float = 120.0,
        timeout: float = 30.0,
        interrupt: Interrupt | None = None,
    ) -> None:
        register_secret(api_key)
        register_secret(secret_key)
        super().__init__(api_key, secret_key, raw_data=True, url_override=url_override)
        self.interrupt = interrupt or Interrupt()
        self._sleep = sleep
        self._clock = clock
        self._max_waits = max_rate_limit_waits
        self._max_wait_seconds = max_wait_seconds
        self._timeout = timeout
        self._rng = random.Random()
        self.rate_limit_waits: list[float] = []

    def __repr__(self) -> str:  # the SDK object holds the keys: never show them
        return f"{type(self).__name__}(base_url={str(self._base_url)!r})"

    def _wait(self, seconds: float) -> None:
        if self.interrupt.is_set():
            raise Stopped()
        if self._sleep is None:
            if self.interrupt.sleep(seconds):
                raise Stopped()
        else:
            self._sleep(seconds)
            if self.interrupt.is_set():
                raise Stopped()

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
                self._wait(wait)
                waits += 1
                continue
            if status in (502, 503, 504) and waits < self._max_waits:
                self._wait(backoff_delay(waits, 1.0, 30.0, self._rng))
                waits += 1
                continue
            break
        try:
            response.raise_for_status()
        except requests.HTTPError as http_error:
            raise APIError(mask_secret(response.text), http_error) from None
        if response.text == "":
            return {}
        try:
            return response.json()
        except ValueError:
            raise Unreadable(mask_secret(response.text[:80])) from None


def vendor_message(exc: APIError) -> str:
    """The ``message`` of an Alpaca error body (or the body's start), one line."""
    text = str(exc)
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = body["message"]
    return " ".join(text.split())[:200]


def api_error_text(exc: APIError) -> str:
    """One line for an Alpaca HTTP error (masked when it becomes a ConnectorError)."""
    status = exc.status_code
    message = vendor_message(exc)
    if status in (401, 403):
        return (f"Alpaca rejected the API key (HTTP {status}: {message}): check "
                f"{KEY_VARIABLES} (and that the key may use the chosen feed)")
    if status == 429:
        return ("Alpaca rate limit still exceeded after waiting for X-RateLimit-Reset "
                "several times: retry later or lower the request rate")
    if status in (400, 404, 422):
        return f"Alpaca rejected the request (HTTP {status}): {message}"
    return f"Alpaca error (HTTP {status}): {message}"


def call(fn, *args, base_url: str | None = None):
    """``fn(*args)`` with every failure of the data API as one ``ConnectorError``."""
    where = base_url or "https://data.alpaca.markets"
    try:
        return fn(*args)
    except APIError as exc:
        status = exc.status_code
        raise ConnectorError(api_error_text(exc),
                             retryable=status is None or status == 429 or status >= 500
                             ) from None
    except Stopped:
        raise ConnectorError("Alpaca request stopped (a stop was requested)",
                             retryable=True) from None
    except Unreadable as exc:
        raise ConnectorError(f"Alpaca at {where}: unreadable reply (not JSON: {exc})",
                             retryable=True) from None
    except requests.RequestException as exc:
        raise ConnectorError(f"cannot reach Alpaca at {where}: {type(exc).__name__}",
                             retryable=True) from None
