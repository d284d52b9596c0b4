"""A service restarted after the day's last trades still lands them (startup catch-up).

The state a SIGKILL leaves when it hits after the stream delivered the tape's last
trades but before they landed, made deterministic: a first service lands a prefix of
the tape (cut inside a millisecond, so the boundary-millisecond numbering is exercised),
then the market trades the rest while no service listens, and the tape ends. The
restarted service gets no live tick at all; its history holds the rest. It must catch
up at start: the store holds the whole tape exactly once, and the stored bars equal a
batch rebuild (and the live_bars verification finds nothing to correct). History either
through Finnhub's REST protocol (the simulator's ``/quote`` and ``/stock/tick``, bounded
by its market clock) or from a tick file. SQLite, PostgreSQL, Parquet ticks.
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import numpy as np
import pandas as pd
import pytest
import websockets

from phase1_platform.app.build import build_bars
from phase1_platform.app.verify_live import VERIFIED
from phase1_platform.connectors.base import ConnectorError
from phase1_platform.connectors.finnhub import FinnhubConnector
from phase1_platform.connectors.mock import MockConnector
from phase1_platform.connectors.net import register_secret
from phase1_platform.core.normalizer import TickNormalizer
from phase1_platform.core.rules import get_rules
from phase1_platform.ingestion.gaps import Gap, GapTracker
from phase1_platform.ingestion.identity import StreamIdentity, stream_name
from phase1_platform.ingestion.service import IngestionService
from phase1_platform.simulator.finnhub_server import FinnhubSimulator, MarketTape
from phase1_platform.storage import BarRepository, Store, WatermarkRepository

from ..support.clock import run
from .test_ingestion import DAY, as_served, morning_tape, served, stored_ticks
from .test_live_path import PART, RULES, TIMEFRAMES, assert_stored_equals_batch

TAPE_ROWS = 6_000
SECRET = "catch-up-secret-7f3a"



def prefix(tape: MarketTape, n: int) -> MarketTape:
    return MarketTape(tape.symbol[:n], tape.t_ms[:n], tape.price[:n], tape.size[:n],
                      tape.conditions[:n])


def cut_inside_a_millisecond(tape: MarketTape, at_least: int) -> int:
    """The first prefix length >= ``at_least`` that splits a millisecond's trades."""
    same = np.flatnonzero(tape.t_ms[at_least:] == tape.t_ms[at_least - 1:-1])
    assert len(same), "the tape has no millisecond with two trades"
    return at_least + int(same[0])


def tape_csv(tape: MarketTape, path) -> str:
    """The tape as a DESIGN tick CSV (what a file history holds)."""
    pd.DataFrame({
        "timestamp": pd.to_datetime(tape.t_ms, unit="ms", utc=True).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"),
        "symbol": tape.symbol, "price": tape.price, "size": tape.size,
        "conditions": [" ".join(c) for c in tape.conditions],
    }).to_csv(path, index=False)
    return str(path)


def finnhub(sim: FinnhubSimulator) -> FinnhubConnector:
    return FinnhubConnector(api_key="demo-key", ws_url=sim.url, rest_url=sim.rest_url,
                            rest_fallback=False, idle_timeout=None, backoff_initial=0.05,
                            backoff_max=0.2)


def service(sim: FinnhubSimulator, store: Store, historical=None) -> IngestionService:
    return IngestionService(finnhub(sim), store, ["SPY"],
                            identity=StreamIdentity(stream_name(sim.url)),
                            historical=historical, timeframes=TIMEFRAMES,
                            rules=get_rules(RULES), flush_interval=0.05)


async def trade_it_all(sim: FinnhubSimulator) -> None:
    """The market trades its whole tape while no ingestion service listens."""
    async with websockets.connect(f"{sim.url}?token=someone-else") as ws:
        await ws.send(json.dumps({"type": "subscribe", "symbol": "SPY"}))
        reader = asyncio.create_task(_read_all(ws))
        await asyncio.wait_for(sim.done.wait(), 60)
        reader.cancel()


