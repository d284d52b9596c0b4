"""``phase1 serve``: both URLs printed, the dashboard wired to the API, one JSON access-log
line per request with nothing secret in it, a clean exit 0 on SIGINT and SIGTERM, and one
line naming the fix for a port in use or a bad setting."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import pytest

from phase1_platform.cli import main as phase1

from .harness import AAPL_CSV, replay_into, serve


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("serve")
    url = f"sqlite:///{folder / 'store.sqlite'}"
    replay_into(url, [AAPL_CSV], folder / "aapl.csv")
    return url


def access_lines(err: str) -> list[dict]:
    out = []
    for line in err.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "phase1.api.access":
                out.append(record)
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serves_api_and_dashboard_logs_each_request_and_stops_cleanly(small_store, sig):
    server = serve(small_store)
    with server.client() as api:
        bars = api.get("/v1/bars", params={"symbols": "AAPL", "timeframe": "1h",
                                           "page_token": "SECRET-TOKEN-TEXT"})
        assert bars.status_code == 400
        ok = api.get("/v1/bars", params={"symbols": "AAPL", "timeframe": "1h"})
        missing = api.get("/nowhere")
        with server.client() as dash:
            page = dash.get(server.dashboard + "/")
            config = dash.get(server.dashboard + "/config.json").json()
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert config["api_url"] == server.api
    code, out, err = server.stop(sig)
    assert code == 0, err[-2000:]
    assert f"API: {server.api}" in out and f"dashboard: {server.dashboard}" in out
    assert "store: sqlite:///" in out
    assert "phase1 serve: stopped" in err and "Traceback" not in err
    lines = access_lines(err)
    api_lines = [r for r in lines if r["server"] == "api"]
    assert [(r["method"], r["path"], r["status"]) for r in api_lines] == [
        ("GET", "/v1/bars", 400), ("GET", "/v1/bars", 200), ("GET", "/nowhere", 404)]
    # the bytes sent (gzipped when the client asked, as httpx does)
    assert ok.headers["content-encoding"] == "gzip"
    assert api_lines[1]["bytes"] == int(ok.headers["content-length"]) < len(ok.content)
    assert api_lines[2]["bytes"] == len(missing.content)
    assert all(r["duration_ms"] >= 0 and r["event"] == "request" for r in lines)
    assert {"/", "/config.json"} <= {r["path"] for r in lines if r["server"] == "dashboard"}
    assert "SECRET-TOKEN-TEXT" not in err  # no query string is logged


def _taken() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


@pytest.mark.parametrize("option", ["--api-port", "--dashboard-port"])
def test_a_port_in_use_is_one_line_naming_the_port_and_the_fix(small_store, capsys, option):
    with _taken() as busy:
        port = busy.getsockname()[1]
        other = "--dashboard-port" if option == "--api-port" else "--api-port"
        code = phase1(["serve", "--database-url", small_store, option, str(port), other, "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (f"phase1 serve: error: port {port} ({option}) on 127.0.0.1 is in use: stop "
                   f"what listens there (another phase1 serve?) or pass {option} with a free "
                   "port")


@pytest.mark.parametrize(("args", "says"), [
    (["--stream-url", "http://127.0.0.1:1/ws/bars"], "--stream-url"),
    (["--stream-url", "ws://"], "--stream-url"),
    (["--host", "no-such-host.invalid"], "--host"),
    (["--api-port", "70000"], "--api-port"),
    (["--log-level", "LOUD"], "--log-level"),
])
def test_bad_settings_are_one_line_exit_2(small_store, capsys, args, says):
    base = ["serve", "--database-url", small_store, "--api-port", "0", "--dashboard-port", "0"]
    assert phase1(base + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("phase1 serve: error: ") and says in err and "\n" not in err


# run in a child: this process refuses connects to anything but loopback (conftest.py)
_ROUTE_SOURCE = """
import socket
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    try:
        s.connect(("192.0.2.1", 9))  # UDP: picks the route's source address, sends nothing
        print(s.getsockname()[0])
    except OSError:
        pass
"""


def _lan_ipv4() -> str | None:
    """This machine's address on its default IPv4 route, the one another machine on the
    network reaches it by (None without such a route)."""
    out = subprocess.run([sys.executable, "-c", _ROUTE_SOURCE], capture_output=True,
                         text=True, timeout=30, check=True).stdout.strip()
    return out if out and not out.startswith("127.") else None


def test_a_wildcard_host_reaches_the_dashboard_and_prints_usable_urls(small_store):
    server = serve(small_store, "--host", "0.0.0.0")
    try:
        api_port = int(server.api.rsplit(":", 1)[1])
        dash_port = int(server.dashboard.rsplit(":", 1)[1])
        # printed: what a browser on this machine can open (0.0.0.0 is no destination)
        assert server.api == f"http://127.0.0.1:{api_port}"
        assert server.dashboard == f"http://127.0.0.1:{dash_port}"
        with server.client() as api:
            config = api.get(server.dashboard + "/config.json").json()

            def allowed(origin: str) -> str | None:
                r = api.get("/v1/symbols", headers={"Origin": origin})
                assert r.status_code == 200
                return r.headers.get("access-control-allow-origin")

            remote_pages = [f"http://{socket.gethostname()}:{dash_port}"]
            if (lan := _lan_ipv4()) is not None:
                remote_pages.append(f"http://{lan}:{dash_port}")
            granted = {origin: allowed(origin) for origin in remote_pages}
            foreign = [allowed(f"http://elsewhere.example:{dash_port}"),
                       allowed(f"http://{socket.gethostname()}:{api_port}")]
    finally:
        code, _out, err = server.stop()
    # the wildcard is passed through: the page swaps it for the host it was loaded from,
    # so a browser on another machine calls this one, not its own loopback
    assert config["api_url"] == f"http://0.0.0.0:{api_port}"
    assert config["stream_url"] == f"ws://0.0.0.0:{api_port}/v1/stream/bars"
    # ... and the API lets the dashboard call it from the names other machines use
    assert granted == {origin: origin for origin in remote_pages}
    assert foreign == [None, None]
    assert code == 0, err[-2000:]
