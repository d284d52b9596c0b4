"""The dashboard's ASGI app without a browser: routes, config, headers, and that every asset
is a local file of the package (no CDN, nothing remote, works offline)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from phase1_platform.dashboard import STATIC_DIR, create_dashboard_app

API = "http://127.0.0.1:8123"
VENDOR = STATIC_DIR / "vendor" / "lightweight-charts"
LWC_FILE = VENDOR / "lightweight-charts.standalone.production.js"
# the one remote address our own files may name: TradingView's attribution link (a click
# target the library's licence asks for, never fetched)
ATTRIBUTION = "https://www.tradingview.com/"
SVG_NS = "http://www.w3.org/2000/svg"  # an XML namespace name, never fetched


class AppClient:
    """Requests straight into the ASGI app (no socket): ``get(path) -> httpx.Response``."""

    def __init__(self, api_url: str):
        self.app = create_dashboard_app(api_url)

    def get(self, path: str) -> httpx.Response:
        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://dash") as c:
                return await c.get(path)

        return asyncio.run(fetch())


@pytest.fixture
def client() -> AppClient:
    return AppClient(API + "/")


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.testids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.refs.append(a["src"])
        if tag == "link" and a.get("href"):
            self.refs.append(a["href"])
        if a.get("data-testid"):
            self.testids.add(a["data-testid"])


def page_assets(html: str) -> _Assets:
    parser = _Assets()
    parser.feed(html)
    return parser


def test_index_serves_the_page_with_the_contract_testids(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    found = page_assets(r.text).testids
    # DESIGN section 10's data-testids
    assert {"symbol-select", "timeframe-select", "date-select", "chart",
            "parity-panel"} <= found
    assert {"empty-state", "stream-status"} <= found


def test_config_names_the_api_and_its_stream(client):
    r = client.get("/config.json")
    assert r.status_code == 200
    assert r.json() == {"api_url": API, "stream_url": "ws://127.0.0.1:8123/v1/stream/bars"}
    body = AppClient("https://bars.example:9443").get("/config.json").json()
    assert body["stream_url"] == "wss://bars.example:9443/v1/stream/bars"


def test_csp_allows_only_this_origin_and_the_api(client):
    csp = client.get("/").headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if " " in d.strip())
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"].split() == ["'self'", API, "ws://127.0.0.1:8123"]


def test_api_on_every_interface_lets_the_page_call_its_own_host():
    client = AppClient("http://0.0.0.0:8000")
    csp = client.get("/").headers["content-security-policy"]
    assert "connect-src 'self' http://*:8000 ws://*:8000" in csp
    assert client.get("/config.json").json()["api_url"] == "http://0.0.0.0:8000"


def test_every_asset_the_page_names_is_served_from_this_origin(client):
    refs = page_assets(client.get("/").text).refs
    assert refs, "the page names no asset"
    for ref in refs:
        assert ref.startswith("/static/"), f"{ref} is not a local asset"
        r = client.get(ref)
        assert r.status_code == 200, ref
        assert len(r.content) > 0, ref


def test_module_imports_resolve_to_local_files():
    """Every ES module import is a relative path to a file that exists (no bare or
    remote specifiers: there is no bundler and no network)."""
    js = sorted((STATIC_DIR / "js").glob("*.js"))
    assert {p.name for p in js} >= {"main.js", "api.js", "chart.js", "live.js", "panel.js"}
    for path in js:
        for spec in re.findall(r"""^import .* from "([^"]+)";""", path.read_text(), re.M):
            assert spec.startswith("./"), f"{path.name} imports {spec}"
            assert (path.parent / spec).is_file(), f"{path.name} imports missing {spec}"


def test_no_remote_address_in_our_static_files():
    ours = [p for p in STATIC_DIR.rglob("*") if p.is_file() and VENDOR not in p.parents]
    for path in ours:
        text = path.read_text(errors="replace")
        found = set(re.findall(r"(?:https?|wss?)://[^\s\"'<>)`]+", text)) - {ATTRIBUTION, SVG_NS}
        remote = {u for u in found if urlsplit(u).hostname not in ("127.0.0.1", "localhost")}
        assert not remote, f"{path.relative_to(STATIC_DIR)} names {sorted(remote)}"


def test_vendored_library_is_the_named_release_with_its_licence():
    readme = (VENDOR / "README.md").read_text()
    version = re.search(r"Lightweight Charts (\d+\.\d+\.\d+)", readme).group(1)
    digest = re.search(r"sha256 `([0-9a-f]{64})`", readme).group(1)
    head = LWC_FILE.read_text()[:400]
    assert f"TradingView Lightweight Charts™ v{version}" in head
    assert version.startswith("5.")
    assert hashlib.sha256(LWC_FILE.read_bytes()).hexdigest() == digest
    assert "Apache License" in (VENDOR / "LICENSE").read_text()
    assert "TradingView" in (VENDOR / "NOTICE").read_text()
    # the library's only remote addresses are its attribution link and the licence URL;
    # it fetches neither (the logo is an inline SVG)
    urls = set(re.findall(r"https?://[a-zA-Z0-9./_-]+", LWC_FILE.read_text()))
    assert urls <= {SVG_NS, "https://www.apache.org/licenses/LICENSE-2.0", ATTRIBUTION}


def test_unknown_paths_and_traversal_are_404(client):
    assert client.get("/nope").status_code == 404
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/%2e%2e/app.py").status_code == 404


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_static_files_are_not_ignored_so_the_wheel_ships_them():
    """hatchling's wheel takes every file of the package that git does not ignore."""
    root = Path(__file__).resolve().parents[2]
    files = [str(p.relative_to(root)) for p in STATIC_DIR.rglob("*") if p.is_file()]
    done = subprocess.run(["git", "check-ignore", "--no-index", *files], cwd=root,
                          capture_output=True, text=True)
    if done.returncode == 128:
        pytest.skip(f"not a git checkout: {done.stderr.strip()}")
    assert done.stdout.strip() == "", f"ignored by git, left out of the wheel: {done.stdout}"


def test_missing_chromium_skips_outside_ci_and_fails_in_ci(monkeypatch, tmp_path):
    from .conftest import require_chromium

    missing = tmp_path / "no-chromium"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-chromium is missing"):
        require_chromium(missing)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_chromium(missing)
    present = tmp_path / "chromium"
    present.write_text("#!/bin/sh\n")
    present.chmod(0o755)
    assert require_chromium(present) == present
