"""The REST side of the Finnhub simulator: Finnhub's REST answers about the trades the
simulated market has traded so far, served on the simulator's own port.

- ``GET /api/v1/quote?symbol=S``: ``c`` the last price, ``o``/``h``/``l`` of the (New
  York) day of the last trade, ``pc`` (the tape has no previous day: that day's open),
  ``d``, ``dp`` and ``t``, the second of the last trade (unix seconds). Before the
  symbol's first trade, or for a symbol the market does not know, all zero, as Finnhub
  answers an unknown symbol.
- ``GET /api/v1/stock/tick?symbol=S&date=YYYY-MM-DD&limit=N&skip=K``: the symbol's
  trades of that New York date in market order, ``{"s","skip","count","total","t"
  (ms),"p","v","c"}`` (no ``x``: the tape has no venues, nor does the stream).

The token travels in ``X-Finnhub-Token`` (or ``?token=``, which Finnhub also takes); a
missing or wrong one is HTTP 401. The market clock is ``traded``: how many trades of the
tape the market has passed (``FinnhubSimulator``); a trade not traded yet is in neither
answer. A connector pointed here (``FINNHUB_REST_URL=http://HOST:PORT/api/v1``) sees the
market's past only, as at the vendor: gap backfill (``--backfill-from finnhub``) and
"the present" of the startup catch-up come through Finnhub's own protocol.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

import numpy as np
import pandas as pd
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

REST_PREFIX = "/api/v1/"
MAX_TICK_LIMIT = 25_000  # Finnhub's page size for /stock/tick
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NO_QUOTE = {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}


def json_response(status: int, body: Any) -> Response:
    """An HTTP response with ``body`` as JSON (the connection closes after it)."""
    data = json.dumps(body).encode()
    headers = Headers([("Connection", "close"), ("Content-Length", str(len(data))),
                       ("Content-Type", "application/json; charset=utf-8")])
    return Response(int(status), HTTPStatus(status).phrase, headers, data)


class FinnhubRest:
    """Answers the REST requests of a ``FinnhubSimulator`` (see the module)."""

    def __init__(self, tape, token: str | None) -> None:
        self.tape = tape
        self.token = token
        self._symbols = np.asarray(tape.symbol, dtype=object)
        self._dates: np.ndarray | None = None
        self.requests: list[str] = []  # paths asked, in order (no query: no token)

    def dates(self) -> np.ndarray:
        """The New York date of every trade of the tape (computed once)."""
        if self._dates is None:
            when = pd.to_datetime(np.asarray(self.tape.t_ms, dtype="int64"), unit="ms",
                                  utc=True).tz_convert("America/New_York")
            self._dates = np.asarray(when.strftime("%Y-%m-%d"), dtype=object)
        return self._dates

    def answer(self, request: Request, path: str, query: dict[str, str],
               traded: int) -> Response:
        self.requests.append(path)
        given = request.headers.get("X-Finnhub-Token") or query.get("token", "")
        if not given or (self.token is not None and given != self.token):
            return json_response(401, {"error": "Invalid API key"})
        symbol = query.get("symbol", "").strip().upper()
        route = path[len(REST_PREFIX) - 1:]
        if route not in ("/quote", "/stock/tick"):
            return json_response(404, {"error": "Not found"})
        if not symbol:
            return json_response(422, {"error": "symbol is required"})
        if route == "/quote":
            return json_response(200, self.quote(symbol, traded))
        date = query.get("date", "")
        if not _DATE.fullmatch(date):
            return json_response(422, {"error": "date must be YYYY-MM-DD"})
        try:
            skip = max(0, int(query.get("skip", "0")))
            limit = min(max(1, int(query.get("limit", str(MAX_TICK_LIMIT)))), MAX_TICK_LIMIT)
        except ValueError:
            return json_response(422, {"error": "skip and limit must be integers"})
        return json_response(200, self.ticks(symbol, date, skip, limit, traded))

    def quote(self, symbol: str, traded: int) -> dict:
        idx = np.flatnonzero(self._symbols[:traded] == symbol)
        if not len(idx):
            return dict(_NO_QUOTE)
        last = int(idx[-1])
        dates = self.dates()
        day = idx[dates[idx] == dates[last]]
        prices = np.asarray([self.tape.price[i] for i in day], dtype="float64")
        close, prev = float(self.tape.price[last]), float(prices[0])
        return {"c": close, "d": round(close - prev, 4),
                "dp": round((close - prev) / prev * 100, 4) if prev else None,
                "h": float(prices.max()), "l": float(prices.min()), "o": prev, "pc": prev,
                "t": int(self.tape.t_ms[last]) // 1000}

    def ticks(self, symbol: str, date: str, skip: int, limit: int, traded: int) -> dict:
        mine = (self._symbols[:traded] == symbol) & (self.dates()[:traded] == date)
        idx = np.flatnonzero(mine)
        chunk = idx[skip:skip + limit].tolist()
        tape = self.tape
        return {"s": symbol, "skip": skip, "count": len(chunk), "total": len(idx),
                "t": [int(tape.t_ms[i]) for i in chunk], "p": [tape.price[i] for i in chunk],
                "v": [tape.size[i] for i in chunk], "c": [tape.conditions[i] for i in chunk]}


__all__ = ["REST_PREFIX", "FinnhubRest", "json_response"]
