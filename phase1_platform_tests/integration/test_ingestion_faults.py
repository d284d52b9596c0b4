"""The ingestion service as a real process: SIGKILL mid-stream + restart, SIGTERM flush.

The simulator runs in the test's event loop (speed > 0 so the stream lasts seconds,
paused while nobody listens); the service is ``python -m phase1_platform.ingestion``.
Both faults run against each store backend (SQLite file, PostgreSQL schema of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from phase1_platform.simulator.finnhub_server import FinnhubSimulator
from phase1_platform.storage import Store

from .test_ingestion import as_served, morning_tape, served, stored_ticks

# services killed or stopped while the tape streams: run alone (`make test` runs them after
# the parallel pass)
pytestmark = pytest.mark.serial

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



def start_service(sim_url: str, db: str, *extra: str,
                  rest_url: str | None = None) -> subprocess.Popen:
    """``phase1 ingest`` of SPY from the simulator at ``sim_url``; with ``rest_url`` (the
    simulator's REST side) its history is Finnhub's REST there (``--backfill-from
    finnhub``): bounded by the market clock, as a vendor's history is by the present."""
    env = {**os.environ, "FINNHUB_WS_URL": sim_url, "FINNHUB_API_KEY": "demo-key"}
    if rest_url is not None:
        env["FINNHUB_REST_URL"] = rest_url
        extra = ("--backfill-from", "finnhub", *extra)
    return subprocess.Popen(
        [sys.executable, "-m", "phase1_platform.ingestion", "--mode", "live",
         "--symbols", "SPY", "--database-url", db, *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def count(store: Store) -> int:
    return store.ticks.count()


async def until(predicate, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(backend):
    db, store = backend
    tape = morning_tape(20_000)
    span = (int(tape.t_ms[-1]) - int(tape.t_ms[0])) / 1000

    async def scenario():
        sim = FinnhubSimulator(tape, speed=span / 6, pause_when_idle=True)
        async with sim:
            first = start_service(sim.url, db, "--flush-interval", "0.1",
                                  rest_url=sim.rest_url)
            try:
                await until(lambda: count(store) > 3_000)
            finally:
                first.send_signal(signal.SIGKILL)  # no flush, no goodbye
                first.wait(10)
            landed_at_kill = count(store)
            second = start_service(sim.url, db, "--flush-interval", "0.1",
                                   rest_url=sim.rest_url)
            await asyncio.wait_for(sim.done.wait(), 120)
            await until(lambda: count(store) >= len(tape), 60)
            await asyncio.sleep(0.5)
            second.send_signal(signal.SIGTERM)
            out, err = await asyncio.to_thread(second.communicate, timeout=60)
        return first, second, landed_at_kill, out, err

    first, second, landed_at_kill, out, err = asyncio.run(scenario())
    assert first.returncode == -signal.SIGKILL
    assert second.returncode == 0, err[-2000:]
    assert 0 < landed_at_kill < len(tape)
    ticks = stored_ticks(db)
    # every trade of the tape exactly once, in tape order: nothing lost, nothing doubled
    pd.testing.assert_frame_equal(as_served(ticks), served(tape))
    assert '"event": "gap_detected"' in err and '"reason": "restart"' in err
    assert '"reason": "startup"' in err  # caught up from the watermark before connecting
    assert "demo-key" not in out + err


def test_sigterm_flushes_everything_received(backend):
    db, store = backend
    tape = morning_tape(8_000)

    async def scenario():
        async with FinnhubSimulator(tape, speed=0) as sim:
            # a flush interval far beyond the test: only the shutdown flush can land rows
            proc = start_service(sim.url, db, "--flush-interval", "3600",
                                 "--max-batch-rows", "1000000000")
            await asyncio.wait_for(sim.done.wait(), 60)
            await asyncio.sleep(1.0)
            landed_before = count(store)
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.to_thread(proc.communicate, timeout=60)
            sent = len(sim.sent)
        return proc, landed_before, sent, out, err

    proc, landed_before, sent, out, err = asyncio.run(scenario())
    assert proc.returncode == 0, err[-2000:]
    assert landed_before == 0
    assert sent == len(tape) == count(store)
    assert f"{len(tape)} landed" in out
    assert '"unstored_rows": 0' in err


def test_sigterm_while_still_connecting_stops_at_once(tmp_path):
    """Defect 11: a server that accepts TCP but never answers the WebSocket handshake;
    SIGTERM must not wait for the connect timeout (30 s)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(server.accept()[0])  # held open, never answered

    threading.Thread(target=accept, daemon=True).start()
    proc = start_service(f"ws://127.0.0.1:{port}", f"sqlite:///{tmp_path / 'c.sqlite'}")
    try:
        deadline = time.monotonic() + 60
        while not accepted and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert accepted, "the service never tried to connect"
        time.sleep(1.0)  # inside the handshake now
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        server.close()
        for conn in accepted:
            conn.close()
    assert proc.returncode == 0, err[-2000:]
    assert took < 10
    assert out.strip().splitlines() == [
        "ingest: stopped while connecting to the finnhub stream; nothing received"]
    assert '"event": "signal"' in err and "Traceback" not in err
    assert "demo-key" not in out + err
