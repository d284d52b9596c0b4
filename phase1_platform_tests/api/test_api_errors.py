"""Bad input of every kind is a 4xx ``application/problem+json`` naming the parameter; never
a 500 or a traceback (real server, filled store, SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json

import pytest

from phase1_platform.api.tokens import PageTokens
from phase1_platform.app.read_bars import BarSelection

from .harness import DAY, NEXT_DAY, is_problem

BAD = [
    # (query, parameter)
    ({"symbols": "SPY", "timeframe": "2m"}, "timeframe"),
    ({"symbols": "SPY", "timeframe": "1M"}, "timeframe"),
    ({"symbols": "SPY", "timeframe": ""}, "timeframe"),
    ({"symbols": "../../etc"}, "symbols"),
    ({"symbols": "';DROP TABLE bars;--"}, "symbols"),
    ({"symbols": "SPY,' OR '1'='1"}, "symbols"),
    ({"symbols": "SPY\x00"}, "symbols"),
    ({"symbols": "A" * 17}, "symbols"),
    ({"symbols": "ＳＰＹ"}, "symbols"),
    ({"symbols": ",,"}, "symbols"),
    ({"symbols": ",".join(f"S{i}" for i in range(101))}, "symbols"),
    ({}, "symbols"),
    ({"symbols": "SPY", "start": "2013-02-30"}, "start"),
    ({"symbols": "SPY", "start": "2013-13-01"}, "start"),
    ({"symbols": "SPY", "start": "1969-12-31"}, "start"),
    ({"symbols": "SPY", "end": "2262-04-11"}, "end"),
    ({"symbols": "SPY", "start": "yesterday"}, "start"),
    ({"symbols": "SPY", "start": ""}, "start"),
    ({"symbols": "SPY", "start": "2013-10-07T25:00:00Z"}, "start"),
    ({"symbols": "SPY", "start": "2013-10-07T13:30:60Z"}, "start"),
    ({"symbols": "SPY", "start": "2013-10-07T13:30:00"}, "start"),  # no zone
    ({"symbols": "SPY", "start": "2013-10-07T13:30:00+25:00"}, "start"),
    ({"symbols": "SPY", "end": "2013-10-07T13:30:00.1234567890Z"}, "end"),
    ({"symbols": "SPY", "start": NEXT_DAY, "end": DAY}, "end"),
    ({"symbols": "SPY", "start": DAY, "end": DAY}, "end"),
    ({"symbols": "SPY", "start": "2013-10-07T14:00:00Z", "end": "2013-10-07T10:00:00-04:00"},
     "end"),
    ({"symbols": "SPY", "limit": "0"}, "limit"),
    ({"symbols": "SPY", "limit": "-1"}, "limit"),
    ({"symbols": "SPY", "limit": "10001"}, "limit"),
    ({"symbols": "SPY", "limit": "ten"}, "limit"),
    ({"symbols": "SPY", "limit": "1.5"}, "limit"),
    ({"symbols": "SPY", "format": "xml"}, "format"),
    ({"symbols": "SPY", "page_token": "x" * 2000}, "page_token"),
]


@pytest.mark.parametrize(("query", "parameter"), BAD, ids=[f"{p}-{i}" for i, (_, p) in
                                                            enumerate(BAD)])
def test_bad_bars_query_is_a_problem_naming_the_parameter(client, query, parameter):
    is_problem(client.get("/v1/bars", params=query), 422, parameter)


def _token(client, query: dict) -> str:
    token = client.get("/v1/bars", params=query | {"limit": 5}).json()["next_page_token"]
    assert token
    return token


def _tampered(token: str) -> str:
    head, mac = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    payload[3][1] += 60_000_000_000  # skip a minute of bars
    forged = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    return forged.rstrip(b"=").decode() + "." + mac


def test_forged_tampered_and_other_query_page_tokens_are_400_naming_page_token(client):
    query = {"symbols": "SPY,AAPL", "timeframe": "1m", "start": DAY, "end": NEXT_DAY}
    token = _token(client, query)
    other_key = PageTokens(b"another server's key").issue(
        "bars", BarSelection.parse("SPY,AAPL", "1m", DAY, NEXT_DAY).digest(), ["AAPL", 0])
    for bad, why in [("not-a-token", "issued"), (_tampered(token), "not issued"),
                     (other_key, "not issued"), (token[:-2], ""), ("a.b.c", ""),
                     ("%%%.%%%", "")]:
        body = is_problem(client.get("/v1/bars", params=query | {"page_token": bad}), 400,
                          "page_token")
        assert why in body["detail"]
    for other in ({"symbols": "SPY"}, {"timeframe": "5m"}, {"end": "2013-10-09"},
                  {"start": "2013-10-07T00:00:00Z"}):
        body = is_problem(client.get("/v1/bars", params=query | other | {"page_token": token}),
                          400, "page_token")
        assert "another query" in body["detail"]
    quarantine = client.get("/v1/quarantine", params={"date": DAY, "symbol": "AAPL",
                                                      "page_token": token})
    is_problem(quarantine, 400, "page_token")  # a bars token is no quarantine token


def test_a_token_serves_the_same_query_with_another_page_size(client):
    query = {"symbols": "SPY,AAPL", "timeframe": "1h"}
    whole = client.get("/v1/bars", params=query).json()["bars"]
    token = _token(client, query)
    rest = client.get("/v1/bars", params=query | {"page_token": token, "limit": 1000})
    assert whole[:5] + rest.json()["bars"] == whole


def test_unknown_paths_and_methods_are_problems_too(client):
    is_problem(client.get("/v2/bars"), 404)
    is_problem(client.get("/v1/bars/SPY"), 404)
    body = is_problem(client.post("/v1/bars", params={"symbols": "SPY"}), 405)
    assert "GET" in body["detail"]
    is_problem(client.delete(f"/v1/partitions/{DAY}/SPY"), 405)


def test_cors_allows_only_the_dashboard_origin_and_exposes_the_etag(served, client):
    origin = served.dashboard
    r = client.get("/v1/bars", params={"symbols": "SPY", "timeframe": "1d"},
                   headers={"Origin": origin})
    assert r.headers["access-control-allow-origin"] == origin
    assert "etag" in r.headers["access-control-expose-headers"].lower()
    twin = origin.replace("127.0.0.1", "localhost")
    assert client.get("/v1/health", headers={"Origin": twin}).headers[
        "access-control-allow-origin"] == twin
    foreign = client.get("/v1/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers
    preflight = client.options("/v1/bars", headers={
        "Origin": origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match"})
    assert preflight.status_code == 200
    assert "if-none-match" in preflight.headers["access-control-allow-headers"].lower()