async def _read_all(ws) -> None:
    async for _ in ws:
        pass


@pytest.mark.parametrize("history", ["finnhub-rest", "file"])
def test_restart_after_the_last_trades_catches_up_without_a_live_tick(backend, history,
                                                                      tmp_path):
    url, store = backend
    tape = morning_tape(TAPE_ROWS)
    landed = cut_inside_a_millisecond(tape, TAPE_ROWS * 2 // 3)

    async def scenario():
        # 1. a first service lands the tape up to inside a millisecond
        async with FinnhubSimulator(prefix(tape, landed), speed=0) as sim:
            first = service(sim, store)
            await first.start()
            await asyncio.wait_for(sim.done.wait(), 60)
            while first.stats.rows_received < landed:
                await asyncio.sleep(0.02)
            await first.stop()
        assert store.ticks.count() == landed
        # 2. the market trades the rest, nobody ingests it; the tape ends
        async with FinnhubSimulator(tape, speed=0) as sim:
            await trade_it_all(sim)
            history_of = {"finnhub-rest": lambda: finnhub(sim),
                          "file": lambda: MockConnector([tape_csv(tape, tmp_path / "t.csv")])}
            # 3. restarted: no live tick will ever come; the history has the rest
            second = service(sim, store, historical=history_of[history]())
            assert await second.start()
            sent_after_restart = len(sim.sent) - len(tape)
            stats = await second.stop()
            if isinstance(second.historical, FinnhubConnector):
                await second.historical.disconnect()
            return stats, sent_after_restart

    stats, sent_after_restart = run(scenario())
    # every trade of the tape exactly once, in tape order
    pd.testing.assert_frame_equal(as_served(stored_ticks(url)), served(tape))
    assert sent_after_restart == 0  # not one live tick after the restart
    assert stats.rows_received == 0 and stats.gaps == 1
    assert stats.backfilled == len(tape) - landed
    assert_stored_equals_batch(store)
    assert len(BarRepository(store).read_partition(PART, ["1d"])) == 1
    verdict = build_bars(store, PART, RULES, incremental=True).verdict
    assert verdict.mode == VERIFIED and verdict.equal and not verdict.written, \
        verdict.summary()


def test_simulator_rest_answers_only_the_market_s_past():
    """The simulator's Finnhub REST side: ``/quote`` and ``/stock/tick`` know the trades
    the market has traded, nothing later; the token is required, bad input is a 4xx."""
    tape = morning_tape(3_000)

    async def get(client, path, token="demo-key", **params):
        headers = {"X-Finnhub-Token": token} if token else {}
        resp = await client.get(path, params=params, headers=headers)
        return resp.status_code, resp.json()

    async def scenario():
        async with FinnhubSimulator(tape, speed=0) as sim, \
                httpx.AsyncClient(base_url=sim.rest_url + "/") as client:
            before = [await get(client, "quote", symbol="SPY"),
                      await get(client, "stock/tick", symbol="SPY", date=DAY)]
            await trade_it_all(sim)
            after = [await get(client, "quote", symbol="spy"),
                     await get(client, "stock/tick", symbol="SPY", date=DAY, limit=1000,
                               skip=2500),
                     await get(client, "stock/tick", symbol="SPY", date="2013-10-08")]
            bad = [await get(client, "quote", token=None, symbol="SPY"),
                   await get(client, "quote", token="", symbol="SPY"),
                   await get(client, "stock/tick", symbol="SPY", date="yesterday"),
                   await get(client, "stock/tick", symbol="SPY", date=DAY, skip="x"),
                   await get(client, "quote"),
                   await get(client, "stock/candle", symbol="SPY")]
            return before, after, bad

    before, after, bad = run(scenario())
    assert before[0] == (200, {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0,
                               "pc": 0, "t": 0})  # nothing traded yet
    assert before[1][1]["total"] == 0 and before[1][1]["t"] == []
    (_, quote), (_, page), (_, other_day) = after
    assert quote["t"] == int(tape.t_ms[-1]) // 1000 and quote["c"] == tape.price[-1]
    assert quote["h"] == max(tape.price) and quote["o"] == tape.price[0]
    assert page["total"] == len(tape) and page["count"] == 500 and page["skip"] == 2500
    assert page["t"] == tape.t_ms[2500:].tolist() and page["p"] == tape.price[2500:]
    assert page["c"] == tape.conditions[2500:] and "x" not in page
    assert other_day["total"] == 0
    assert [status for status, _ in bad] == [401, 401, 422, 422, 422, 404]


def test_a_startup_gap_keeps_its_upper_millisecond_for_ticks_with_ids():
    """Ticks with trade ids behind an id-less stream: a live-tick boundary millisecond is
    left out (that tick lands under the stream's identity), the present is not one."""
    tracker = GapTracker(None, None, identity=StreamIdentity("finnhub@sim"),
                         historical=None, stats=None)
    ms = [1_000, 1_500, 2_000]
    raw = pd.DataFrame({"timestamp": pd.to_datetime(ms, unit="ms", utc=True),
                        "symbol": "SPY", "price": [1.0, 2.0, 3.0], "size": [1, 1, 1],
                        "trade_id": ["a", "b", "c"], "source": "alpaca:iex",
                        "source_row": [0, 1, 2]})
    ticks = TickNormalizer().normalize(raw).ticks
    lo, hi = ms[0] * 1_000_000, ms[-1] * 1_000_000
    kept = {reason: tracker.trim(Gap("SPY", lo, hi, "s", reason, hi_live=reason != "startup"),
                                 ticks)["trade_id"].tolist()
            for reason in ("restart", "startup")}
    assert kept == {"restart": ["b"], "startup": ["b", "c"]}


class StuckHistory:
    """A history whose vendor never answers (``latest_trade_time`` hangs)."""

    name = "stuck"

    async def latest_trade_time(self, symbol: str):
        await asyncio.Event().wait()

    async def get_historical_ticks(self, symbol, start, end):  # pragma: no cover
        yield pd.DataFrame()


class RefusingHistory(StuckHistory):
    name = "refusing"

    async def latest_trade_time(self, symbol: str):
        raise ConnectorError(f"vendor says: key {SECRET} refused\n(try another)")


def test_catch_up_refused_or_stopped_never_blocks_the_service(tmp_path, caplog):
    """A vendor that refuses: one line (secret-free), the service starts anyway. One that
    never answers: a stop ends the start at once, and the service stops cleanly."""
    register_secret(SECRET)
    store = Store.from_url(f"sqlite:///{tmp_path / 'c.sqlite'}")
    WatermarkRepository(store).advance("finnhub@sim:SPY:2013-10-07", "SPY",
                                       pd.Timestamp("2013-10-07T14:00Z").value)

    def service_with(history) -> IngestionService:
        return IngestionService(MockConnector(), store, ["SPY"],
                                identity=StreamIdentity("finnhub@sim"), historical=history,
                                rules=get_rules(RULES), flush_interval=0.05)

    async def scenario():
        refused = service_with(RefusingHistory())
        started = await refused.start()
        await refused.stop()
        stuck, stop = service_with(StuckHistory()), asyncio.Event()
        starting = asyncio.create_task(stuck.start(stop))
        await asyncio.sleep(0.2)
        stop.set()
        stuck_started = await asyncio.wait_for(starting, 5)
        await asyncio.wait_for(stuck.stop(), 5)
        return started, refused.stats, stuck_started

    with caplog.at_level(logging.INFO, logger="phase1.ingest"):
        started, stats, stuck_started = run(scenario())
    store.dispose()
    assert started and stats.connected and stats.backfill_errors == 1
    assert stuck_started is False
    failed = [r.fields for r in caplog.records if r.getMessage() == "catch_up_failed"]
    assert len(failed) == 1 and failed[0]["symbol"] == "SPY"
    assert "\n" not in failed[0]["error"] and "refused" in failed[0]["error"]
    assert SECRET not in caplog.text
    assert "ingest_stopped_while_catching_up" in caplog.text
