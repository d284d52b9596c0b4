"""Finnhub messages -> raw tick frames and quarantine rows (pure functions, no I/O).

Trade frames: ``{"type":"trade","data":[{"s","p","t"(ms),"v","c"}]}``. The protocol's
types are checked field by field (``connectors.fields``): ``p``, ``v`` and ``t`` are
JSON numbers (never a bool or a string; ``t`` a whole number of milliseconds in
1970-01-01 .. 2262-04-10), ``s`` is a string, ``c`` a list of condition codes (absent
or ``null`` means none). A trade that breaks one is a bad row with its reason; the
other trades of the frame are kept. Value checks (price > 0, symbol pattern) are the
normalizer's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...core.calendar import MAX_TS_NS, MIN_TS_NS
from ...core.schema import CANONICAL_COLUMNS, empty_canonical
from ..base import ConnectorError, quarantine_frame
from ..fields import MISSING, Checker, column, objects, raw_text
from ..net import mask_secret

MIN_MS = MIN_TS_NS // 1_000_000
MAX_MS = MAX_TS_NS // 1_000_000  # exclusive
CANDLE_RESOLUTIONS = {"1": "1m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "D": "1d"}


class Reason:
    MALFORMED_JSON = "malformed JSON frame"
    NOT_AN_OBJECT = "frame is not a JSON object"
    UNKNOWN_TYPE = "unknown message type"
    BAD_TRADE_DATA = "trade message without a data list"
    BAD_TRADE_ITEM = "trade item is not an object"


@dataclass(frozen=True)
class Decoded:
    """One frame: ``kind`` is ping, trade (``data`` the item list), error (``error`` the
    masked server message) or bad (``reason``); ``text`` is the frame as received."""

    kind: str
    text: str
    data: list | None = None
    error: str | None = None
    reason: str | None = None


def decode(message: str | bytes) -> Decoded:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError):
        return Decoded("bad", text, reason=Reason.MALFORMED_JSON)
    if not isinstance(msg, dict):
        return Decoded("bad", text, reason=Reason.NOT_AN_OBJECT)
    kind = msg.get("type")
    if kind == "ping":
        return Decoded("ping", text)
    if kind == "trade":
        data = msg.get("data")
        if not isinstance(data, list):
            return Decoded("bad", text, reason=Reason.BAD_TRADE_DATA)
        return Decoded("trade", text, data=data)
    if kind == "error":
        err = msg.get("msg", text)
        return Decoded("error", text, error=mask_secret(err if isinstance(err, str)
                                                          else raw_text(err, 500)))
    shown = raw_text(kind, 60)
    return Decoded("bad", text, reason=mask_secret(f"{Reason.UNKNOWN_TYPE} {shown}"))


def ms_to_utc(ms: np.ndarray) -> pd.Series:
    """Whole milliseconds (float64 or int64, already range-checked) -> UTC ns series."""
    ns = np.asarray(ms).astype("int64") * 1_000_000
    return pd.Series(pd.to_datetime(ns, utc=True).as_unit("ns"))


def check_trades(check: Checker, p: np.ndarray, v: np.ndarray, t: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    price = check.number(p, "p")
    size = check.number(v, "v")
    ms = check.number(t, "t", integral=True, lo=MIN_MS, hi=MAX_MS)
    return price, size, ms


def trade_frame(items: list[dict], rows: np.ndarray, source: str
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stream trade objects (already known to be dicts) -> (raw tick frame, quarantine)."""
    check = Checker(len(items))
    price, size, ms = check_trades(check, column(items, "p"), column(items, "v"),
                                   column(items, "t"))
    symbol = check.text(column(items, "s"), "s")
    conditions = check.codes(column(items, "c"), "c")
    good = check.good
    ticks = pd.DataFrame({
        "timestamp": ms_to_utc(ms[good]),
        "symbol": pd.Series(symbol[good], dtype="str"),
        "price": price[good],
        "size": size[good],
        "conditions": pd.Series(conditions[good], dtype="str"),
        "source": source,
        "source_row": np.asarray(rows, dtype="int64")[good],
    })
    bad = np.flatnonzero(~good)
    quarantine = quarantine_frame(source, np.asarray(rows)[bad], check.reason[bad],
                                  [raw_text(items[i]) for i in bad])
    return ticks, quarantine


