"""Hostile vendor messages never break a connector (hypothesis, derandomized, bounded).

Finnhub stream frames and Alpaca trade pages / latest-trade replies are generated with
random JSON values in every field, missing keys, wrong types, huge numbers, NaN and
infinities. Whatever arrives: nothing raises (a reply whose shape is unreadable is one
``VendorError``), and every trade in is either a tick row out or a quarantined row with
a reason, with one arrival position each, so the counts add up.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from phase1_platform.connectors.alpaca import AlpacaConnector
from phase1_platform.connectors.finnhub import FinnhubConnector
from phase1_platform.core import TickNormalizer
from phase1_platform.core.calendar import MAX_TS_NS
from phase1_platform.core.errors import VendorError
from phase1_platform_tests.support.hypothesis_ci import bounded

SETTINGS = bounded(100)
T0_MS = 1_381_152_600_000  # 2013-10-07T13:30Z

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=3),
    max_leaves=8,
)


def field(plausible):
    return st.one_of(plausible, plausible, json_values)


finnhub_trade = st.fixed_dictionaries({}, optional={
    "s": field(st.sampled_from(["AAPL", "SPY", "", "bad sym"])),
    "p": field(st.floats(min_value=0.01, max_value=1e6) | st.integers(1, 10**6)),
    "v": field(st.integers(0, 10**6) | st.floats(0, 1e6)),
    "t": field(st.integers(T0_MS, T0_MS + 10**8) | st.integers(-(2**64), 2**64)),
    "c": field(st.lists(st.sampled_from(["1", "12", "37"]), max_size=3)),
    "x": json_values,
})
finnhub_message = st.one_of(
    st.fixed_dictionaries({"type": st.just("trade"),
                           "data": st.lists(finnhub_trade | json_values, max_size=6)}),
    st.fixed_dictionaries({"type": json_values}, optional={"data": json_values,
                                                           "msg": json_values}),
    json_values,
).map(lambda m: json.dumps(m)) | st.text(max_size=30) | st.binary(max_size=30)


@SETTINGS
@given(st.lists(finnhub_message, min_size=1, max_size=6))
def test_finnhub_frames_never_raise_and_every_trade_is_a_row_or_quarantined(messages):
    async def main():
        conn = FinnhubConnector("fuzz-token-0123", ws_url="ws://127.0.0.1:9",
                                rest_url="http://127.0.0.1:9", source="finnhub:fuzz",
                                rest_fallback=False)
        frames: list[pd.DataFrame] = []
        conn.register_callback(frames.append)
        for m in messages:
            await conn._handle(m, 0.0)
        await conn._seal_and_flush()
        return conn, frames

    conn, frames = asyncio.run(main())
    ticks = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"source_row": pd.Series([], dtype="int64")})
    q = conn.quarantine
    items_in = 0
    for m in messages:
        try:
            msg = json.loads(m)
        except (ValueError, UnicodeDecodeError, RecursionError):
            continue
        if isinstance(msg, dict) and msg.get("type") == "trade" and isinstance(
                msg.get("data"), list):
            items_in += len(msg["data"])
    assert conn.stats.trades + conn.stats.bad_trades == items_in
    assert len(ticks) == conn.stats.trades
    assert len(q) == conn.stats.bad_trades + conn.stats.malformed
    rows = sorted(ticks["source_row"].tolist() + q["source_row"].tolist())
    assert rows == list(range(conn.rows_received))  # one arrival position each
    assert q["reason"].str.len().gt(0).all()
    if len(ticks):
        assert np.isfinite(ticks["price"]).all() and np.isfinite(ticks["size"]).all()
        ns = ticks["timestamp"].astype("datetime64[ns, UTC]").astype("int64")
        assert ((ns >= 0) & (ns < MAX_TS_NS)).all()
        result = TickNormalizer().normalize(ticks)  # never raises on what we deliver
        assert len(result.ticks) + result.rejected == len(ticks)


alpaca_trade = st.fixed_dictionaries({}, optional={
    "t": field(st.sampled_from(["2013-10-07T14:30:00.123456789Z", "2013-10-07T14:30:01Z",
                                "2013-10-07T10:30:00-04:00", "2013-10-07T14:30:00",
                                "yesterday", "9999-01-01T00:00:00Z", "1969-12-31T23:59:59Z"])),
    "p": field(st.floats(min_value=0.01, max_value=1e6) | st.integers(1, 10**6)),
    "s": field(st.integers(0, 10**6)),
    "x": field(st.sampled_from(["Q", "D", "V"])),
    "z": field(st.sampled_from(["A", "B", "C"])),
    "i": field(st.integers(0, 2**64)),
    "c": field(st.lists(st.sampled_from(["@", "I", "F"]), max_size=3)),
})
alpaca_trades = st.lists(alpaca_trade | json_values, max_size=8)


def alpaca() -> AlpacaConnector:
    return AlpacaConnector("PKFUZZKEY000", "fuzz-secret-000", base_url="http://127.0.0.1:9")


@settings(SETTINGS, max_examples=50)
@given(alpaca_trades)
def test_alpaca_trades_never_raise_and_every_trade_is_a_row_or_quarantined(trades):
    conn = alpaca()
    frame = conn.trades_frame("AAPL", trades)
    q = conn.quarantine
    assert len(frame) + len(q) == len(trades)
    assert sorted(frame["source_row"].tolist() + q["source_row"].tolist()) == list(
        range(len(trades)))
    assert q["reason"].str.len().gt(0).all()
    assert np.isfinite(frame["price"]).all() and np.isfinite(frame["size"]).all()
    result = TickNormalizer().normalize(frame, source="alpaca")
    assert len(result.ticks) + result.rejected == len(frame)


alpaca_reply = st.one_of(
    st.fixed_dictionaries({"trades": st.fixed_dictionaries({"AAPL": alpaca_trades})},
                          optional={"next_page_token": st.none() | json_values}),
    st.fixed_dictionaries({"trades": st.fixed_dictionaries({"AAPL": alpaca_trade | json_values,
                                                            "SPY": alpaca_trade})}),
    st.fixed_dictionaries({}, optional={"trades": json_values, "next_page_token": json_values}),
    json_values,
)


@settings(SETTINGS, max_examples=30)
@given(st.lists(alpaca_reply, min_size=1, max_size=4))
def test_alpaca_replies_are_rows_quarantine_or_one_vendor_error(replies):
    conn = alpaca()
    conn.symbols = {"AAPL", "SPY"}
    served = iter(replies * 4)

    def fake_get(path, params):  # the SDK client's get, answering without a network
        return next(served, {"trades": {}})

    conn.client.get = fake_get
    for _ in range(3):  # a history page, then polls (first: latest, later: gap fills)
        try:
            frame = conn.fetch_trades("AAPL", "2013-10-07T00:00:00Z", "2013-10-08T00:00:00Z")
            assert {"timestamp", "price", "source_row"} <= set(frame.columns)
            polled = conn.poll_once()
            assert {"timestamp", "price", "source_row"} <= set(polled.columns)
        except VendorError as exc:
            text = str(exc)
            assert "\n" not in text and text.startswith("Alpaca")
    q = conn.quarantine
    assert q["reason"].str.len().gt(0).all()
    assert q["source_row"].is_unique
