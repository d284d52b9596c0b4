"""Fixtures of the browser tests: Debian's Chromium through Playwright, a store filled the
way a user fills it, and a page that records every request it makes.

Chromium: ``/usr/bin/chromium`` (Playwright's own browser download does not work here),
headless, with the flags DESIGN's issue 11 names. When it is missing the tests skip with
the reason, except in CI (``CI`` set), where they fail: CI must run them.

The store: ``phase1 replay`` of the fixture SPY day (LEAN tick zip), the AAPL tick CSV and
the same AAPL ticks moved to the next trading day (so the date picker has two dates) into a
SQLite file, then the Dagster pipeline (``python -m phase1_platform.demo``, what ``make
run`` runs) on the two 2013-10-07 partitions, which records the parity and quality verdicts
the panel shows (2013-10-08|AAPL stays unjudged). It is built once per session; a test
that changes a store works on a copy.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn

from phase1_platform.dashboard import create_dashboard_app

from .harness import (
    AAPL_TICKS,
    DAY,
    NEXT_DAY,
    SPY_TICKS,
    DashboardPage,
    ServeProcess,
    clean_env,
    copy_sqlite,
    free_port,
    run_command,
    run_phase1,
)

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 800}
LOOPBACK = {"127.0.0.1"}


def chromium_missing(path: Path = CHROMIUM) -> str | None:
    """None when Chromium can be launched, else the reason."""
    if not path.exists():
        return (f"{path} is missing: install Debian's chromium (apt-get install chromium; "
                "`make test` does it as root)")
    if not os.access(path, os.X_OK):
        return f"{path} is not executable"
    return None


def require_chromium(path: Path = CHROMIUM) -> Path:
    """``path`` when Chromium is there; else skip with the reason, or fail in CI."""
    reason = chromium_missing(path)
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set: the browser tests must run)")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def chromium() -> Path:
    return require_chromium()


@pytest.fixture(scope="package")  # not "session": Playwright's sync API keeps an event loop
def browser(chromium):              # running in this thread until it stops, and later tests
    #                                 call asyncio.run()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def filled_store(chromium, tmp_path_factory) -> Path:
    """The golden store file: replayed fixture days + the pipeline's verdicts."""
    work = tmp_path_factory.mktemp("golden")
    db = work / "store.sqlite"
    url = f"sqlite:///{db}"
    next_day = work / "AAPL_next_day.csv"
    next_day.write_text(AAPL_TICKS.read_text().replace(DAY, NEXT_DAY))
    run_phase1(["replay", "--csv", str(SPY_TICKS), "--csv", str(AAPL_TICKS),
                "--csv", str(next_day), "--output", str(work / "replay.csv"),
                "--database-url", url])
    for sub in ("dagster", "drop", "exports"):
        (work / sub).mkdir()
    env = clean_env(DATABASE_URL=url, DAGSTER_HOME=str(work / "dagster"),
                    PHASE1_DROP_DIR=str(work / "drop"), PHASE1_EXPORT_DIR=str(work / "exports"))
    run_command([sys.executable, "-m", "phase1_platform.demo", f"{DAY}|SPY", f"{DAY}|AAPL"],
                env=env, cwd=work, timeout=600)
    return db


@pytest.fixture(scope="module")
def served(filled_store, tmp_path_factory):
    """``phase1 serve`` on a copy of the golden store (read only by the tests using it)."""
    work = tmp_path_factory.mktemp("served")
    url = copy_sqlite(filled_store, work / "store.sqlite")
    server = ServeProcess(url, work / "serve.log", cwd=work).wait_ready()
    yield server
    server.stop()


class RequestLog:
    """Every request and WebSocket of a browser context, and its console errors while the
    test runs (``frozen`` after it: servers stopping at teardown make the page's
    reconnects fail, which is not the test's concern)."""

    def __init__(self) -> None:
        self.frozen = False
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.websockets: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.allowed_console: list[str] = []

    def console(self, message) -> None:
        if message.type == "error" and not self.frozen:
            self.console_errors.append(message.text)

    def page_error(self, error) -> None:
        if not self.frozen:
            self.page_errors.append(str(error))

    def route(self, route) -> None:
        url = route.request.url
        if not self.frozen:
            self.requests.append(url)
        if urlsplit(url).hostname in LOOPBACK or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def outside_loopback(self) -> list[str]:
        urls = self.requests + self.websockets
        return [u for u in urls if not u.startswith(("data:", "blob:"))
                and urlsplit(u).hostname not in LOOPBACK]

    def unexpected_console(self) -> list[str]:
        return [m for m in self.console_errors
                if not any(a in m for a in self.allowed_console)] + self.page_errors


@pytest.fixture
def request_log() -> RequestLog:
    return RequestLog()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Freeze the test's request log when its body ends (before any teardown)."""
    try:
        return (yield)
    finally:
        log = item.funcargs.get("request_log") if hasattr(item, "funcargs") else None
        if isinstance(log, RequestLog):
            log.frozen = True


@pytest.fixture
def context(browser, request_log):
    ctx = browser.new_context(viewport=VIEWPORT, service_workers="block")
    ctx.route("**/*", request_log.route)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context, request_log):
    pg = context.new_page()
    pg.on("websocket", lambda ws: request_log.websockets.append(ws.url))
    pg.on("console", request_log.console)
    pg.on("pageerror", request_log.page_error)
    yield pg
    problems = request_log.unexpected_console()
    assert not problems, f"the page logged errors: {problems[:5]}"
    assert not request_log.outside_loopback(), request_log.outside_loopback()


@pytest.fixture
def dashboard(page, served) -> DashboardPage:
    return DashboardPage(page, served)


@pytest.fixture
def dashboard_without_api(chromium, request_log):
    """The dashboard app alone (in this process), its API a loopback port nothing listens
    on: the page's own files and logic, and its error state. Yields (page URL, API URL)."""
    dead = f"http://127.0.0.1:{free_port()}"
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_dashboard_app(dead), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > end or not thread.is_alive():
            raise AssertionError("the dashboard app did not start")
        time.sleep(0.05)
    request_log.allowed_console.append("net::ERR_CONNECTION_REFUSED")
    yield f"http://127.0.0.1:{port}", dead
    server.should_exit = True
    thread.join(10)
