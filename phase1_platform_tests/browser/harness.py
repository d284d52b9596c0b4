"""What the browser tests drive: `phase1` subprocesses on loopback ports and a page waiter.

- ``run_phase1`` / ``run_command``: one command to completion (its output kept for the
  failure message);
- ``Phase1Process``: a long-running `phase1` command (serve, simulate, ingest) that is
  stopped with SIGTERM (then killed) and whose log is shown when a test fails;
- ``ServeProcess``: `phase1 serve` on free loopback ports, ready once the API's health and
  the dashboard's config answer;
- ``wait_until``: polls a JavaScript expression in the page with ``page.evaluate``
  (Playwright's own ``wait_for_function`` evaluates strings, which the dashboard's
  Content-Security-Policy forbids, and the tests keep that policy on).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SPY_TICKS = ROOT / "fixtures" / "lean" / "equity" / "usa" / "tick" / "spy" / "20131007_trade.zip"
AAPL_TICKS = ROOT / "fixtures" / "2013-10-07" / "AAPL.csv"
DAY = "2013-10-07"
NEXT_DAY = "2013-10-08"
PHASE1 = [sys.executable, "-m", "phase1_platform"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no vendor keys, live mode off, ``extra`` set."""
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_API_KEY", "_SECRET", "_SECRET_KEY")) and k != "INGESTION_MODE"}
    env.update(extra)
    return env


def run_command(cmd: list[str], *, env: dict[str, str] | None = None,
                cwd: Path | None = None, timeout: float = 300) -> str:
    """Run ``cmd`` to the end; its output, or fail with its exit status and output."""
    done = subprocess.run(cmd, env=env or clean_env(), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {done.returncode}:\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def run_phase1(args: list[str], **kwargs) -> str:
    """``phase1 ARGS`` to the end (see ``run_command``)."""
    return run_command([*PHASE1, *args], **kwargs)


def copy_sqlite(src: Path, dst: Path) -> str:
    """A consistent copy of a SQLite store (the backup API: WAL content included)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return f"sqlite:///{dst}"


class Phase1Process:
    """A long-running ``phase1`` command whose output goes to ``log``."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        self.args = args
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*PHASE1, *args], env=env or clean_env(), cwd=cwd,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def require_alive(self, what: str) -> None:
        if not self.alive():
            raise AssertionError(f"{what} exited {self.proc.returncode}:\n{self.log()}")

    def stop(self, timeout: float = 20) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class ServeProcess(Phase1Process):
    """``phase1 serve`` on free loopback ports; ``api_url`` and ``dashboard_url``."""

    def __init__(self, database_url: str, log: Path, stream_url: str | None = None,
                 env: dict[str, str] | None = None, cwd: Path | None = None):
        self.api_port, self.dashboard_port = free_port(), free_port()
        args = ["serve", "--database-url", database_url, "--host", "127.0.0.1",
                "--api-port", str(self.api_port), "--dashboard-port", str(self.dashboard_port)]
        if stream_url:
            args += ["--stream-url", stream_url]
        super().__init__(args, log, env=env, cwd=cwd)
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"

    def wait_ready(self, timeout: float = 60) -> ServeProcess:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.require_alive("phase1 serve")
            try:
                health = httpx.get(f"{self.api_url}/v1/health", timeout=2)
                config = httpx.get(f"{self.dashboard_url}/config.json", timeout=2)
                if health.status_code == 200 and config.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"phase1 serve was not ready in {timeout} s:\n{self.log()}")

    def get(self, path: str, **params) -> dict:
        response = httpx.get(self.api_url + path, params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def all_bars(self, symbol: str, timeframe: str, start: str, end: str) -> list[dict]:
        """Every bar of a selection through the API, following next_page_token."""
        out, token = [], None
        while True:
            params = {"symbols": symbol, "timeframe": timeframe, "start": start, "end": end,
                      "limit": 1000}
            if token:
                params["page_token"] = token
            body = self.get("/v1/bars", **params)
            out.extend(body["bars"])
            token = body.get("next_page_token")
            if not token:
                return out


def wait_until(page, expression: str, timeout: float = 30, what: str | None = None):
    """Poll ``expression`` (a JS function source, e.g. ``() => ...``) until truthy; return
    its value. On timeout, fail showing the dashboard's state."""
    end = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > end:
            try:
                state = page.evaluate("() => window.__dashboard && window.__dashboard.state()")
            except Exception as exc:  # noqa: BLE001 - the page may be gone: say so
                state = f"(no state: {exc})"
            raise AssertionError(f"timed out after {timeout} s waiting for "
                                 f"{what or expression}; dashboard state: "
                                 f"{json.dumps(state, default=str)[:2000]}")
        time.sleep(0.1)


class DashboardPage:
    """The dashboard in a Playwright page, read through its test hook
    (``window.__dashboard``) and driven through its pickers (``data-testid``s)."""

    def __init__(self, page, server: ServeProcess):
        self.page = page
        self.server = server

    def open(self, fragment: str = "") -> DashboardPage:
        """Load the page afresh (a new document, even when only the fragment differs)."""
        if self.page.url != "about:blank":
            self.page.goto("about:blank")
        self.page.goto(self.server.dashboard_url + "/" + (f"#/{fragment}" if fragment else ""))
        wait_until(self.page, "() => window.__dashboard && "
                   "['ready', 'empty', 'error'].includes(document.body.dataset.state) && "
                   "document.body.dataset.view !== 'loading'", what="the first view")
        return self

    def state(self) -> dict:
        return self.page.evaluate("() => window.__dashboard.state()")

    def candles(self) -> list[dict]:
        return self.page.evaluate("() => window.__dashboard.candles()")

    def stream_log(self) -> list[dict]:
        return self.page.evaluate("() => window.__dashboard.streamLog()")

    def testid(self, name: str):
        return self.page.get_by_test_id(name)

    def _pick(self, testid: str, value: str) -> dict:
        loads = self.state()["loads"]
        self.testid(testid).select_option(value)
        wait_until(self.page, f"() => window.__dashboard.state().loads > {loads} && "
                   "window.__dashboard.state().view === 'ready'",
                   what=f"the view after picking {testid}={value}")
        return self.state()

    def pick_symbol(self, symbol: str) -> dict:
        return self._pick("symbol-select", symbol)

    def pick_timeframe(self, timeframe: str) -> dict:
        return self._pick("timeframe-select", timeframe)

    def pick_date(self, date: str) -> dict:
        return self._pick("date-select", date)

    def options(self, testid: str) -> list[str]:
        return self.testid(testid).evaluate(
            "el => [...el.options].filter(o => !o.disabled).map(o => o.value)")

    def wait_panel(self, date: str, symbol: str) -> None:
        wait_until(self.page, "() => { const p = document.querySelector("
                   "'[data-testid=parity-panel]'); return p.dataset.state !== 'loading' && "
                   f"p.textContent.includes('{date} {symbol}'); }}",
                   what=f"the panel of {date} {symbol}")
