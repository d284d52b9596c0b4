"""Every live connector driven through the one ``LiveTicks`` sequence the ingestion
service uses (register callbacks, subscribe, connect(stop), run(stop), disconnect),
against local fakes speaking the vendors' protocols: no name switches, no probing."""

from __future__ import annotations

import asyncio

import pandas as pd

from phase1_platform.connectors.alpaca import AlpacaConnector
from phase1_platform.connectors.finnhub import FinnhubConnector
from phase1_platform.connectors.mock import MockConnector
from phase1_platform.connectors.protocols import LiveTicks
from phase1_platform.connectors.settings import load_settings
from phase1_platform.simulator.finnhub_server import FinnhubSimulator

from ..support.clock import run
from .test_alpaca import KEY, SECRET, FakeAlpaca, rfc3339_nano

TOKEN = "proto-sim-token-42"


def write_ticks(path, n=50):
    base = pd.Timestamp("2024-03-04T14:30:00Z")
    rows = ["timestamp,symbol,price,size"]
    for i in range(n):
        ts = base + pd.Timedelta(milliseconds=250 * i)
        rows.append(f"{ts.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z,AAPL,{170 + i % 7},{1 + i % 3}")
    path.write_text("\n".join(rows) + "\n")
    return path


async def drive(conn: LiveTicks, symbols, enough) -> tuple[list, list, bool]:
    """The service's sequence; stops once ``enough(frames)`` (or the stream ended)."""
    assert isinstance(conn, LiveTicks)
    frames: list[pd.DataFrame] = []
    bad: list[pd.DataFrame] = []
    conn.register_callback(frames.append)
    conn.register_quarantine_callback(bad.append)
    await conn.subscribe(symbols)
    stop = asyncio.Event()
    await conn.connect(stop)
    runner = asyncio.create_task(conn.run(stop))
    while not enough(frames) and not runner.done():
        await asyncio.sleep(0.01)
    ended_by_itself = runner.done()
    stop.set()
    await asyncio.wait_for(runner, 10)
    await conn.disconnect()
    return frames, bad, ended_by_itself


def rows(frames) -> int:
    return sum(len(f) for f in frames)


def test_mock_replays_then_run_returns(tmp_path):
    conn = MockConnector([write_ticks(tmp_path / "t.csv")], batch_size=7)
    frames, bad, ended = run(drive(conn, ["AAPL"], lambda f: False))
    assert ended and rows(frames) == 50 and bad == []


def test_finnhub_streams_until_stopped(tmp_path):
    async def main():
        sim = FinnhubSimulator.from_files([write_ticks(tmp_path / "t.csv")], token=TOKEN)
        async with sim:
            conn = FinnhubConnector(TOKEN, ws_url=sim.url, rest_url="http://127.0.0.1:9",
                                    rest_fallback=False, idle_timeout=None)
            return await drive(conn, ["AAPL"], lambda f: rows(f) >= 50)

    frames, bad, ended = run(main())
    assert not ended and rows(frames) == 50 and bad == []


def test_alpaca_polls_until_stopped():
    base = pd.Timestamp("2024-03-04T14:30:00Z").value
    trades = [{"t": rfc3339_nano(base + i * 10**9), "x": "Q", "p": 170.0 + i, "s": 100,
               "c": ["@"], "i": i, "z": "C"} for i in range(5)]

    async def main(fake):
        settings = load_settings(env_file=None, APCA_API_KEY_ID=KEY, APCA_API_SECRET_KEY=SECRET,
                                 ALPACA_DATA_URL=fake.url, INGESTION_MODE="live")
        conn = AlpacaConnector(settings=settings, poll_interval=0.01)
        return await drive(conn, ["AAPL"], lambda f: rows(f) >= 1)

    with FakeAlpaca({"AAPL": trades}) as fake:
        frames, bad, ended = run(main(fake))
    assert not ended and rows(frames) >= 1 and bad == []
    assert pd.concat(frames)["trade_id"].iloc[0] == "Q-C-4"  # first poll: the latest trade
