"""Live ingestion service against the Finnhub-protocol simulator, end to end.

Ticks in the store equal the ticks served; bars built from the stored ticks (and the
streaming bars) equal ``phase1 replay`` of the same file byte for byte; a dropped
connection is backfilled without duplicates; the bar broadcast re-sends restated bars
and a slow client does not hold anything up. Subprocess fault tests (SIGKILL, SIGTERM)
are in ``test_ingestion_faults.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
from contextlib import asynccontextmanager

import numpy as np
import pandas as pd
import websockets

from phase1_platform.cli import main as cli_main
from phase1_platform.connectors.finnhub import FinnhubConnector
from phase1_platform.connectors.mock import MockConnector
from phase1_platform.core import CanonicalExporter
from phase1_platform.core.engine import BarEngine
from phase1_platform.core.partition import Partition
from phase1_platform.core.rules import DEFAULT_RULES
from phase1_platform.core.schema import ts_ns
from phase1_platform.core.timeframes import DEFAULT_TIMEFRAMES
from phase1_platform.ingestion.broadcast import BarBroadcaster
from phase1_platform.ingestion.identity import StreamIdentity, stream_name
from phase1_platform.ingestion.service import IngestionService
from phase1_platform.readers import read_ticks
from phase1_platform.simulator.finnhub_server import FinnhubSimulator, MarketTape
from phase1_platform.storage import QuarantineRepository, Store

from ..conftest import FIXTURES
from ..support.clock import run

SPY = FIXTURES / "lean" / "equity" / "usa" / "tick" / "spy" / "20131007_trade.zip"
DAY = "2013-10-07"
TIMEFRAMES = ",".join(DEFAULT_TIMEFRAMES)


def morning_tape(rows: int | None = None) -> MarketTape:
    raw = read_ticks(SPY)
    return MarketTape.from_raw(raw if rows is None else raw.iloc[:rows])


def stored_ticks(url: str, symbol: str = "SPY") -> pd.DataFrame:
    store = Store.from_url(url)
    try:
        return store.ticks.read(Partition(DAY, symbol))
    finally:
        store.dispose()


def served(tape: MarketTape) -> pd.DataFrame:
    """The tape as (t ms, price, size, conditions), market order."""
    return pd.DataFrame({"t": tape.t_ms.astype("int64"), "price": tape.price,
                         "size": np.asarray(tape.size, dtype="float64"),
                         "conditions": [" ".join(c) for c in tape.conditions]})


def as_served(ticks: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"t": ts_ns(ticks["ts"]) // 1_000_000,
                         "price": ticks["price"].to_numpy("float64"),
                         "size": ticks["size"].to_numpy("float64"),
                         "conditions": ticks["conditions"].astype(str).to_numpy(object)})


def replay_bytes(tmp_path, path) -> bytes:
    out = tmp_path / "replay.csv"
    assert cli_main(["replay", "--csv", str(path), "--timeframes", TIMEFRAMES,
                     "--output", str(out)]) == 0
    return out.read_bytes()


def bars_bytes(ticks: pd.DataFrame) -> bytes:
    return CanonicalExporter(BarEngine().build(ticks, TIMEFRAMES)).to_bytes()


def finnhub_for(sim: FinnhubSimulator,
                backoff_initial: float = 0.05) -> tuple[FinnhubConnector, StreamIdentity]:
    conn = FinnhubConnector(api_key="demo-key", ws_url=sim.url, rest_fallback=False,
                            idle_timeout=None, backoff_initial=backoff_initial, backoff_max=0.2)
    return conn, StreamIdentity(stream_name(sim.url))


async def start_service(sim: FinnhubSimulator, store: Store, backoff_initial: float = 0.05,
                        **options) -> IngestionService:
    """The service on a Finnhub connection to ``sim`` (SPY, 50 ms flushes), started; the
    default rule set (``phase1 replay``'s) unless told otherwise."""
    conn, identity = finnhub_for(sim, backoff_initial)
    svc = IngestionService(conn, store, ["SPY"], identity=identity,
                           **{"flush_interval": 0.05, "rules": DEFAULT_RULES, **options})
    await svc.start()
    return svc


@asynccontextmanager
async def service_on_tape(url: str, tape: MarketTape, timeout: float = 60.0):
    """(simulator, service, store): the simulator has served all of ``tape`` as fast as it
    can to the started service; the store is disposed on the way out."""
    store = Store.from_url(url)
    try:
        async with FinnhubSimulator(tape, speed=0) as sim:
            svc = await start_service(sim, store)
            await asyncio.wait_for(sim.done.wait(), timeout)
            yield sim, svc, store
    finally:
        store.dispose()


async def wait_for(predicate, timeout: float = 60.0, step: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)


class BarClient:
    """A websockets client that keeps the latest revision of every bar it is sent."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages: list[dict] = []
        self.latest: dict[tuple[str, str, str], dict] = {}
        self._task: asyncio.Task | None = None

    async def start(self) -> BarClient:
        self.ws = await websockets.connect(self.url)
        first = json.loads(await self.ws.recv())
        assert first["type"] == "subscribed"
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for text in self.ws:
            msg = json.loads(text)
            self.messages.append(msg)
            if msg["type"] == "bar":
                key = (msg["symbol"], msg["timeframe"], msg["timestamp"])
                if msg["revision"] > self.latest.get(key, {"revision": 0})["revision"]:
                    self.latest[key] = msg

    async def close(self) -> None:
        await self.ws.close()
        if self._task is not None:
            self._task.cancel()


def client_csv(latest: dict) -> pd.DataFrame:
    rows = [{k: m[k] for k in ("symbol", "timeframe", "timestamp", "open", "high", "low",
                               "close", "volume", "trade_count", "vwap")}
            for m in latest.values()]
    return pd.DataFrame(rows).astype(str)


# --------------------------------------------------------------------------- end to end
def test_service_against_simulator_matches_replay_byte_for_byte(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    tape = morning_tape()
    expected = replay_bytes(tmp_path, SPY)
    n_bars = expected.count(b"\n") - 1

    async def scenario():
        store = Store.from_url(url)
        async with FinnhubSimulator(tape, speed=0, batch_size=200) as sim:
            bc = BarBroadcaster(queue_size=100_000)
            await bc.start()  # before the stream, so the client sees every update
            client = await BarClient(f"{bc.url}?symbols=SPY").start()
            svc = await start_service(sim, store, broadcaster=bc, max_batch_rows=5000)
            await asyncio.wait_for(sim.done.wait(), 60)
            await wait_for(lambda: svc.stats.rows_received >= len(tape))
            await svc.flush()
            await wait_for(lambda: len(client.latest) >= n_bars
                           and bc.sent_total >= svc.stats.bar_updates + 1)
            stats = await svc.stop()
            await client.close()
        store.dispose()
        return sim, svc, stats, client

    sim, svc, stats, client = run(scenario())
    ticks = stored_ticks(url)
    assert stats.landed == len(tape) == len(ticks) and stats.duplicates == 0
    # the ticks in the store are the ticks served, in the same order
    pd.testing.assert_frame_equal(as_served(ticks), served(tape))
    assert len(sim.sent) == len(tape)
    assert bars_bytes(ticks) == expected  # the asset graph's input gives replay's bars
    streaming = CanonicalExporter(svc.aggregator.bars()).to_bytes()
    assert streaming == expected
    # what a WebSocket client holds at the end is the same set of bars
    got = client_csv(client.latest).sort_values(["timeframe", "timestamp"]).reset_index(drop=True)
    want = pd.read_csv(io.BytesIO(expected), dtype=str, keep_default_na=False)
    want = want.sort_values(["timeframe", "timestamp"]).reset_index(drop=True)
    got = got[list(want.columns)]
    pd.testing.assert_frame_equal(got, want)


def test_dropped_connection_gap_is_backfilled_without_duplicates(tmp_path):
    """The market goes on while the client reconnects: the gap comes from history."""
    url = f"sqlite:///{tmp_path / 'gap.sqlite'}"
    tape = morning_tape(12_000)

    async def scenario():
        store = Store.from_url(url)
        span = (int(tape.t_ms[-1]) - int(tape.t_ms[0])) / 1000
        sim = FinnhubSimulator(tape, speed=span / 4, pause_when_idle=False,
                               drop_after=8, drop_times=2)
        async with sim:
            history = MockConnector([SPY])
            # the first reconnect waits 0.3 s: the market runs on meanwhile
            svc = await start_service(sim, store, backoff_initial=0.3, historical=history)
            await asyncio.wait_for(sim.done.wait(), 60)
            await asyncio.sleep(0.5)
            stats = await svc.stop()
        store.dispose()
        return sim, stats

    sim, stats = run(scenario())
    ticks = stored_ticks(url)
    received = len(sim.sent)
    assert received < len(tape), "the simulator should have run on during the drops"
    assert stats.gaps >= 1 and stats.backfilled > 0
    # everything up to the last tick received is stored exactly once
    last = int(ts_ns(ticks["ts"]).max()) // 1_000_000
    want = served(tape)
    want = want[want["t"] <= last].reset_index(drop=True)
    pd.testing.assert_frame_equal(as_served(ticks), want)


def test_restarted_simulator_replays_and_nothing_is_counted_twice(tmp_path):
    """A new simulator serves the day from the start: identities repeat, landing dedups."""
    url = f"sqlite:///{tmp_path / 'twice.sqlite'}"
    tape = morning_tape(5_000)

    async def once():
        async with service_on_tape(url, tape) as (_, svc, _):
            await wait_for(lambda: svc.stats.rows_received >= len(tape))
            return await svc.stop(), svc

    first, _ = run(once())
    second, svc = run(once())
    assert first.landed == len(tape)
    assert second.landed == 0 and second.duplicates == len(tape)
    ticks = stored_ticks(url)
    pd.testing.assert_frame_equal(as_served(ticks), served(tape))
    # streaming bars of the second run were seeded from the store, not doubled
    assert CanonicalExporter(svc.aggregator.bars()).to_bytes() == bars_bytes(ticks)


def test_bad_rows_are_quarantined_per_partition(tmp_path):
    url = f"sqlite:///{tmp_path / 'bad.sqlite'}"
    tape = morning_tape(200)

    async def scenario():
        async with service_on_tape(url, tape, timeout=30) as (sim, svc, store):
            t = int(tape.t_ms[0])
            await sim.inject_raw(json.dumps({"type": "trade", "data": [
                {"s": "SPY", "p": -1, "t": t, "v": 100, "c": []},
                {"s": "SPY", "p": 1.5, "t": "x", "v": 100, "c": []}]}))
            await sim.inject_raw("{not json")
            await wait_for(lambda: svc.stats.rows_received >= len(tape) + 2)
            await asyncio.sleep(0.2)
            stats = await svc.stop()
            q_day = QuarantineRepository(store).read(f"{DAY}|SPY")
            q_svc = QuarantineRepository(store).read("ingest|finnhub@127.0.0.1")
        return stats, q_day, q_svc

    stats, q_day, q_svc = run(scenario())
    assert stats.landed == len(tape)
    assert list(q_day["reason"]) == ["price <= 0 or NaN"]
    # rows the connector cannot read are its quarantine rows, kept by the service
    assert sorted(q_svc["reason"]) == ["malformed JSON frame", "trade t is not a number"]
    assert "demo-key" not in " ".join(q_svc["raw"])


# --------------------------------------------------------------------------- broadcast
def test_broadcast_resends_a_bar_restated_by_a_late_tick(tmp_path):
    url = f"sqlite:///{tmp_path / 'bc.sqlite'}"

    async def scenario():
        store = Store.from_url(url)
        mock = MockConnector()
        bc = BarBroadcaster()
        svc = IngestionService(mock, store, ["AAPL"], broadcaster=bc, timeframes="1m",
                               flush_interval=30)
        await svc.start()
        client = await BarClient(f"{bc.url}?symbols=AAPL").start()
        other = await BarClient(f"{bc.url}?symbols=MSFT").start()
        await mock.inject_ticks([
            {"timestamp": "2013-10-07T14:00:10Z", "symbol": "AAPL", "price": 100.0, "size": 10},
            {"timestamp": "2013-10-07T14:01:05Z", "symbol": "AAPL", "price": 101.0, "size": 5},
        ])
        await svc.flush()
        await wait_for(lambda: len(client.latest) == 2, 10)
        # late tick: re-opens the closed 14:00 bar with a new low and an earlier open
        await mock.inject_tick(timestamp="2013-10-07T14:00:01Z", symbol="AAPL",
                               price=99.0, size=1)
        await svc.flush()
        await wait_for(lambda: client.latest[("AAPL", "1m", "2013-10-07T14:00:00Z")]
                       ["revision"] == 2, 10)
        await svc.stop()
        await client.close()
        await other.close()
        store.dispose()
        return client, other

    client, other = run(scenario())
    bars = [m for m in client.messages if m["type"] == "bar"]
    assert [(m["timestamp"], m["revision"], m["restated"]) for m in bars] == [
        ("2013-10-07T14:00:00Z", 1, False), ("2013-10-07T14:01:00Z", 1, False),
        ("2013-10-07T14:00:00Z", 2, True)]
    last = bars[-1]
    assert (last["open"], last["low"], last["high"], last["close"]) == ("99", "99", "100", "100")
    assert (last["volume"], last["trade_count"]) == ("11", 2)
    assert other.messages == []  # MSFT subscriber gets no AAPL bars


def test_slow_client_never_blocks_publish_and_its_drops_are_counted():
    async def scenario():
        bc = BarBroadcaster(queue_size=50)
        await bc.start()
        # a client that never reads: tiny receive queue, so the server's sends back up
        # (no compression: repetitive JSON would deflate 20x and fit in socket buffers)
        slow = await websockets.connect(f"{bc.url}?symbols=AAPL", max_queue=1,
                                        compression=None)
        fast = await BarClient(f"{bc.url}?symbols=AAPL").start()
        await wait_for(lambda: bc.client_count == 2, 10)
        for i in range(1000):
            n = 50
            bars = pd.DataFrame({
                "symbol": "AAPL", "timeframe": "1m",
                "ts": 1_381_154_400_000_000_000 + np.arange(n, dtype="int64") * 60_000_000_000,
                "open": 100.0 + i, "high": 101.0 + i, "low": 99.0, "close": 100.5,
                "qty": 10**10, "notional": 10**9 + i, "trade_count": i + 1})
            assert bc.publish(bars) == 2 * n  # queued for both, synchronously
            await asyncio.sleep(0)  # the fast client's sender gets to run
        await wait_for(lambda: len(fast.latest) == 50
                       and all(m["revision"] == 1000 for m in fast.latest.values()), 30)
        stats = bc.client_stats()
        dropped = bc.dropped_total
        await fast.close()
        slow.transport.abort()
        await bc.stop()
        return dropped, stats, fast

    dropped, stats, fast = run(scenario())
    assert dropped > 0  # the slow client's oldest messages were dropped and counted
    assert sorted(s["dropped"] > 0 for s in stats) == [False, True]  # the slow one only
    assert sum(s["dropped"] for s in stats) == dropped
    assert all(m["trade_count"] == 1000 for m in fast.latest.values())


# ------------------------------------------------------------------------ phase1 simulate
def test_simulate_on_a_port_in_use_is_one_line_naming_the_port_and_the_fix(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli_main(["simulate", "--port", str(port), "--csv",
                         str(FIXTURES / "2013-10-07" / "AAPL.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"127.0.0.1:{port}" in err and "already in use" in err and "--port" in err
