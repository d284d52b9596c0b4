"""Alpaca market-data JSON -> checked trades, raw tick frames, canonical bars (no I/O).

A trade object is ``{"t","x","p","s","c","i","z"}``. Its types are checked field by
field (``connectors.fields``): ``t`` an RFC 3339 string with a zone (in 1970 ..
2262-04-10), ``p`` and ``s`` JSON numbers (never a bool or a string), ``x``/``z``
strings, ``c`` a list of condition codes, ``i`` an integer or a string; ``x``, ``z``,
``c``, ``i`` may be absent. A trade that breaks one is a bad row with its reason; the
other trades of the page are kept. A reply whose *shape* is wrong (``trades`` not an
object, a symbol's trades not a list, a page token that is not a string) cannot be read
at all: one ``ConnectorError`` line (a ``VendorError``), retryable.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import pandas as pd

from ...core.amendments import CANCEL, CORRECT
from ...core.schema import CANONICAL_COLUMNS, empty_canonical, empty_frame
from ...core.tick_fields import parse_timestamps
from ..base import ConnectorError
from ..fields import MISSING as MISSING_FIELD
from ..fields import Checker, column, objects, optional_number, raw_text

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
# checked trades: the raw tick fields plus ``ns`` (UTC), ``key`` (identity) and ``pos``
# (position in the list they came in)
CHECKED_COLUMNS: dict[str, object] = {
    "timestamp": "str", "ns": "int64", "price": "float64", "size": "float64",
    "exchange": "str", "conditions": "str", "trade_id": "str", "key": "str", "pos": "int64",
}
BAD_TIME = "trade t is not an RFC 3339 time"
NOT_AN_OBJECT = "trade is not an object"


def empty_raw() -> pd.DataFrame:
    return empty_frame(RAW_TICK_COLUMNS)


def _vendor_error(what: str, problem: str) -> ConnectorError:
    return ConnectorError(f"Alpaca {what}: unreadable reply ({problem})", retryable=True)


def page_items(response: Any, symbol: str, key: str = "trades") -> tuple[list, str | None]:
    """The ``key`` list (trades, bars) of ``symbol`` in a ``/v2/stocks/<key>`` page and
    the next page token."""
    if not isinstance(response, dict):
        raise _vendor_error(key, "not a JSON object")
    by_symbol = response.get(key)
    if by_symbol is None:
        by_symbol = {}
    if not isinstance(by_symbol, dict):
        raise _vendor_error(key, f"'{key}' is not an object of symbol -> {key}")
    items = by_symbol.get(symbol)
    if items is None:
        items = []
    if not isinstance(items, list):
        raise _vendor_error(key, f"the {key} of {symbol} are not a list")
    token = response.get("next_page_token")
    if token is not None and not isinstance(token, str):
        raise _vendor_error(key, "'next_page_token' is not a string")
    return items, token or None


def latest_trades(response: Any) -> dict:
    """Symbol -> trade object (unchecked) of a ``/v2/stocks/trades/latest`` reply."""
    if not isinstance(response, dict):
        raise _vendor_error("latest trades", "not a JSON object")
    trades = response.get("trades")
    if trades is None:
        return {}
    if not isinstance(trades, dict):
        raise _vendor_error("latest trades", "'trades' is not an object of symbol -> trade")
    return trades


def check_trades(trades: list) -> tuple[pd.DataFrame, list[tuple[int, object, str]]]:
    """(good trades as a CHECKED_COLUMNS frame, bad trades as (pos, item, reason))."""
    is_obj = np.fromiter((isinstance(t, dict) for t in trades), dtype=bool, count=len(trades))
    pos = np.flatnonzero(is_obj)
    bad: list[tuple[int, object, str]] = [(int(i), trades[i], NOT_AN_OBJECT)
                                          for i in np.flatnonzero(~is_obj)]
    items = [trades[i] for i in pos]
    check = Checker(len(items))
    t_text = check.text(column(items, "t"), "t")
    price = check.number(column(items, "p"), "p")
    size = check.number(column(items, "s"), "s")
    exchange = check.text(column(items, "x"), "x", required=False)
    tape = check.text(column(items, "z"), "z", required=False)
    ident = check.text(column(items, "i"), "i", required=False, allow_int=True)
    conditions = check.codes(column(items, "c"), "c")
    ts = parse_timestamps(pd.Series(t_text, dtype=object).astype("str"))
    check.flag(ts.unparseable | ts.no_zone, BAD_TIME)
    check.flag(ts.before_1970 | ts.after_2262, "trade t is out of range")
    good = check.good
    bad += [(int(pos[i]), items[i], str(check.reason[i])) for i in np.flatnonzero(~good)]
    bad.sort(key=lambda b: b[0])
    ex, tp, ids = (pd.Series(a[good], dtype="str") for a in (exchange, tape, ident))
    trade_id = (ex + "-" + tp + "-" + ids).where(ids.ne(""), "")
    ns = ts.ns[good]
    frame = pd.DataFrame({
        "timestamp": pd.Series(t_text[good], dtype="str"),
        "ns": ns,
        "price": price[good],
        "size": size[good],
        "exchange": ex,
        "conditions": pd.Series(conditions[good], dtype="str"),
        "trade_id": trade_id,
        "key": ex + "-" + tp + "-" + ids + "|" + pd.Series(ns).astype("str"),
        "pos": pos[good],
    })
    return frame.astype(CHECKED_COLUMNS), bad


def wire_time(value: Any) -> Any:
    """A stream message's ``t`` as the REST API writes it: the data stream sends msgpack
    timestamps (nanoseconds), JSON sends RFC 3339 text; anything else is left for the
    checks to refuse."""
    if isinstance(value, msgpack.Timestamp):
        ns = value.to_unix_nano()
        return str(np.datetime_as_string(np.datetime64(ns, "ns"), unit="ns")) + "Z"
    return value


AMENDMENT_FIELDS = {  # stream message type -> (trade id, price, size, conditions, new id)
    "x": ("i", "p", "s", None, None),  # cancel / error (a = C / E)
    "c": ("oi", "cp", "cs", "cc", "ci"),  # correction: original -> corrected
}


def check_amendments(messages: list[dict]) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """Stream cancels (``x``) and corrections (``c``) -> (the good ones as
    ``core.amendments.AMENDMENT_COLUMNS`` without source, source_row and raw, with ``pos``;
    the bad ones as (pos, reason)). Ids are formed as ``check_trades`` forms a trade's."""
    check = Checker(len(messages), "amendment")
    kinds = [m.get("T") for m in messages]
    cols = {k: [] for k in ("i", "p", "s", "c", "n")}
    for m, kind in zip(messages, kinds, strict=True):
        fields = AMENDMENT_FIELDS.get(kind, AMENDMENT_FIELDS["x"])
        for key, field in zip(cols, fields, strict=True):
            cols[key].append(MISSING_FIELD if field is None else m.get(field, MISSING_FIELD))
    symbol = check.text(column(messages, "S"), "S")
    t_text = check.text(objects([wire_time(m.get("t")) for m in messages]), "t")
    price = check.number(objects(cols["p"]), "price")
    size = check.number(objects(cols["s"]), "size")
    exchange = check.text(column(messages, "x"), "x", required=False)
    tape = check.text(column(messages, "z"), "z", required=False)
    ident = check.text(objects(cols["i"]), "trade id", allow_int=True)
    new_id = check.text(objects(cols["n"]), "corrected id", required=False, allow_int=True)
    conditions = check.codes(objects(cols["c"]), "conditions")
    ts = parse_timestamps(pd.Series(t_text, dtype=object).astype("str"))
    check.flag(ts.unparseable | ts.no_zone | ts.before_1970 | ts.after_2262,
               "amendment t is not an RFC 3339 time in range")
    good = check.good
    bad = [(int(i), str(check.reason[i])) for i in np.flatnonzero(~good)]
    ex, tp = (pd.Series(a[good], dtype="str") for a in (exchange, tape))
    ids, new = (pd.Series(a[good], dtype="str") for a in (ident, new_id))
    action = np.where(np.asarray(kinds, dtype=object)[good] == "c", CORRECT, CANCEL)
    frame = pd.DataFrame({
        "symbol": pd.Series(symbol[good], dtype="str"),
        "action": action,
        "trade_id": ex + "-" + tp + "-" + ids,
        "ts": ts.ns[good],
        "price": price[good], "size": size[good],
        "conditions": pd.Series(conditions[good], dtype="str"),
        "new_trade_id": (ex + "-" + tp + "-" + new).where(new.ne(""), ""),
        "pos": np.flatnonzero(good),
    })
    return frame, bad


