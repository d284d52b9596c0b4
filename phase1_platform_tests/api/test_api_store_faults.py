"""The database stopping under a running ``phase1 serve``: every request is a 503 problem that
names the store by its masked URL (never the password, never a traceback) until it is back,
and then the API answers again without a restart. PostgreSQL is stopped by cutting a TCP
proxy in front of it; a SQLite file is damaged, then deleted, then rebuilt."""

from __future__ import annotations

import socket

from phase1_platform.storage import mask_url

from ..support.stores import PgSchema, require_postgres
from .harness import AAPL_CSV, DAY, is_problem, replay_into, serve
from .proxy import TcpProxy

PASSWORD = "s3cr3t-pw"
BARS = {"symbols": "AAPL", "timeframe": "1d", "start": DAY}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unavailable(client, path: str = "/v1/bars", **params) -> str:
    body = is_problem(client.get(path, params=params or None), 503)
    assert PASSWORD not in body["detail"]
    return body["detail"]


def test_postgresql_stopped_mid_run_is_503_with_the_masked_url_until_it_is_back(
        request, tmp_path):
    require_postgres()
    schema = PgSchema()
    request.addfinalizer(schema.drop)
    replay_into(schema.url, [AAPL_CSV], tmp_path / "aapl.csv")
    proxy = TcpProxy(("127.0.0.1", 5432)).start()
    request.addfinalizer(proxy.stop)
    url = (f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{proxy.port}/test"
           f"?options=-csearch_path%3D{schema.name}")
    server = serve(url)
    try:
        with server.client() as client:
            ok = client.get("/v1/bars", params=BARS)
            assert ok.status_code == 200 and len(ok.json()["bars"]) == 1
            proxy.stop()  # the server goes away: open connections cut, new ones refused
            for path in ("/v1/bars", "/v1/symbols", "/v1/health"):
                detail = unavailable(client, path, **(BARS if path == "/v1/bars" else {}))
                assert mask_url(url).split("?")[0] in detail, detail
                assert "postgres:***@" in detail
            assert client.get("/v1/bars", params=BARS).headers["retry-after"] == "5"
            proxy.start()  # it is back: the next request reconnects
            again = client.get("/v1/bars", params=BARS)
            assert again.status_code == 200 and again.content == ok.content
    finally:
        code, out, err = server.stop()
    assert code == 0, err[-2000:]
    assert PASSWORD not in out + err and "Traceback" not in err


def test_postgresql_unreachable_at_start_still_serves_503_problems(tmp_path):
    url = f"postgresql+psycopg://reader:{PASSWORD}@127.0.0.1:{closed_port()}/nowhere"
    server = serve(url)
    try:
        with server.client() as client:
            for path in ("/v1/health", "/v1/symbols", f"/v1/partitions/{DAY}/SPY"):
                detail = unavailable(client, path)
                assert "reader:***@127.0.0.1" in detail and "cannot open" in detail
            assert client.get("/docs").status_code == 200  # what needs no store still works
            is_problem(client.get("/v1/bars", params={"symbols": "../x"}), 422, "symbols")
    finally:
        code, out, err = server.stop()
    assert code == 0, err[-2000:]
    assert PASSWORD not in out + err
    assert "store not available yet" in err


def test_sqlite_file_damaged_or_deleted_is_503_and_a_rebuilt_file_is_served(tmp_path):
    db = tmp_path / "store.sqlite"
    url = f"sqlite:///{db}"
    replay_into(url, [AAPL_CSV], tmp_path / "aapl.csv")
    server = serve(url)
    try:
        with server.client() as client:
            ok = client.get("/v1/bars", params=BARS)
            assert ok.status_code == 200
            with open(db, "r+b") as f:  # another process overwrites the file
                f.write(b"not a database " * 100)
            assert "not a readable SQLite database" in unavailable(client, **BARS)
            for path in tmp_path.glob("store.sqlite*"):
                path.unlink()  # ... or deletes it
            for where in ("/v1/bars", "/v1/health"):
                detail = unavailable(client, where, **(BARS if where == "/v1/bars" else {}))
                assert f"cannot open database {url}" in detail, detail
            assert not db.exists()  # the API never creates an empty store in its place
            replay_into(url, [AAPL_CSV], tmp_path / "again.csv")  # rebuilt: served again
            again = client.get("/v1/bars", params=BARS)
            assert again.status_code == 200 and again.content == ok.content
    finally:
        code, _, err = server.stop()
    assert code == 0, err[-2000:]
    assert "Traceback" not in err
