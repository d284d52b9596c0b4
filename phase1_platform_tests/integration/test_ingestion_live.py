"""The live service keeps the store's tick identity, quarantines what it cannot take, and
keeps bounded state: regression tests of defects 3, 7, 15 and 17 (live path).

Every scenario compares the bars the service streamed (the latest revision of each
bar it published) with a batch build of the stored ticks (``app.build``'s normalization
of a partition, then ``BarEngine``), byte for byte through the canonical export.
"""

from __future__ import annotations

import asyncio
import logging

import pandas as pd

from phase1_platform.app.build import normalize_partition
from phase1_platform.connectors.base import BaseConnector
from phase1_platform.connectors.mock import MockConnector
from phase1_platform.core import CanonicalExporter
from phase1_platform.core.engine import BarEngine, sort_bars
from phase1_platform.core.partition import Partition
from phase1_platform.core.rules import DEFAULT_RULES
from phase1_platform.core.timeframes import DEFAULT_TIMEFRAMES
from phase1_platform.ingestion.broadcast import BarBroadcaster
from phase1_platform.ingestion.service import IngestionService
from phase1_platform.storage import QuarantineRepository, Store

from ..support.clock import run

TIMEFRAMES = ",".join(DEFAULT_TIMEFRAMES)


class Recorder(BarBroadcaster):
    """A broadcaster that keeps what the service publishes (no server)."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[pd.DataFrame] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    @property
    def url(self) -> str:
        return "recorder://"

    def publish(self, bars: pd.DataFrame) -> int:
        self.published.append(bars.copy())
        return super().publish(bars)  # counts revisions; no client to queue for

    def latest(self) -> pd.DataFrame:
        """The latest revision of every bar published, in canonical order."""
        if not self.published:
            return pd.DataFrame()
        allbars = pd.concat(self.published, ignore_index=True)
        last = allbars.drop_duplicates(["symbol", "timeframe", "ts"], keep="last")
        return sort_bars(last)


class FrameFeed(BaseConnector):
    """A live connector that delivers whatever frames a test hands it (``deliver``)."""

    name = "feed"

    async def connect(self, stop: asyncio.Event | None = None) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()

    async def deliver(self, frame) -> None:
        await self._emit(frame)


def batch_bytes(store: Store, date: str, symbol: str) -> bytes:
    part = Partition(date, symbol)
    ticks = normalize_partition(store.ticks.read(part), part).ticks
    return CanonicalExporter(BarEngine(DEFAULT_RULES).build(ticks, TIMEFRAMES)).to_bytes()


def streamed_bytes(rec: Recorder, date: str, symbol: str) -> bytes:
    part = Partition(date, symbol)
    bars = rec.latest()
    mine = bars[(bars["symbol"] == symbol) & (bars["ts"] >= part.start_ns)
                & (bars["ts"] < part.end_ns)]
    return CanonicalExporter(mine.reset_index(drop=True)).to_bytes()


async def started(connector, store, symbols, **kw) -> tuple[IngestionService, Recorder]:
    rec = Recorder()
    svc = IngestionService(connector, store, symbols, broadcaster=rec, timeframes=TIMEFRAMES,
                           flush_interval=3600, **kw)
    assert await svc.start()
    return svc, rec


async def fed(store, symbols, *batches: list[dict]):
    """(stats, recorder) of a service on a mock feed that got each batch of ticks in turn,
    flushed after each, then stopped."""
    mock = MockConnector()
    svc, rec = await started(mock, store, symbols)
    for batch in batches:
        await mock.inject_ticks(batch)
        await svc.flush()
    return await svc.stop(), rec


def tick(ts: str, price: float, size: float = 100, trade_id: str = "", symbol: str = "AAPL",
         **extra) -> dict:
    return {"timestamp": ts, "symbol": symbol, "price": price, "size": size,
            "trade_id": trade_id, **extra}


# ------------------------------------------------------------ rule set of each symbol
def test_each_symbol_streams_with_its_rule_set_unless_overridden(tmp_path, monkeypatch):
    sources = tmp_path / "sources.toml"
    sources.write_text('[symbols.AAPL]\nrule_set = "lean-future"\n')
    monkeypatch.setenv("PHASE1_SOURCES", str(sources))
    store = Store.from_url(f"sqlite:///{tmp_path / 'rules.sqlite'}")
    svc = IngestionService(MockConnector(), store, ["SPY", "AAPL", "MSFT"])
    assert {s: svc.aggregator.rule_set(s) for s in ("SPY", "AAPL", "MSFT")} == {
        "SPY": "lean-equity", "AAPL": "lean-future", "MSFT": "default"}
    assert sorted(svc.aggregator.aggregators) == ["default", "lean-equity", "lean-future"]
    forced = IngestionService(MockConnector(), store, ["SPY", "AAPL"], rules=DEFAULT_RULES)
    assert {forced.aggregator.rule_set(s) for s in ("SPY", "AAPL")} == {"default"}

    # zero-size prints set prices under lean-future only
    _, rec = run(fed(store, ["AAPL", "MSFT"],
                     [tick("2013-10-07T14:00:01Z", 100.0, size=0, symbol=s)
                      for s in ("AAPL", "MSFT")]))
    assert set(rec.latest()["symbol"]) == {"AAPL"}
    store.dispose()


# ------------------------------------------------------------------ defect 15: identity
def test_a_trade_id_reused_on_another_day_lands_and_streams(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path / 'reuse.sqlite'}")

    stats, rec = run(fed(store, ["AAPL"],
                         [tick("2013-10-07T14:00:01Z", 100.0, trade_id="42"),
                          tick("2013-10-07T14:00:02Z", 100.5, trade_id="43")],
                         # the vendor reuses the ids the next day: other trades
                         [tick("2013-10-08T14:00:01Z", 101.0, trade_id="42"),
                          tick("2013-10-08T14:00:03Z", 101.5, trade_id="43")]))
    assert stats.landed == 4 and stats.duplicates == 0
    for date in ("2013-10-07", "2013-10-08"):
        assert len(store.ticks.read(Partition(date, "AAPL"))) == 2
        assert streamed_bytes(rec, date, "AAPL") == batch_bytes(store, date, "AAPL")
        assert streamed_bytes(rec, date, "AAPL").count(b"\n") == 1 + len(DEFAULT_TIMEFRAMES)
    store.dispose()


# -------------------------------------------------------- defect 3: conflicting duplicate
def test_same_identity_with_other_content_is_quarantined_as_conflicting(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path / 'conflict.sqlite'}")

    stats, rec = run(fed(store, ["AAPL"],
                         [tick("2013-10-07T14:00:01Z", 100.0, trade_id="7"),
                          tick("2013-10-07T14:00:05Z", 100.2, trade_id="8")],
                         [tick("2013-10-07T14:00:01Z", 99.0, trade_id="7"),  # another price
                          tick("2013-10-07T14:00:09Z", 100.4, trade_id="9"),
                          tick("2013-10-07T14:00:09Z", 100.4, size=5, trade_id="9")],  # in a batch
                         [tick("2013-10-07T14:00:01Z", 100.0, trade_id="7")]))  # resent
    stored = store.ticks.read(Partition("2013-10-07", "AAPL"))
    assert stored["trade_id"].tolist() == ["7", "8", "9"]
    assert stored["price"].tolist() == [100.0, 100.2, 100.4]  # the first arrivals stay
    assert stored["size"].tolist() == [100.0, 100.0, 100.0]
    q = QuarantineRepository(store).read("2013-10-07|AAPL")
    assert sorted(q["reason"]) == ["conflicting duplicate", "conflicting duplicate"]
    assert any("price=99.0" in r for r in q["raw"]) and any("size=5.0" in r for r in q["raw"])
    assert stats.landed == 3 and stats.duplicates == 1 and stats.quarantined == 2
    assert streamed_bytes(rec, "2013-10-07", "AAPL") == batch_bytes(store, "2013-10-07", "AAPL")
    store.dispose()


# ----------------------------------------------------- defect 7: whatever is delivered
def test_malformed_frames_are_quarantined_and_the_service_goes_on(tmp_path, caplog):
    store = Store.from_url(f"sqlite:///{tmp_path / 'bad.sqlite'}")
    good = pd.DataFrame([tick("2013-10-07T14:00:01Z", 100.0, trade_id="1")])

    async def scenario():
        feed = FrameFeed()
        svc, rec = await started(feed, store, ["AAPL"])
        stop = asyncio.Event()
        driver = asyncio.create_task(feed.run(stop))
        await feed.deliver(pd.DataFrame({"timestamp": ["2013-10-07T14:00:02Z"],
                                         "symbol": ["AAPL"], "size": [1.0]}))  # no price
        await feed.deliver(pd.DataFrame({
            "timestamp": ["2013-10-07T14:00:03Z"] * 4 + [1381154400],
            "symbol": ["AAPL", "AAPL", {"s": "AAPL"}, "AAPL", "AAPL"],
            "price": [[100.0], 100.0, 100.0, 100.0, 100.0],
            "size": [1.0, True, 1.0, 1.0, 1.0],
            "trade_id": ["a", "b", "c", "d", "e"],
            "source_row": [0, 1, 2, "x", 4]}, dtype=object))
        await feed.deliver({"not": "a frame"})
        await svc.flush()
        caplog.set_level(logging.WARNING, logger="phase1.ingest")
        with caplog.at_level(logging.WARNING, logger="phase1.ingest"):
            real = svc.batches.prepare
            svc.batches.prepare = lambda *a: 1 / 0  # a bug while preparing one batch
            await feed.deliver(good.assign(trade_id="2"))
            await svc.flush()
            svc.batches.prepare = real
        await feed.deliver(good)
        await svc.flush()
        alive = not driver.done()
        stop.set()
        await driver
        return await svc.stop(), alive

    stats, alive = run(scenario())
    assert alive
    assert store.ticks.read(Partition("2013-10-07", "AAPL"))["trade_id"].tolist() \
        == ["1"]
    day = QuarantineRepository(store).read("2013-10-07|AAPL")
    service = QuarantineRepository(store).read("ingest|feed")
    reasons = sorted([*day["reason"], *service["reason"]])
    assert reasons == sorted([
        "missing price", "price is not a number", "size is not a number",
        "symbol is not text", "source_row is not an integer", "unparseable timestamp",
        "delivery is not a tick frame", "batch preparation failed (ZeroDivisionError)"])
    assert "missing price" in set(day["reason"])  # rows with a date and symbol: their day
    assert stats.batch_errors == 1 and stats.quarantined == len(reasons)
    failed = [r for r in caplog.records if r.getMessage() == "batch preparation failed"]
    assert len(failed) == 1 and failed[0].exc_info is not None
    said = [r.fields for r in caplog.records if r.getMessage() == "rows_quarantined"]
    assert sum(f["rows"] for f in said) == len(reasons) and len(said) == 2  # one per batch
    store.dispose()


# ------------------------------------------------------ defect 17: bounded live state
def test_three_days_keep_state_bounded_and_stream_every_day_like_the_batch(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path / 'days.sqlite'}")
    days = ["2013-10-07", "2013-10-08", "2013-10-09"]

    def day_ticks(day: str, n: int = 240) -> list[dict]:
        base = pd.Timestamp(f"{day} 09:30", tz="America/New_York")
        return [tick((base + pd.Timedelta(seconds=97 * i)).isoformat(), 100 + (i % 17) / 10,
                     size=1 + i % 5, trade_id=str(i)) for i in range(n)]

    async def scenario():
        mock = MockConnector()
        svc, rec = await started(mock, store, ["AAPL"])
        sizes = []
        for i, day in enumerate(days):
            rows = day_ticks(day)
            for k in range(0, len(rows), 60):
                await mock.inject_ticks(rows[k:k + 60])
                await svc.flush()
            if i == 2:  # late ticks: of the current session and of the previous one
                for late_day in (days[2], days[1]):
                    await mock.inject_ticks([tick(f"{late_day}T13:30:00.5Z", 50.0,
                                                  trade_id="late")])
                    await svc.flush()
                    restated = rec.published[-1]
                    assert len(restated) == len(DEFAULT_TIMEFRAMES)
                    assert (restated["low"] == 50.0).all()
            sizes.append(svc.aggregator.state_size())
        # a tick of a date the service no longer streams: landed, not streamed
        await mock.inject_ticks([tick(f"{days[0]}T15:00:00.5Z", 1.0, trade_id="old")])
        await svc.flush()
        return await svc.stop(), rec, sizes, svc

    stats, rec, sizes, svc = run(scenario())
    n = len(day_ticks(days[0]))
    minutes = [len({pd.Timestamp(r["timestamp"]).floor("min") for r in day_ticks(d)})
               for d in days]
    assert sizes[0] == {"symbols": 1, "minutes": minutes[0], "trade_ids": n}
    assert sizes[1] == {"symbols": 1, "minutes": minutes[0] + minutes[1], "trade_ids": 2 * n}
    # day 3 evicted day 1; day 2 and day 3 each got a late tick
    assert sizes[2] == {"symbols": 1, "minutes": minutes[1] + minutes[2],
                        "trade_ids": 2 * n + 2}
    assert svc.aggregator.expired == 1
    # the broadcast keeps revision counts of the bars of the streamed dates only
    per_day = [len(BarEngine().build(normalize_partition(
        store.ticks.read(Partition(d, "AAPL")), Partition(d, "AAPL")).ticks,
        TIMEFRAMES)) for d in days]
    assert rec.tracked_bars == per_day[1] + per_day[2]
    assert stats.landed == 3 * n + 3
    assert sum(len(d) for d in svc.batches._seeded.values()) <= 2
    for day in days[1:]:  # what subscribers hold equals the batch build of each day
        assert streamed_bytes(rec, day, "AAPL") == batch_bytes(store, day, "AAPL")
    # the first day as streamed equals its batch build without the tick that came too late
    ticks = store.ticks.read(Partition(days[0], "AAPL"))
    assert "old" in set(ticks["trade_id"])
    kept = ticks[ticks["trade_id"] != "old"]
    part = Partition(days[0], "AAPL")
    want = BarEngine().build(normalize_partition(kept, part).ticks, TIMEFRAMES)
    assert streamed_bytes(rec, days[0], "AAPL") == CanonicalExporter(want).to_bytes()
    store.dispose()


def test_alpaca_serving_malformed_trades_never_stops_the_service(tmp_path):
    """Defect 7 end to end: Alpaca's latest trades hold malformed ones; the service lands
    the good trade, keeps the bad ones in quarantine with their reasons, polls on."""
    from .test_alpaca import GOOD, RawAlpaca, make_connector

    store = Store.from_url(f"sqlite:///{tmp_path / 'alpaca.sqlite'}")
    latest = {"trades": {"AAPL": GOOD | {"i": 42}, "MSFT": "not a trade",
                         "IBM": GOOD | {"t": None}, "SPY": GOOD | {"p": [480.5]}}}

    async def scenario(fake):
        conn = make_connector(fake, poll_interval=0.01)
        svc = IngestionService(conn, store, ["AAPL", "MSFT", "IBM", "SPY"],
                               historical=conn, flush_interval=0.05)
        assert await svc.start()
        stop = asyncio.Event()
        driver = asyncio.create_task(conn.run(stop))
        for _ in range(1000):
            await asyncio.sleep(0.02)
            if svc.stats.landed >= 1 and svc.stats.quarantined >= 3:
                break
        polls = len(fake.requests)
        await asyncio.sleep(0.3)
        alive = not driver.done() and len(fake.requests) > polls
        stop.set()
        await driver
        return await svc.stop(), alive

    with RawAlpaca([], latest) as fake:
        stats, alive = run(scenario(fake))
    assert alive
    stored = store.ticks.read(Partition("2013-10-07", "AAPL"))
    assert stored["trade_id"].tolist() == ["Q-C-42"] and stats.landed == 1
    reasons = sorted(QuarantineRepository(store).read("ingest|alpaca")["reason"])
    assert reasons == sorted(["trade is not an object", "trade t is missing",
                              "trade p is not a number"])
    assert stats.quarantined == 3
    store.dispose()
