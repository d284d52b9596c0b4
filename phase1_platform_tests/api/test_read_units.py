"""Units of the read path, without a server: the columnar bar text equals the canonical
exporter's, JSON carries its digits, parameters parse to one-line errors naming themselves,
page tokens refuse anything not issued for the query, negotiation, and the relay's fan-out."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phase1_platform.api.negotiation import choose_media_type, is_current
from phase1_platform.api.problems import InvalidPageTokenError, NotAcceptableError
from phase1_platform.api.relay import StreamRelay
from phase1_platform.api.render import bars_json
from phase1_platform.api.tokens import PageTokens
from phase1_platform.app.bar_text import BarText, timestamp_text
from phase1_platform.app.read_params import (
    InvalidParameterError,
    NotFoundError,
    parse_instant,
    parse_limit,
    parse_symbol_list,
    parse_trading_date,
    parse_window,
)
from phase1_platform.core.calendar import MAX_TS_NS, trading_day_window
from phase1_platform.core.engine import sort_bars
from phase1_platform.core.export import CanonicalExporter, format_timestamps
from phase1_platform.core.schema import BAR_COLUMNS
from phase1_platform.core.timeframes import TIMEFRAMES

from ..support.hypothesis_ci import bounded

prices = st.one_of(st.floats(1e-8, 1e7, allow_nan=False), st.integers(1, 10**6).map(
    lambda c: c / 100), st.sampled_from([0.1, 0.2, 0.3, 1e-8, 123456.78901234, 5e-9]))
bar_rows = st.tuples(st.sampled_from(["SPY", "AAPL", "BRK.B", "A"]), st.sampled_from(
    list(TIMEFRAMES)), st.integers(0, MAX_TS_NS - 1), prices, prices, prices, prices,
    st.integers(0, 10**15), st.integers(0, 10**15), st.integers(0, 10**7))


def frame(rows) -> pd.DataFrame:
    data = dict(zip(BAR_COLUMNS, zip(*rows, strict=True), strict=True)) if rows else {
        c: [] for c in BAR_COLUMNS}
    return sort_bars(pd.DataFrame(data).astype(BAR_COLUMNS).drop_duplicates(
        ["symbol", "timeframe", "ts"]))


@given(st.lists(bar_rows, max_size=60))
@bounded(300)
def test_bar_text_is_byte_identical_to_the_canonical_exporter(rows):
    bars = frame(rows)
    assert BarText.of(bars).csv_bytes() == CanonicalExporter(bars).to_bytes()


@given(st.lists(st.integers(0, MAX_TS_NS - 1), max_size=50))
@bounded(200)
def test_timestamp_text_equals_core_format_timestamps(ts):
    values = np.asarray(ts + [0, MAX_TS_NS - 1], dtype="int64")
    assert timestamp_text(values).tolist() == format_timestamps(values).tolist()


@given(st.lists(bar_rows, min_size=1, max_size=30))
@bounded(150)
def test_bars_json_numbers_have_the_csv_digits(rows):
    bars = frame(rows)
    text = BarText.of(bars)
    body = json.loads(bars_json(text, "tok"), parse_float=str, parse_int=str)
    assert body["next_page_token"] == "tok"
    lines = text.csv_bytes().decode().splitlines()[1:]
    fields = ("symbol", "timeframe", "t", "o", "h", "l", "c", "v", "n", "vw")
    assert [",".join("" if b[f] is None else b[f] for f in fields) for b in body["bars"]] == lines
    json.loads(bars_json(text, None))  # valid JSON with real floats too


def test_an_empty_page_is_the_header_only_csv_and_an_empty_list():
    text = BarText.of(frame([]))
    assert text.csv_bytes() == CanonicalExporter(frame([])).to_bytes()
    assert json.loads(bars_json(text, None)) == {"bars": [], "next_page_token": None}


# ------------------------------------------------------------------------- parameters
def test_instants_dates_rfc3339_offsets_and_nanoseconds():
    day = trading_day_window("2013-10-07")[0]
    assert parse_instant("2013-10-07", "start") == day  # midnight New York
    assert parse_instant("2013-10-07T04:00:00Z", "start") == day
    assert parse_instant("2013-10-07T00:00:00-04:00", "start") == day
    assert parse_instant("2013-10-07t04:00:00.000000001z", "start") == day + 1
    assert parse_instant("2013-10-07 04:00:00.5+00:00", "start") == day + 500_000_000
    assert parse_window(None, None) == (0, MAX_TS_NS)


@pytest.mark.parametrize("text", ["2013-02-29", "2013-10-07T24:00:00Z", "2013-10-07T12:00Z",
                                  "2013-10-07T12:00:00", "2013-10-07T12:00:00+24:00", "now",
                                  "1969-12-31T23:59:59Z", "2262-04-12", "２０１３-10-07", ""])
def test_bad_instants_name_the_parameter_on_one_line(text):
    with pytest.raises(InvalidParameterError) as err:
        parse_instant(text, "end")
    assert err.value.parameter == "end" and str(err.value).startswith("end ")
    assert "\n" not in str(err.value)


def test_symbols_limits_and_dates():
    assert parse_symbol_list(" spy ,AAPL,spy,") == ("AAPL", "SPY")
    assert parse_symbol_list("", required=False) == ()
    for bad in ("", "SPY;", "../x", "x" * 17, ",".join(f"S{i}" for i in range(101))):
        with pytest.raises(InvalidParameterError) as err:
            parse_symbol_list(bad)
        assert err.value.parameter == "symbols"
    assert parse_limit(None) == 1000 and parse_limit("10000") == 10000
    for bad in ("0", "10001", "1e3", "x", "-5"):
        with pytest.raises(InvalidParameterError):
            parse_limit(bad)
    with pytest.raises(NotFoundError) as err:
        parse_trading_date("2013-10-05")  # a Saturday: no partition can exist
    assert err.value.parameter == "date"
    with pytest.raises(InvalidParameterError):
        parse_trading_date("2013-10-32")


# ----------------------------------------------------------------------------- tokens
def test_tokens_round_trip_and_refuse_what_was_not_issued_for_the_query():
    tokens = PageTokens(b"k" * 32)
    token = tokens.issue("bars", "q1", ["SPY", 42])
    assert tokens.read(token, "bars", "q1") == ["SPY", 42]
    head, mac = token.split(".")
    for bad, kind, query in [(token, "bars", "q2"), (token, "quarantine", "q1"),
                             (head + ".AAAA", "bars", "q1"), (mac + "." + head, "bars", "q1"),
                             (PageTokens(b"x" * 32).issue("bars", "q1", ["SPY", 42]), "bars",
                              "q1"), ("", "bars", "q1"), ("=.=", "bars", "q1")]:
        with pytest.raises(InvalidPageTokenError) as err:
            tokens.read(bad, kind, query)
        assert err.value.parameter == "page_token"


def test_negotiation_and_if_none_match():
    assert choose_media_type(None, None) == "application/json"
    assert choose_media_type("csv", "application/json") == "text/csv"
    assert choose_media_type(None, "text/csv;q=0.1, application/json;q=0.2") == \
        "application/json"
    assert choose_media_type(None, "application/*;q=1, text/csv;q=0.9") == "application/json"
    with pytest.raises(NotAcceptableError):
        choose_media_type(None, "text/html, */*;q=0")
    assert is_current('W/"a", "b"', '"b"') and is_current("*", '"x"')
    assert not is_current('"a"', '"b"') and not is_current(None, '"b"')


# ------------------------------------------------------------------------------ relay
def test_relay_filters_bars_by_symbol_passes_frames_unchanged_and_counts_drops():
    async def scenario():
        relay = StreamRelay(None, queue_size=3)
        spy, everyone = relay.subscribe(frozenset({"SPY"})), relay.subscribe(None)
        bar = '{"type":"bar","symbol":"SPY","timeframe":"1m","revision":1}'
        other = '{"type": "bar", "symbol": "AAPL"}'
        for text in (bar, other, '{"type":"subscribed"}', "not json", '{"type":"dropped"}'):
            relay.relay(text)
        got_spy = [await spy.next() for _ in range(3)]
        got_all = [await everyone.next() for _ in range(4)]
        for i in range(10):  # a slow client: the oldest are dropped, then counted
            relay.relay(bar.replace('"revision":1', f'"revision":{i}'))
        slow = [await spy.next() for _ in range(4)]
        relay.unsubscribe(spy)
        return got_spy, got_all, slow, await spy.next()

    got_spy, got_all, slow, after = asyncio.run(scenario())
    assert json.loads(got_spy[0]) == {"type": "subscribed", "schema": 1, "symbols": ["SPY"],
                                      "stream": "not configured"}
    assert got_spy[1:] == ['{"type":"bar","symbol":"SPY","timeframe":"1m","revision":1}',
                           '{"type":"dropped"}']
    assert got_all[1:] == [got_spy[1], '{"type": "bar", "symbol": "AAPL"}', got_spy[2]]
    assert json.loads(slow[0]) == {"type": "dropped", "count": 6}
    assert [json.loads(s)["revision"] for s in slow[1:]] == [6, 7, 8]  # the newest kept
    assert after is None