def tick_page(data: Any, symbol: str, date: str, skip: int
              ) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """A ``/stock/tick`` answer -> (raw tick frame, quarantine, rows in the page).

    ``source`` is ``finnhub-tick:<SYMBOL>:<date>`` and ``source_row`` the row's position
    in the vendor's day, so fetching the day twice gives the same identities.
    """
    what = f"Finnhub /stock/tick {symbol} {date}"
    if not isinstance(data, dict):
        raise ConnectorError(f"{what}: unexpected answer (not a JSON object)", retryable=True)
    t = data.get("t") if data.get("t") is not None else []
    if not isinstance(t, list):
        raise ConnectorError(f"{what}: unexpected answer (t is not a list)", retryable=True)
    n = len(t)
    cols = {}
    for key in ("p", "v", "x", "c"):
        value = data.get(key, MISSING)
        if value is MISSING or value is None:
            value = [MISSING] * n
        if not isinstance(value, list) or len(value) != n:
            raise ConnectorError(f"{what}: unexpected answer ({key} is not a list of {n})",
                                 retryable=True)
        cols[key] = objects(value)
    cols["t"] = objects(t)
    check = Checker(n)
    price, size, ms = check_trades(check, cols["p"], cols["v"], cols["t"])
    exchange = check.text(cols["x"], "x", required=False)
    conditions = check.codes(cols["c"], "c")
    good = check.good
    source = f"finnhub-tick:{symbol}:{date}"
    rows = np.arange(skip, skip + n, dtype="int64")
    ticks = pd.DataFrame({
        "timestamp": ms_to_utc(ms[good]),
        "symbol": symbol,
        "price": price[good],
        "size": size[good],
        "exchange": pd.Series(exchange[good], dtype="str"),
        "conditions": pd.Series(conditions[good], dtype="str"),
        "source": source,
        "source_row": rows[good],
    })
    bad = np.flatnonzero(~good)
    raws = [raw_text({k: _plain(cols[k][i]) for k in ("t", "p", "v", "x", "c")}) for i in bad]
    return ticks, quarantine_frame(source, rows[bad], check.reason[bad], raws), n


def candles_frame(data: Any, symbol: str, timeframe: str) -> pd.DataFrame:
    """A ``/stock/candle`` answer -> canonical bar frame (no trade_count, vwap)."""
    what = f"Finnhub /stock/candle {symbol}"
    status = data.get("s") if isinstance(data, dict) else None
    if status == "no_data":
        return empty_canonical()
    if status != "ok":
        raise ConnectorError(f"{what}: unexpected answer s={raw_text(status, 40)}")
    cols = {k: data.get(k) for k in ("t", "o", "h", "l", "c", "v")}
    lengths = {len(v) if isinstance(v, list) else -1 for v in cols.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise ConnectorError(f"{what}: unexpected answer (columns t,o,h,l,c,v differ)")
    check = Checker(lengths.pop(), "candle")
    seconds = check.number(objects(cols["t"]), "t", integral=True, lo=MIN_MS // 1000,
                           hi=MAX_MS // 1000)
    values = {k: check.number(objects(cols[k]), k) for k in ("o", "h", "l", "c", "v")}
    if check.bad.any():
        first = int(np.flatnonzero(check.bad)[0])
        raise ConnectorError(f"{what}: unexpected answer ({check.reason[first]})")
    ts = pd.to_datetime(seconds.astype("int64"), unit="s", utc=True)
    if timeframe == "1d":  # label: the session date's midnight in New York
        ts = ts.tz_convert("America/New_York").normalize().tz_convert("UTC")
    frame = pd.DataFrame({
        "symbol": symbol, "timeframe": timeframe, "ts": ts.as_unit("ns").asi8,
        "open": values["o"], "high": values["h"], "low": values["l"],
        "close": values["c"], "volume": values["v"], "trade_count": np.nan, "vwap": np.nan,
    })
    return frame.astype(CANONICAL_COLUMNS)


def _plain(v: Any) -> Any:
    return None if v is MISSING else v
