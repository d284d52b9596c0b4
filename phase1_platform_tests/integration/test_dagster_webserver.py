"""The real Dagster webserver boots on the definitions and serves the asset graph."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from phase1_platform_tests.conftest import ROOT

BIN = Path(sys.executable).parent

QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    isPartitioned
    dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, data: bytes | None = None) -> dict:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_webserver_serves_the_asset_graph(tmp_path):
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "home"), PYTHONWARNINGS="ignore")
    (tmp_path / "home").mkdir()
    log = (tmp_path / "webserver.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-m", "phase1_platform.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (tmp_path / "webserver.log").read_text()[-3000:]
            try:
                _get(base + "/server_info")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, "webserver did not start in 240 s"
                time.sleep(1)
        nodes = []
        while time.monotonic() < deadline:  # the code location loads after the server is up
            data = _get(base + "/graphql", json.dumps({"query": QUERY}).encode())
            nodes = (data.get("data") or {}).get("assetNodes") or []
            if nodes:
                break
            time.sleep(1)
        by_name = {n["assetKey"]["path"][-1]: n for n in nodes}
        assert set(by_name) == {"raw_ticks", "normalized_ticks", "bars_1m", "bars_5m",
                                "bars_15m", "bars_1h", "bars_1d", "reference_bars",
                                "canonical_export"}
        assert all(n["isPartitioned"] for n in nodes)
        assert by_name["bars_1m"]["groupName"] == "bars"
        assert [d["path"] for d in by_name["normalized_ticks"]["dependencyKeys"]] == [
            ["raw_ticks"]]
        assert {d["path"][-1] for d in by_name["canonical_export"]["dependencyKeys"]} == {
            "bars_1m", "bars_5m", "bars_15m", "bars_1h", "bars_1d"}
        checks = {c["name"]: c["blocking"]
                  for n in nodes for c in (n["assetChecksOrError"].get("checks") or [])}
        assert {"parity_1m", "quality_1m", "quality_1d", "rejected_ratio"} <= set(checks)
        assert all(checks.values())
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
