"""``GET /v1/bars`` on a real server and a store filled by ``phase1 replay`` (SQLite and
PostgreSQL): pages equal ``phase1 export`` row for row, CSV bytes equal it, ETags are the
canonical sha256 (304 on If-None-Match), Arrow round-trips, gzip, windows and negotiation."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pyarrow as pa
import pytest

from phase1_platform.core.export import CanonicalExporter, compute_hash
from phase1_platform.core.schema import CANONICAL_COLUMNS
from phase1_platform.core.timeframes import TIMEFRAMES

from .harness import DAY, NEXT_DAY, export_csv, is_problem

FIELDS = ("symbol", "timeframe", "t", "o", "h", "l", "c", "v", "n", "vw")
# small page sizes: several pages per symbol for 1m, pages that end inside a symbol's bars
LIMITS = {"1m": 97, "5m": 41, "15m": 13, "30m": 9, "1h": 5, "4h": 2, "1d": 1}


def digits(text: str) -> dict:
    """A JSON body with every number kept as its text (the digits the server wrote)."""
    return json.loads(text, parse_float=str, parse_int=str)


def csv_line(bar: dict) -> str:
    return ",".join("" if bar[f] is None else str(bar[f]) for f in FIELDS)


def body_lines(data: bytes) -> list[str]:
    return data.decode("ascii").splitlines()[1:]


@pytest.mark.parametrize("timeframe", list(TIMEFRAMES))
def test_small_pages_over_every_symbol_equal_phase1_export_row_for_row(
        filled, client, timeframe, tmp_path):
    symbols = ",".join(filled.symbols)
    expected = body_lines(export_csv(filled.url, symbols, timeframe, DAY, DAY,
                                     tmp_path / "export.csv"))
    params = {"symbols": symbols, "timeframe": timeframe, "start": DAY, "end": NEXT_DAY,
              "limit": LIMITS[timeframe]}
    got, token = [], None
    while True:
        r = client.get("/v1/bars", params=params | ({"page_token": token} if token else {}))
        assert r.status_code == 200, r.text
        body = digits(r.text)
        assert len(body["bars"]) <= LIMITS[timeframe]
        got += [csv_line(b) for b in body["bars"]]
        token = body["next_page_token"]
        if token is None:
            break
        assert len(body["bars"]) == LIMITS[timeframe]  # only the last page is short
    assert len(expected) > LIMITS[timeframe]  # the query really spans several pages
    assert got == expected  # every bar exactly once, in canonical order, same digits
    assert {line.split(",")[0] for line in got} == set(filled.symbols)


def test_csv_is_byte_identical_to_phase1_export(filled, client, tmp_path):
    for i, (symbols, timeframe) in enumerate([(",".join(filled.symbols), "1m"),
                                              ("SPY,AAPL", "5m"), ("aapl", "1d")]):
        expected = export_csv(filled.url, symbols.upper(), timeframe, DAY, DAY,
                              tmp_path / f"e{i}.csv")
        query = {"symbols": symbols, "timeframe": timeframe, "start": DAY, "end": NEXT_DAY}
        by_format = client.get("/v1/bars", params=query | {"format": "csv", "limit": 1})
        by_accept = client.get("/v1/bars", params=query, headers={"Accept": "text/csv"})
        for r in (by_format, by_accept):
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/csv")
            assert r.content == expected  # whole selection: limit ignored
            assert r.headers["etag"] == f'"{compute_hash(expected)}"'


def test_one_page_json_etag_is_the_selection_sha256_and_if_none_match_is_304(
        filled, client, tmp_path):
    expected = export_csv(filled.url, "SPY", "1m", DAY, DAY, tmp_path / "spy.csv")
    query = {"symbols": "SPY", "timeframe": "1m", "start": DAY, "end": NEXT_DAY,
             "limit": 10000}
    r = client.get("/v1/bars", params=query)
    tag = r.headers["etag"]
    assert tag == f'"{compute_hash(expected)}"'
    assert r.json()["next_page_token"] is None
    assert r.headers["cache-control"] == "no-cache"
    for header in (tag, f"W/{tag}", f'"sha256:nope", {tag}', "*"):
        again = client.get("/v1/bars", params=query, headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == tag
    stale = client.get("/v1/bars", params=query, headers={"If-None-Match": '"sha256:old"'})
    assert stale.status_code == 200 and stale.content == r.content
    csv = client.get("/v1/bars", params=query | {"format": "csv"},
                     headers={"If-None-Match": tag})
    assert csv.status_code == 304  # the same rows, the same tag


def test_a_page_etag_is_the_sha256_of_the_rows_it_carries(client):
    query = {"symbols": "SPY,IBM,AIG", "timeframe": "15m", "limit": 10}
    first = client.get("/v1/bars", params=query)
    lines = [csv_line(b) for b in digits(first.text)["bars"]]
    header = "symbol,timeframe,timestamp,open,high,low,close,volume,trade_count,vwap\n"
    rendered = (header + "".join(line + "\n" for line in lines)).encode()
    assert first.headers["etag"] == f'"{compute_hash(rendered)}"'


def test_arrow_stream_round_trips_to_the_same_canonical_csv(filled, client):
    query = {"symbols": ",".join(filled.symbols), "timeframe": "5m", "start": DAY,
             "end": NEXT_DAY}
    csv = client.get("/v1/bars", params=query | {"format": "csv"})
    r = client.get("/v1/bars", params=query,
                   headers={"Accept": "application/vnd.apache.arrow.stream"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(r.content).read_all()
    assert table.schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")
    assert table.schema.metadata[b"phase1.sha256"].decode() == r.headers["etag"].strip('"')
    frame = table.to_pandas()
    frame["ts"] = frame.pop("timestamp").astype("int64")
    frame = frame.astype({c: t for c, t in CANONICAL_COLUMNS.items()})[list(CANONICAL_COLUMNS)]
    assert CanonicalExporter(frame).to_bytes() == csv.content
    assert r.headers["etag"] == csv.headers["etag"]


def test_gzip_when_asked_and_identity_otherwise(client):
    query = {"symbols": "SPY", "timeframe": "1m"}
    plain = client.get("/v1/bars", params=query, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    raw = client.stream("GET", "/v1/bars", params=query, headers={"Accept-Encoding": "gzip"})
    with raw as r:
        assert r.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in r.headers["vary"].lower()
        packed = b"".join(r.iter_raw())
    assert gzip.decompress(packed) == plain.content
    assert len(packed) < len(plain.content) / 3


def test_start_is_inclusive_end_exclusive_to_the_nanosecond(client):
    bars = client.get("/v1/bars", params={"symbols": "SPY", "timeframe": "1m"}).json()["bars"]
    t = [b["t"] for b in bars]
    k = len(t) // 2
    window = {"symbols": "SPY", "timeframe": "1m", "start": t[k], "end": t[k + 3]}
    got = client.get("/v1/bars", params=window).json()["bars"]
    assert [b["t"] for b in got] == t[k:k + 3]
    after = window | {"start": t[k].replace("Z", ".000000001Z")}
    assert [b["t"] for b in client.get("/v1/bars", params=after).json()["bars"]] == \
        t[k + 1:k + 3]
    # the same instant written with an offset
    local = dt.datetime.fromisoformat(t[k]).astimezone(dt.timezone(dt.timedelta(hours=-4)))
    offset = window | {"start": local.isoformat()}
    assert client.get("/v1/bars", params=offset).json()["bars"] == got


def test_a_date_means_the_start_of_its_partition_window(filled, client):
    day = client.get("/v1/bars", params={"symbols": "SPY", "timeframe": "1d", "start": DAY,
                                         "end": NEXT_DAY}).json()["bars"]
    assert [b["t"] for b in day] == ["2013-10-07T04:00:00Z"]  # midnight New York
    before = client.get("/v1/bars", params={"symbols": "SPY", "timeframe": "1d",
                                            "end": DAY}).json()["bars"]
    assert before == []


def test_negotiation_format_wins_then_accept_with_q_values(client):
    query = {"symbols": "AAPL", "timeframe": "1h"}
    types = {
        "text/csv;q=0.5, application/vnd.apache.arrow.stream": "application/vnd.apache.arrow",
        "text/*": "text/csv", "*/*": "application/json",
        "text/html,application/xhtml+xml,*/*;q=0.8": "application/json",
    }
    for accept, expected in types.items():
        r = client.get("/v1/bars", params=query, headers={"Accept": accept})
        assert r.headers["content-type"].startswith(expected), (accept, r.headers)
    r = client.get("/v1/bars", params=query | {"format": "json"}, headers={"Accept": "text/csv"})
    assert r.headers["content-type"] == "application/json"
    is_problem(client.get("/v1/bars", params=query, headers={"Accept": "image/png"}), 406,
               "Accept")


def test_symbols_are_case_insensitive_and_deduplicated(client):
    one = client.get("/v1/bars", params={"symbols": "SPY", "timeframe": "1h"})
    many = client.get("/v1/bars", params={"symbols": " spy,SPY,, Spy ", "timeframe": "1h"})
    assert many.content == one.content and many.headers["etag"] == one.headers["etag"]


def test_a_symbol_without_bars_is_an_empty_page_with_the_empty_export_hash(
        filled, client, tmp_path):
    r = client.get("/v1/bars", params={"symbols": "ZZZZ", "timeframe": "1m"})
    assert r.json() == {"bars": [], "next_page_token": None}
    empty = export_csv(filled.url, "ZZZZ", "1m", DAY, DAY, tmp_path / "z.csv")
    assert r.headers["etag"] == f'"{compute_hash(empty)}"'
