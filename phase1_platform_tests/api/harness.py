"""What the read API tests share: stores filled by ``phase1 replay``, a real ``phase1 serve``
process on free loopback ports, and ``phase1 export`` of a selection to compare with.

The filled store holds 2013-10-07 of SPY, AIG, BAC and IBM (the real LEAN tick days in
``../shared/data``; the fixture SPY slice when they are absent) and the AAPL tick CSV
fixture, in every timeframe; the replay keeps AAPL's bad rows under its partition key
(``DAY|AAPL``, as the Dagster pipeline and the live service do; rows without a readable
timestamp under ``replay``) and SPY, AAPL and BAC carry recorded check verdicts (one of
them stale).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from phase1_platform.cli import main as phase1

from ..conftest import FIXTURES, ROOT, SHARED_DATA

DAY = "2013-10-07"
NEXT_DAY = "2013-10-08"
ALL_TIMEFRAMES = "1m,5m,15m,30m,1h,4h,1d"
REAL_TICKS = SHARED_DATA / "lean" / "equity" / "usa" / "tick"
FIXTURE_SPY = FIXTURES / "lean" / "equity" / "usa" / "tick" / "spy" / "20131007_trade.zip"
SPY_MINUTES = FIXTURES / "lean" / "equity" / "usa" / "minute" / "spy" / "20131007_trade.zip"
AAPL_CSV = FIXTURES / DAY / "AAPL.csv"


def tick_files() -> list[Path]:
    """The tick files a filled store is replayed from."""
    real = [REAL_TICKS / s / "20131007_trade.zip" for s in ("spy", "aig", "bac", "ibm")]
    if all(p.is_file() for p in real):
        return [*real, AAPL_CSV]
    return [FIXTURE_SPY, AAPL_CSV]


def symbols_of(files: list[Path]) -> list[str]:
    return sorted({"AAPL" if p.suffix == ".csv" else p.parent.name.upper() for p in files})


def replay_into(url: str, files: list[Path], out: Path, timeframes: str = ALL_TIMEFRAMES
                ) -> None:
    args = ["replay", "--timeframes", timeframes, "--output", str(out), "--database-url", url]
    for f in files:
        args += ["--csv", str(f)]
    assert phase1(args) == 0


def record_verdicts(url: str) -> None:
    """Parity (SPY against LEAN's minute bars), quality (1m, 1d), the rejected ratio
    (AAPL), and a verdict on other bars than those stored (BAC 5m: stale)."""
    from phase1_platform.app.parity import (
        ParityThresholds,
        judge_and_record_partition,
        reference_from_lean,
    )
    from phase1_platform.app.quality import judge_quality, judge_rejected_ratio
    from phase1_platform.core.partition import Partition
    from phase1_platform.storage import CheckResultRepository, Store

    store = Store.from_url(url)
    try:
        spy = Partition(DAY, "SPY")
        reference = reference_from_lean([SPY_MINUTES], spy)
        for tf in ("1m", "5m", "1d"):
            judge_and_record_partition(store, spy, tf, reference, "default", ParityThresholds())
        for tf in ("1m", "1d"):
            judge_quality(store, spy, tf)
        judge_rejected_ratio(store, Partition(DAY, "AAPL"), 0.5)
        CheckResultRepository(store).record(f"{DAY}|BAC", "quality", "5m", True,
                                            {"passed": True}, "sha256:" + "0" * 64)
    finally:
        store.dispose()


def fill_store(url: str, workdir: Path) -> list[str]:
    """Fill the store at ``url``; returns its symbols."""
    files = tick_files()
    replay_into(url, files, workdir / "replayed.csv")
    record_verdicts(url)
    return symbols_of(files)


def export_csv(url: str, symbols: str, timeframes: str, start: str, end: str,
               out: Path) -> bytes:
    """The bytes ``phase1 export`` writes for the selection."""
    assert phase1(["export", "--database-url", url, "--symbols", symbols, "--timeframes",
                   timeframes, "--start", start, "--end", end, "--output", str(out)]) == 0
    return out.read_bytes()


# ----------------------------------------------------------------------------- the server
_URL_LINE = re.compile(r"^(API|dashboard): (http://\S+)", re.M)


class Served:
    """A running ``phase1 serve``: its URLs, its process, what it printed (both streams
    are read as they come, so a chatty log never blocks the server)."""

    def __init__(self, proc: subprocess.Popen, timeout: float):
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(s, lines), daemon=True)
                         for s, lines in ((proc.stdout, self.out), (proc.stderr, self.err))]
        for t in self._readers:
            t.start()
        end = time.monotonic() + timeout
        urls: dict[str, str] = {}
        while len(urls) < 2:
            urls = dict(_URL_LINE.findall("".join(self.out)))
            if proc.poll() is not None or time.monotonic() > end:
                self.stop(signal.SIGKILL)
                raise AssertionError(f"phase1 serve did not start (rc={proc.returncode}): "
                                     f"{''.join(self.out)}{''.join(self.err)[-3000:]}")
            time.sleep(0.05)
        self.api, self.dashboard = urls["API"], urls["dashboard"]

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.api, timeout=30.0, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, str, str]:
        """Send ``sig``; (exit code, stdout, stderr) once it ended."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self._readers:
            t.join(10)
        return self.proc.returncode, "".join(self.out), "".join(self.err)


def serve(url: str, *extra: str, env: dict | None = None, timeout: float = 60.0) -> Served:
    """Start ``phase1 serve`` on free loopback ports; returns once both answer."""
    cmd = [sys.executable, "-m", "phase1_platform", "serve", "--database-url", url,
           "--api-port", "0", "--dashboard-port", "0", *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})})
    return Served(proc, timeout)


def pages(client: httpx.Client, params: dict) -> list[dict]:
    """Every JSON page of a query, following next_page_token."""
    out, token = [], None
    while True:
        query = dict(params) | ({"page_token": token} if token else {})
        r = client.get("/v1/bars", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        out.append(body)
        token = body["next_page_token"]
        if token is None:
            return out


def is_problem(r: httpx.Response, status: int, parameter: str | None = None) -> dict:
    """The problem document of ``r``, checked: status, media type, one-line detail."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    assert body["detail"] and "\n" not in body["detail"] and "Traceback" not in body["detail"]
    if parameter is not None:
        assert body.get("parameter") == parameter, body
        assert parameter.lower() in body["detail"].lower(), body
    return body


__all__ = ["ALL_TIMEFRAMES", "AAPL_CSV", "DAY", "NEXT_DAY", "Served", "export_csv",
           "fill_store", "is_problem", "pages", "replay_into", "serve", "tick_files"]
