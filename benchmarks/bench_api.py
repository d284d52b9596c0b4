"""Read API benchmark: one trading day of 1m bars of one symbol through ``GET /v1/bars``
(JSON and CSV), warm, 8 concurrent clients on loopback, against reading the same rows
straight from the store (``BarRepository.read``, what ``phase1 export`` reads with) by 8
concurrent threads, in the same run.

The server is a real ``phase1 serve`` process on a SQLite store (the default store) filled
by a replay of the real SPY tick day of 2013-10-07 (828 1m bars with the extended hours;
the fixture slice when ``../shared/data`` is absent, and with ``--quick``). Every client
keeps its connection; each request's latency is measured from send to the last byte.

Figures: ``api_bars_p50_ms``, ``api_bars_p99_ms``, ``api_bars_rps`` (JSON), the same for
CSV (``api_bars_csv_*``), ``store_read_p50_ms`` / ``store_read_rps``, and
``api_vs_store_ratio``: the wall time of N JSON requests through the API over the wall
time of N direct store reads, both 8 at a time (``api_csv_vs_store_ratio`` for CSV).
Targets (issue 11): p99 < 25 ms and ratio <= 2.0 for the JSON day.

The store is not written during the run, so after the first request of each format the
API answers from its response cache (``api.response_cache``): ``api_bars_cache_hit_ratio``
is the share of the measured JSON requests that said ``X-Cache: hit``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from phase1_platform.app.export import export_bars
from phase1_platform.app.replay import persist, replay
from phase1_platform.core.calendar import trading_day_window
from phase1_platform.storage import BarRepository, Store

ROOT = Path(__file__).resolve().parents[1]
DAY, NEXT_DAY, SYMBOL = "2013-10-07", "2013-10-08", "SPY"
REAL = ROOT.parent / "shared" / "data" / "lean" / "equity" / "usa" / "tick" / "spy" / \
    "20131007_trade.zip"
FIXTURE = ROOT / "fixtures" / "lean" / "equity" / "usa" / "tick" / "spy" / "20131007_trade.zip"
CLIENTS = 8
QUERY = {"symbols": SYMBOL, "timeframe": "1m", "start": DAY, "end": NEXT_DAY, "limit": 10000}


def fill(url: str, ticks: Path) -> int:
    store = Store.from_url(url)
    try:
        persist(replay([ticks], "1m"), store)
        return len(BarRepository(store).read([SYMBOL], ["1m"], *trading_day_window(DAY)))
    finally:
        store.dispose()


class Server:
    """``phase1 serve`` on free ports; ``api`` once it answers."""

    def __init__(self, url: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "phase1_platform", "serve", "--database-url", url,
             "--api-port", "0", "--dashboard-port", "0", "--log-level", "WARNING"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.api = None
        for line in self.proc.stdout:
            if line.startswith("API: "):
                self.api = line.split()[1]
            if line.startswith("dashboard: "):
                break
        if self.api is None:
            raise RuntimeError(f"phase1 serve did not start (rc={self.proc.wait()})")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _clients(api: str, params: dict, total: int
                   ) -> tuple[list[float], float, bytes, int]:
    """``total`` requests by ``CLIENTS`` concurrent clients: (latencies s, wall s, a body,
    how many were cache hits)."""
    latencies: list[float] = []
    hits = [0]
    remaining = [total]
    body = [b""]

    async def client() -> None:
        async with httpx.AsyncClient(base_url=api, timeout=30) as c:
            while remaining[0] > 0:
                remaining[0] -= 1
                t0 = time.perf_counter()
                r = await c.get("/v1/bars", params=params)
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text[:200]
                body[0] = r.content
                hits[0] += r.headers.get("x-cache") == "hit"

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return latencies, time.perf_counter() - t0, body[0], hits[0]


def through_api(api: str, params: dict, total: int, warm: int):
    asyncio.run(_clients(api, params, warm))
    return asyncio.run(_clients(api, params, total))


def direct(url: str, total: int, warm: int) -> tuple[list[float], float]:
    """``total`` reads of the same rows by ``CLIENTS`` threads: (latencies s, wall s)."""
    store = Store.from_url(url)
    start, end = trading_day_window(DAY)
    repo = BarRepository(store)

    def once(_: int) -> float:
        t0 = time.perf_counter()
        repo.read([SYMBOL], ["1m"], start, end)
        return time.perf_counter() - t0

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(once, range(warm)))
            t0 = time.perf_counter()
            latencies = list(pool.map(once, range(total)))
            return latencies, time.perf_counter() - t0
    finally:
        store.dispose()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] * 1000


def run(quick: bool = False) -> dict:
    ticks = FIXTURE if quick or not REAL.is_file() else REAL
    total, warm = (200, 40) if quick else (2000, 200)
    with tempfile.TemporaryDirectory(prefix="phase1-bench-api-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        bars = fill(url, ticks)
        store = Store.from_url(url)
        try:
            expected_csv = export_bars(store, [SYMBOL], ["1m"], DAY, DAY).data
        finally:
            store.dispose()
        server = Server(url)
        try:
            lat_json, wall_json, body, hits = through_api(server.api, QUERY, total, warm)
            assert body.count(b'"symbol"') == bars  # every bar of the day in one page
            lat_csv, wall_csv, csv, _ = through_api(server.api, QUERY | {"format": "csv"},
                                                    total, warm)
            assert csv == expected_csv  # byte-identical to phase1 export
        finally:
            server.stop()
        lat_store, wall_store = direct(url, total, warm)
    figures = {
        "api_bench_bars": bars,
        "api_bars_p50_ms": round(pct(lat_json, 0.50), 3),
        "api_bars_p99_ms": round(pct(lat_json, 0.99), 3),
        "api_bars_rps": round(total / wall_json, 1),
        "api_bars_cache_hit_ratio": round(hits / total, 3),
        "api_bars_csv_p50_ms": round(pct(lat_csv, 0.50), 3),
        "api_bars_csv_p99_ms": round(pct(lat_csv, 0.99), 3),
        "api_bars_csv_rps": round(total / wall_csv, 1),
        "store_read_p50_ms": round(pct(lat_store, 0.50), 3),
        "store_read_rps": round(total / wall_store, 1),
        "api_vs_store_ratio": round(wall_json / wall_store, 3),
        "api_csv_vs_store_ratio": round(wall_csv / wall_store, 3),
    }
    print(f"{bars} 1m bars of {SYMBOL} {DAY} ({ticks.name} of {ticks.parent.name}), "
          f"{CLIENTS} concurrent clients, {total} requests each, warm ({warm} first)")
    print(f"{'path':<22}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}")
    for name, lat, wall in (("GET /v1/bars JSON", lat_json, wall_json),
                            ("GET /v1/bars CSV", lat_csv, wall_csv),
                            ("store read (direct)", lat_store, wall_store)):
        print(f"{name:<22}{pct(lat, .5):>9.2f}{pct(lat, .99):>9.2f}{total / wall:>9.1f}")
    print(f"API JSON / direct read: {figures['api_vs_store_ratio']:.2f}x the time "
          "(targets: p99 < 25 ms, ratio <= 2.0)")
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in os.sys.argv), sort_keys=True))
