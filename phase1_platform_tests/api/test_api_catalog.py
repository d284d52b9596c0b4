"""Health, symbols, partitions, quarantine, OpenAPI and the docs page on a real server and a
store filled by ``phase1 replay`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import re

import pytest

from phase1_platform.cli import main as phase1
from phase1_platform.core.export import compute_hash
from phase1_platform.core.partition import Partition
from phase1_platform.core.timeframes import DEFAULT_TIMEFRAMES, TIMEFRAMES
from phase1_platform.storage import (
    CheckResultRepository,
    QuarantineRepository,
    Store,
    mask_url,
)

from .harness import DAY, is_problem

PATHS = {"/v1/health", "/v1/symbols", "/v1/bars", "/v1/partitions/{date}/{symbol}",
         "/v1/quarantine"}


@pytest.fixture(scope="module")
def store(filled):
    s = Store.from_url(filled.url)
    yield s
    s.dispose()


def test_health_names_the_masked_store_its_revision_and_the_stream(filled, client, store):
    r = client.get("/v1/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "store": mask_url(filled.url),
                        "schema_revision": store.head_revision(), "stream": "not configured",
                        "stream_url": None}


def test_symbols_lists_each_symbol_its_dates_and_timeframes(filled, client):
    body = client.get("/v1/symbols").json()
    assert [s["symbol"] for s in body["symbols"]] == filled.symbols
    for s in body["symbols"]:
        assert s == {"symbol": s["symbol"], "first_date": DAY, "last_date": DAY,
                     "timeframes": list(TIMEFRAMES)}


def test_partition_counts_rule_set_and_export_hash_match_the_store(filled, client, store,
                                                                    tmp_path):
    out = tmp_path / "spy.csv"
    assert phase1(["export", "--database-url", filled.url, "--symbols", "SPY", "--start", DAY,
                   "--end", DAY, "--output", str(out)]) == 0  # its default timeframes
    body = client.get(f"/v1/partitions/{DAY}/SPY").json()
    assert body["partition"] == f"{DAY}|SPY" and body["date"] == DAY and body["symbol"] == "SPY"
    assert body["export"] == {"sha256": compute_hash(out.read_bytes()),
                              "timeframes": list(DEFAULT_TIMEFRAMES),
                              "bars": len(out.read_bytes().splitlines()) - 1}
    part = Partition(DAY, "SPY")
    assert body["counts"]["ticks"] == store.ticks.count_canonical(part) > 0
    per_tf = {}
    for tf in TIMEFRAMES:
        csv = client.get("/v1/bars", params={"symbols": "SPY", "format": "csv",
                                             "timeframe": tf}).text
        per_tf[tf] = len(csv.splitlines()) - 1
    assert body["counts"]["bars"] == per_tf
    assert body["counts"]["quarantined"] == {"total": 0, "by_reason": {}}
    assert body["rule_set"] == "default"


def test_partition_parity_and_quality_are_the_recorded_verdicts(client, store):
    body = client.get(f"/v1/partitions/{DAY}/SPY").json()
    recorded = {(c.check_name, c.timeframe): c
                for c in CheckResultRepository(store).read(f"{DAY}|SPY")}
    parity = body["parity"]
    assert list(parity["timeframes"]) == ["1m", "5m", "1d"]  # by duration
    for tf, got in parity["timeframes"].items():
        c = recorded[("parity", tf)]
        assert got["passed"] == c.passed and got["stale"] is False
        assert got["status"] == ("passed" if c.passed else "failed")
        assert got["matched_pct"] == c.summary["match_pct"]
        assert got["bars_compared"] == c.summary["bars_compared"]
        assert got["mismatches_by_category"] == c.summary["mismatched_by_category"]
        assert got["summary"] == c.summary
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", got["evaluated_at"])
    compared = sum(t["bars_compared"] for t in parity["timeframes"].values())
    matched = sum(t["bars_matched"] for t in parity["timeframes"].values())
    assert compared > 0 and parity["compared"] is True
    assert parity["matched_pct"] == round(100 * matched / compared, 4)
    quality = body["quality"]
    assert list(quality["timeframes"]) == ["1m", "1d"]
    assert quality["rejected_ratio"] is None
    for tf, got in quality["timeframes"].items():
        assert got["passed"] == recorded[("quality", tf)].passed
        assert got["failed_rules"] == recorded[("quality", tf)].summary["failed_rules"]


def test_a_verdict_on_other_bars_is_stale_and_one_never_judged_is_null(client):
    bac = client.get(f"/v1/partitions/{DAY}/BAC").json()
    assert bac["quality"]["timeframes"]["5m"]["status"] == "stale"
    assert bac["quality"]["timeframes"]["5m"]["stale"] is True
    assert bac["quality"]["status"] == "stale" and bac["parity"] is None
    aapl = client.get(f"/v1/partitions/{DAY}/aapl").json()  # symbols are case-insensitive
    assert aapl["parity"] is None and aapl["quality"]["timeframes"] == {}
    assert aapl["quality"]["rejected_ratio"]["summary"]["rejected"] == \
        aapl["counts"]["quarantined"]["total"] > 0


def test_quarantine_rows_and_reasons_equal_the_store_by_pages(client, store):
    rows = QuarantineRepository(store).read(f"{DAY}|AAPL")
    reasons = rows["reason"].value_counts().to_dict()
    got, token = [], None
    while True:
        params = {"date": DAY, "symbol": "AAPL", "limit": 2} | (
            {"page_token": token} if token else {})
        body = client.get("/v1/quarantine", params=params).json()
        assert body["partition"] == f"{DAY}|AAPL" and body["total"] == len(rows)
        assert body["by_reason"] == dict(sorted(reasons.items()))
        got += body["rows"]
        token = body["next_page_token"]
        if token is None:
            break
    assert got == [{"source": s, "source_row": int(n), "reason": w, "raw": raw}
                   for s, n, w, raw in rows.itertuples(index=False)]
    partition = client.get(f"/v1/partitions/{DAY}/AAPL").json()
    assert partition["counts"]["quarantined"] == {"total": len(rows),
                                                  "by_reason": body["by_reason"]}
    first = client.get("/v1/quarantine", params={"date": DAY, "symbol": "AAPL", "limit": 1})
    other = {"date": DAY, "symbol": "SPY", "page_token": first.json()["next_page_token"]}
    is_problem(client.get("/v1/quarantine", params=other), 400, "page_token")
    empty = client.get("/v1/quarantine", params={"date": DAY, "symbol": "SPY"}).json()
    assert empty["rows"] == [] and empty["total"] == 0


def test_unknown_partitions_are_404_and_bad_keys_422(client):
    for nothing_stored in (f"{DAY[:-1]}8/SPY", f"{DAY}/ZZZZ"):
        body = is_problem(client.get(f"/v1/partitions/{nothing_stored}"), 404)
        assert nothing_stored.replace("/", "|") in body["detail"]
    is_problem(client.get("/v1/partitions/2013-10-05/SPY"), 404, "date")  # a Saturday
    is_problem(client.get("/v1/partitions/2013-13-01/SPY"), 422, "date")
    is_problem(client.get("/v1/partitions/2013-02-30/SPY"), 422, "date")
    is_problem(client.get(f"/v1/partitions/{DAY}/BAD$"), 422, "symbol")
    is_problem(client.get(f"/v1/partitions/{DAY}/..%2F..%2Fetc"), 404)
    is_problem(client.get("/v1/quarantine", params={"date": DAY, "symbol": "';DROP"}), 422,
               "symbol")
    is_problem(client.get("/v1/quarantine", params={"symbol": "SPY"}), 422, "date")


def test_openapi_lists_every_path_and_declares_errors_as_problem_json(client):
    doc = client.get("/openapi.json").json()
    assert set(doc["paths"]) == PATHS
    for methods in doc["paths"].values():
        for op in methods.values():
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert set(response["content"]) == {"application/problem+json"}, code
    bars = doc["paths"]["/v1/bars"]["get"]
    assert {p["name"] for p in bars["parameters"]} == {
        "symbols", "timeframe", "start", "end", "limit", "page_token", "format"}
    ok = bars["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/csv", "application/vnd.apache.arrow.stream"}
    assert set(doc["components"]["schemas"]["Bar"]["properties"]) == {
        "symbol", "timeframe", "t", "o", "h", "l", "c", "v", "n", "vw"}


def test_docs_page_is_local_and_lists_every_path(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    for path in [*PATHS, "/v1/stream/bars"]:
        assert path in r.text
    assert "<script" not in r.text and "<link" not in r.text
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", r.text)  # nothing remote


def test_root_points_at_the_docs(client):
    body = client.get("/").json()
    assert body["docs"] == "/docs" and set(body["paths"]) >= PATHS
