"""The read API's response cache (``api.response_cache``) never serves stale bars.

A repeated query is answered from the cache (``X-Cache: hit``, the same bytes and ETag as
the first answer, 304 and gzip as before); a write committed by another process
(``phase1 replay --database-url``) or another ``Store`` (``BarRepository.write_partition``)
changes the next answer and its ETag; a SQLite file replaced or deleted under the server
is never answered from the cache. Both backends, each test on a store of its own (the
shared ``filled`` store of the package is read-only). Plus the cache's own bound and the
store's change token, in process.
"""

from __future__ import annotations

import gzip
import os
import sqlite3

import httpx
import pytest

from phase1_platform.api.response_cache import CachedBody, ResponseCache
from phase1_platform.core.partition import Partition
from phase1_platform.storage import BarRepository, Store

from ..integration.test_store import BACKENDS, make_url
from .harness import AAPL_CSV, DAY, FIXTURE_SPY, NEXT_DAY, export_csv, replay_into, serve

BARS = {"symbols": "AAPL,SPY", "timeframe": "1m", "start": DAY, "end": NEXT_DAY,
        "limit": 10000}
TRIES = 20  # PostgreSQL's token is cluster-wide: other tests' writes cause extra misses


@pytest.fixture(params=BACKENDS)
def spy_store(request, tmp_path) -> str:
    """A store of its own holding the SPY fixture day's 1m bars (no AAPL yet)."""
    url = make_url(request.param, tmp_path, request)
    replay_into(url, [FIXTURE_SPY], tmp_path / "spy.csv", "1m")
    return url


@pytest.fixture
def server(spy_store):
    served = serve(spy_store)
    yield served
    code, _, err = served.stop()
    assert code == 0, err[-2000:]
    assert "Traceback" not in err


def hit_after_miss(client: httpx.Client, params: dict) -> tuple[httpx.Response, httpx.Response]:
    """Two back-to-back identical requests whose second is a cache hit: (first, second)."""
    for _ in range(TRIES):
        first = client.get("/v1/bars", params=params)
        second = client.get("/v1/bars", params=params)
        assert first.status_code == second.status_code == 200, first.text[:300]
        if second.headers["x-cache"] == "hit":
            return first, second
    raise AssertionError(f"no cache hit in {TRIES} repeats of {params}")