def raw_tick_frame(checked: pd.DataFrame, symbol: str, source: str, rows: np.ndarray
                   ) -> pd.DataFrame:
    """Checked trades -> the raw tick frame the normalizer takes."""
    if not len(checked):
        return empty_raw()
    return pd.DataFrame({
        "timestamp": checked["timestamp"].to_numpy(),
        "symbol": symbol,
        "price": checked["price"].to_numpy(),
        "size": checked["size"].to_numpy(),
        "exchange": checked["exchange"].to_numpy(),
        "conditions": checked["conditions"].to_numpy(),
        "trade_id": checked["trade_id"].to_numpy(),
        "source": source,
        "source_row": np.asarray(rows, dtype="int64"),
    }).astype(RAW_TICK_COLUMNS)


def bars_frame(symbol: str, timeframe: str, bars: Any, tz: str,
               start_ns: int | None = None, end_ns: int | None = None) -> pd.DataFrame:
    """Alpaca bar objects (t,o,h,l,c,v,n,vw) -> the canonical bar frame.

    Daily bars are labelled by the session date's midnight in ``tz`` (in UTC).
    """
    if not bars:
        return empty_canonical()
    if not isinstance(bars, list) or not all(isinstance(b, dict) for b in bars):
        raise _vendor_error("bars", f"the bars of {symbol} are not a list of objects")
    check = Checker(len(bars), "bar")
    values = {k: check.number(column(bars, k), k) for k in ("o", "h", "l", "c", "v")}
    t_text = check.text(column(bars, "t"), "t")
    if check.bad.any():
        first = int(np.flatnonzero(check.bad)[0])
        raise _vendor_error("bars", f"{check.reason[first]}: {raw_text(bars[first], 200)}")
    ts = pd.to_datetime(pd.Series(t_text, dtype="str"), utc=True, format="ISO8601",
                        errors="coerce")
    if ts.isna().any():
        bad = t_text[ts.isna().to_numpy()][0]
        raise ConnectorError(f"Alpaca bars: unparseable bar timestamp {bad!r}")
    if timeframe == "1d":
        ts = ts.dt.tz_convert(tz).dt.normalize().dt.tz_convert("UTC")
    ts_ns = ts.astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").view("int64")
    optional = {k: optional_number(column(bars, k)) for k in ("n", "vw")}
    frame = pd.DataFrame({
        "symbol": symbol, "timeframe": timeframe, "ts": ts_ns,
        "open": values["o"], "high": values["h"], "low": values["l"], "close": values["c"],
        "volume": values["v"], "trade_count": optional["n"], "vwap": optional["vw"],
    })
    keep = np.ones(len(frame), dtype=bool)
    if start_ns is not None and timeframe != "1d":
        keep &= frame["ts"].to_numpy() >= start_ns
    if end_ns is not None and timeframe != "1d":
        keep &= frame["ts"].to_numpy() < end_ns
    frame = frame[keep].sort_values("ts", kind="stable").reset_index(drop=True)
    return frame.astype(CANONICAL_COLUMNS)[list(CANONICAL_COLUMNS)]

