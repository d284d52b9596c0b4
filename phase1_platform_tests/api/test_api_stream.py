"""``WS /v1/stream/bars``: the live bar stream relayed from a real ingestion service.

The Finnhub simulator (in the test's loop) feeds ``phase1 ingest`` (a process, broadcasting
its bars); ``phase1 serve --stream-url`` relays that broadcast. ``serve`` starts first, so
the relay has to retry until the broadcast is up. Every frame an API client gets is a frame
the broadcast sent, unchanged; a symbol filter keeps other symbols out; SIGTERM closes the
clients and ends ``serve`` with 0. Without ``--stream-url`` the endpoint still answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from phase1_platform.simulator.finnhub_server import FinnhubSimulator

from ..conftest import ROOT
from ..integration.test_ingestion import morning_tape
from .harness import serve

TAPE_ROWS = 6_000
TAPE_SECONDS = 6.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ws_url(http: str, query: str = "") -> str:
    return http.replace("http://", "ws://") + "/v1/stream/bars" + query


class Listener:
    """A WebSocket client that keeps every text frame it receives."""

    def __init__(self, url: str):
        self.url = url
        self.frames: list[str] = []
        self.closed: asyncio.Event = asyncio.Event()
        self.close_code: int | None = None
        self._task: asyncio.Task | None = None

    async def start(self, timeout: float = 30.0) -> Listener:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            try:
                self.ws = await connect(self.url, open_timeout=5)
                break
            except (OSError, InvalidStatus):
                if loop.time() > end:
                    raise
                await asyncio.sleep(0.1)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                self.frames.append(text)
        except ConnectionClosed:
            pass
        self.close_code = self.ws.close_code
        self.closed.set()

    def messages(self, kind: str | None = None) -> list[dict]:
        out = [json.loads(f) for f in self.frames]
        return [m for m in out if kind is None or m["type"] == kind]

    def bar_frames(self) -> list[str]:
        return [f for f in self.frames if json.loads(f)["type"] == "bar"]

    async def close(self) -> None:
        await self.ws.close()
        await self.closed.wait()


async def until(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"{what} not reached in {timeout} s")
        await asyncio.sleep(0.05)


def start_ingest(sim_url: str, db: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "FINNHUB_WS_URL": sim_url, "FINNHUB_API_KEY": "demo-key"}
    return subprocess.Popen(
        [sys.executable, "-m", "phase1_platform", "ingest", "--mode", "live", "--symbols",
         "SPY", "--database-url", db, "--broadcast-port", str(port), "--flush-interval",
         "0.1"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_live_bars_are_relayed_unchanged_filtered_by_symbol(tmp_path):
    db = f"sqlite:///{tmp_path / 'live.sqlite'}"
    port = free_port()
    broadcast = f"ws://127.0.0.1:{port}/ws/bars"
    server = serve(db, "--stream-url", broadcast)  # before the broadcast exists: it retries

    async def scenario():
        tape = morning_tape(TAPE_ROWS)
        span = (int(tape.t_ms[-1]) - int(tape.t_ms[0])) / 1000
        async with FinnhubSimulator(tape, speed=span / TAPE_SECONDS,
                                    pause_when_idle=True) as sim:
            spy = await Listener(ws_url(server.api, "?symbols=spy")).start()
            await until(lambda: spy.messages("subscribed"), what="API greeting")
            greeting = spy.messages("subscribed")[0]
            assert greeting["symbols"] == ["SPY"] and greeting["schema"] == 1
            assert greeting["stream"] in ("connecting", "disconnected")
            ingest = start_ingest(sim.url, db, port)
            try:
                direct = await Listener(f"{broadcast}?symbols=SPY").start()
                everyone = await Listener(ws_url(server.api)).start()
                other = await Listener(ws_url(server.api, "?symbols=AAPL")).start()
                await until(lambda: any(m["stream"] == "connected"
                                        for m in spy.messages("status")), what="relay up")
                await asyncio.wait_for(sim.done.wait(), 120)
                await until(lambda: len(spy.bar_frames()) >= 50, what="relayed bars")
                await asyncio.sleep(1.0)  # the last flush reaches every client
                with server.client() as c:
                    assert c.get("/v1/health").json()["stream"] == "connected"
            finally:
                ingest.send_signal(signal.SIGTERM)
                await asyncio.to_thread(ingest.communicate, timeout=60)
            await until(lambda: any(m["stream"] == "disconnected"
                                    for m in spy.messages("status")), what="relay down")
            code, _, err = await asyncio.to_thread(server.stop)  # clients still connected
            await asyncio.wait_for(spy.closed.wait(), 10)
            await asyncio.wait_for(everyone.closed.wait(), 10)
            await direct.close()
            await other.close()
            return spy, everyone, other, direct, code, err, ingest.returncode

    spy, everyone, other, direct, code, err, ingest_code = asyncio.run(scenario())
    relayed, sent = spy.bar_frames(), direct.bar_frames()
    assert relayed and set(relayed) <= set(sent)  # the very frames, unchanged
    # in the order sent: from the moment the relay connected, every frame, nothing dropped
    assert relayed == sent[len(sent) - len(relayed):]
    assert everyone.bar_frames() == relayed  # only SPY flows
    assert other.bar_frames() == [] and other.messages("subscribed")[0]["symbols"] == ["AAPL"]
    bars = [json.loads(f) for f in relayed]
    assert {b["symbol"] for b in bars} == {"SPY"}
    assert any(b["restated"] and b["revision"] > 1 for b in bars)  # updates of open bars
    assert code == 0, err[-2000:]
    assert ingest_code == 0
    assert spy.close_code in (1000, 1001, 1012)
    assert "demo-key" not in err


def test_without_stream_url_the_endpoint_answers_not_configured(served):
    async def scenario():
        listener = await Listener(ws_url(served.api, "?symbols=SPY,AAPL")).start()
        await until(lambda: listener.frames, what="greeting")
        await listener.close()
        return listener.messages()

    assert asyncio.run(scenario()) == [{"type": "subscribed", "schema": 1,
                                        "symbols": ["AAPL", "SPY"],
                                        "stream": "not configured"}]


@pytest.mark.parametrize("symbols", ["../../etc", "';DROP", "A" * 20])
def test_invalid_stream_symbols_refuse_the_handshake_with_a_problem(served, symbols):
    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            await connect(ws_url(served.api, f"?symbols={symbols}"), open_timeout=5)
        return refused.value.response

    response = asyncio.run(scenario())
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = json.loads(response.body)
    assert body["parameter"] == "symbols" and "symbols" in body["detail"]