def test_a_repeated_query_is_a_hit_with_the_same_bytes_etag_304_and_gzip(server, spy_store,
                                                                         tmp_path):
    with server.client() as client:
        cold = client.get("/v1/bars", params=BARS)
        assert cold.headers["x-cache"] in ("miss", "hit")
        first, second = hit_after_miss(client, BARS)
        assert second.content == first.content == cold.content
        assert second.headers["etag"] == first.headers["etag"]
        assert second.headers["content-encoding"] == "gzip"  # httpx asks for it
        with client.stream("GET", "/v1/bars", params=BARS) as streamed:
            assert streamed.headers["x-cache"] in ("hit", "miss")
            assert gzip.decompress(b"".join(streamed.iter_raw())) == second.content
        bars = second.json()["bars"]
        assert {b["symbol"] for b in bars} == {"SPY"} and len(bars) > 20

        raw = client.get("/v1/bars", params=BARS, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in raw.headers and raw.content == second.content

        tag = second.headers["etag"]
        for _ in range(TRIES):
            again = client.get("/v1/bars", params=BARS, headers={"If-None-Match": tag})
            assert again.status_code == 304 and again.headers["etag"] == tag
            if again.headers["x-cache"] == "hit":
                break
        else:
            raise AssertionError("no 304 from the cache")

        csv_params = BARS | {"format": "csv"}
        _, csv = hit_after_miss(client, csv_params)
        assert csv.content == export_csv(spy_store, "AAPL,SPY", "1m", DAY, DAY,
                                         tmp_path / "export.csv")

        paged = BARS | {"limit": 10}
        _, page = hit_after_miss(client, paged)
        token = page.json()["next_page_token"]
        assert token and len(page.json()["bars"]) == 10
        _, following = hit_after_miss(client, paged | {"page_token": token})
        assert following.json()["bars"][0] != page.json()["bars"][0]

        symbols = [client.get("/v1/symbols") for _ in range(TRIES)]
        assert "hit" in {r.headers["x-cache"] for r in symbols}
        assert all(r.json() == symbols[0].json() for r in symbols)


def test_a_replay_by_another_process_is_served_at_the_next_request(server, spy_store,
                                                                   tmp_path):
    with server.client() as client:
        _, before = hit_after_miss(client, BARS)
        _, csv_before = hit_after_miss(client, BARS | {"format": "csv"})
        symbols_before = client.get("/v1/symbols")
        replay_into(spy_store, [AAPL_CSV], tmp_path / "aapl.csv", "1m")  # more ticks land
        after = client.get("/v1/bars", params=BARS)
        assert after.status_code == 200 and after.headers["x-cache"] != "hit"
        assert after.headers["etag"] != before.headers["etag"]
        assert {b["symbol"] for b in after.json()["bars"]} == {"AAPL", "SPY"}
        csv_after = client.get("/v1/bars", params=BARS | {"format": "csv"})
        assert csv_after.headers["x-cache"] != "hit"
        assert csv_after.content == export_csv(spy_store, "AAPL,SPY", "1m", DAY, DAY,
                                               tmp_path / "export.csv") != csv_before.content
        assert symbols_before.json() != client.get("/v1/symbols").json()


def test_a_partition_rewritten_by_another_store_changes_the_answer(server, spy_store):
    with server.client() as client:
        _, before = hit_after_miss(client, BARS)
        store = Store.from_url(spy_store)
        try:
            repo = BarRepository(store)
            part = Partition(DAY, "SPY")
            bars = repo.read_partition(part)
            (rule_set,) = repo.rule_sets(part)
            repo.write_partition(bars.iloc[:-1], part, rule_set, "test")  # one bar less
        finally:
            store.dispose()
        after = client.get("/v1/bars", params=BARS)
        assert after.headers["x-cache"] != "hit"
        assert after.headers["etag"] != before.headers["etag"]
        assert len(after.json()["bars"]) == len(before.json()["bars"]) - 1


@pytest.mark.parametrize("spy_store", ["sqlite"], indirect=True)
def test_a_replaced_or_deleted_sqlite_file_is_never_served_from_the_cache(server, spy_store,
                                                                        tmp_path):
    db = spy_store.removeprefix("sqlite:///")
    with server.client() as client:
        _, before = hit_after_miss(client, BARS)
        other = tmp_path / "other.sqlite"
        with sqlite3.connect(db) as src, sqlite3.connect(other) as dst:
            src.backup(dst)  # a consistent copy, then one more symbol in it
        replay_into(f"sqlite:///{other}", [AAPL_CSV], tmp_path / "aapl.csv", "1m")
        os.replace(other, db)  # another process swaps the file under the server
        after = client.get("/v1/bars", params=BARS)
        assert after.headers.get("x-cache") != "hit"
        if after.status_code == 200:
            assert after.headers["etag"] != before.headers["etag"]
            assert {b["symbol"] for b in after.json()["bars"]} == {"AAPL", "SPY"}
        else:
            assert after.status_code == 503
        for path in tmp_path.glob("store.sqlite*"):
            path.unlink()
        gone = client.get("/v1/bars", params=BARS)
        assert gone.status_code == 503 and gone.headers.get("x-cache") != "hit"
        assert "cannot open database" in gone.json()["detail"]


# ------------------------------------------------------------------------ in process
def test_the_cache_is_bounded_by_bytes_and_drops_the_least_recently_used():
    cache = ResponseCache(max_bytes=40_000)
    body = CachedBody(b"x" * 5000, "application/json", '"e"')
    for i in range(10):
        cache.put(i, "t1", body, body.size)
        cache.get(0, "t1")  # 0 stays recent
    assert cache.size_bytes <= 40_000 and len(cache) < 10
    assert cache.get(0, "t1") is body and cache.get(1, "t1") is None
    assert cache.get(0, "t2") is None  # another token: a miss, whatever is stored
    assert cache.get(0, None) is None
    cache.put("big", "t1", body, 20_000)  # over a quarter of the bound: not kept
    assert cache.get("big", "t1") is None
    zipped = cache.gzipped(0, "t1", body)
    assert gzip.decompress(zipped) == body.body and cache.size_bytes <= 40_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_change_token_changes_with_every_commit_of_another_store(backend, tmp_path,
                                                                      request):
    url = make_url(backend, tmp_path, request)
    reader, writer = Store.from_url(url, follow_file=True), Store.from_url(url)
    try:
        seen = {reader.change_token()}
        assert None not in seen
        for n in range(3):
            with writer.begin(write=True) as conn:
                conn.exec_driver_sql(f"CREATE TABLE cache_probe_{n} (i INTEGER)")
            token = reader.change_token()
            assert token not in seen  # never an earlier value
            seen.add(token)
        if backend == "sqlite":
            assert reader.change_token() == token  # no write: the same value
            os.remove(tmp_path / "store.sqlite")
            assert reader.change_token() is None  # deleted: no token, nothing cached
    finally:
        reader.dispose()
        writer.dispose()
    assert Store.from_url("sqlite://").change_token() is None  # in memory: no token
