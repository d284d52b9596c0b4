"""Trade corrections and cancels through Alpaca's data stream (issue 13 item 3).

A local fake (``simulator.alpaca_stream``) speaks the stream's wire format as alpaca-py's
``StockDataStream`` negotiates it (msgpack, nanosecond msgpack timestamps); the production
connector (``AlpacaStreamConnector``, the real SDK, only the URL differs) feeds the live
ingestion service. Real SPY ticks of 2013-10-07 go out as trades, then cancels and
corrections (one emptying a whole minute, a chain correct-then-cancel through the new
id, one changing the conditions), then the same messages again and some that cannot
apply. After each flush:

- the bars the live path stored equal a batch rebuild of the amended tick log
  (``phase1 replay``'s and Dagster's full build) and the bars computed directly from the
  amended ticks, byte for byte;
- the amendments make the partition's verification run again (tick landings) and it
  finds the live bars equal;
- a redelivered cancel or correction changes nothing; one for an unknown trade, a
  cancelled one or with a bad price is quarantined with its reason.

A refused login is one clear error naming the key variables, and the key the fake echoes
back appears neither in it nor in any log line. Store cases run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pandas as pd
import pytest

from phase1_platform.app import tick_log
from phase1_platform.app.amendments import CANCELLED_TRADE, UNKNOWN_TRADE
from phase1_platform.app.build import build_bars, normalize_partition
from phase1_platform.cli import main as cli_main
from phase1_platform.connectors.alpaca import AlpacaStreamConnector
from phase1_platform.connectors.base import ConnectorError
from phase1_platform.core import CanonicalExporter
from phase1_platform.core.amendments import BAD_CORRECTION
from phase1_platform.core.engine import BarEngine
from phase1_platform.core.normalizer import TickNormalizer
from phase1_platform.core.partition import Partition
from phase1_platform.core.rules import get_rules
from phase1_platform.core.timeframes import DEFAULT_TIMEFRAMES
from phase1_platform.ingestion.service import IngestionService
from phase1_platform.readers import read_ticks
from phase1_platform.simulator.alpaca_stream import AlpacaStreamFake, cancel, correction, trade
from phase1_platform.storage import (
    AmendmentRepository,
    BarRepository,
    LandingRepository,
    QuarantineRepository,
    Store,
)

from .test_ingestion import SPY

KEY, SECRET = "PKSTREAMTESTKEY00001", "stream-secret-value-0001"
TIMEFRAMES = ",".join(DEFAULT_TIMEFRAMES)
PART = Partition("2013-10-07", "SPY")
RULES = "lean-equity"
TAPE = "B"
N_TRADES = 4_000



def spy_trades() -> pd.DataFrame:
    """The first SPY ticks as the vendor's trades: id = 1 + row, ns times."""
    raw = read_ticks(SPY).iloc[:N_TRADES].reset_index(drop=True)
    raw["ns"] = raw["timestamp"].astype("datetime64[ns, UTC]").to_numpy(
        "datetime64[ns]").view("int64")
    raw["i"] = range(1, len(raw) + 1)
    return raw


def messages(raw: pd.DataFrame) -> list[dict]:
    return [trade("SPY", r.ns, r.price, int(r.size), r.i, exchange=r.exchange, tape=TAPE,
                  conditions=r.conditions.split()) for r in raw.itertuples()]


def amended_directly(raw: pd.DataFrame, cancelled: list[int],
                     corrected: dict[int, tuple[float, int, str]]) -> bytes:
    """The canonical bars of the trades as amended, computed without the store."""
    ticks = raw[~raw["i"].isin(cancelled)].copy()
    for i, (price, size, conditions) in corrected.items():
        at = ticks["i"] == i
        ticks.loc[at, ["price", "size", "conditions"]] = [price, float(size), conditions]
    frame = pd.DataFrame({"timestamp": ticks["ns"].to_numpy(), "symbol": "SPY",
                          "price": ticks["price"].to_numpy(), "size": ticks["size"].to_numpy(),
                          "exchange": ticks["exchange"].to_numpy(),
                          "conditions": ticks["conditions"].to_numpy(),
                          "trade_id": [f"{x}-{TAPE}-{i}" for x, i in
                                       zip(ticks["exchange"], ticks["i"], strict=True)]})
    norm = TickNormalizer().normalize(frame).ticks
    return CanonicalExporter(BarEngine(get_rules(RULES)).build(norm, TIMEFRAMES)).to_bytes()


def stored_export(store: Store) -> bytes:
    return CanonicalExporter(BarRepository(store).read_partition(PART)).to_bytes()


def rebuilt_export(store: Store) -> bytes:
    """A batch rebuild of the amended tick log (what ``phase1 replay`` and a full
    Dagster run build)."""
    ticks = normalize_partition(tick_log.read_partition(store, PART), PART).ticks
    return CanonicalExporter(BarEngine(get_rules(RULES)).build(ticks, TIMEFRAMES)).to_bytes()


async def until(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


def pick_amendments(raw: pd.DataFrame):
    """(trades to cancel, corrections {i: (price, size, conditions)}, messages): a whole
    minute's trades, the day's high so far, a correction of price and size, one of the
    conditions, and a chain: correct (new id) then cancel through the new id."""
    minute = raw["ns"] // 60_000_000_000
    counts = minute.value_counts()
    lonely = int(counts.idxmin())  # a minute emptied by cancels
    whole = raw.loc[minute == lonely, "i"].tolist()
    top = int(raw.loc[raw["price"].idxmax(), "i"])
    regular = raw.index[raw["conditions"] == "Regular"]
    fix, cond, chain = (int(raw.loc[regular[k], "i"]) for k in (10, 200, 400))
    row = raw.set_index("i")
    msgs, ns = [], int(raw["ns"].iloc[-1]) + 1_000_000

    def orig(i):
        r = row.loc[i]
        return (i, r.price, int(r.size), r.conditions.split())

    for i in [*whole, top]:
        msgs.append(cancel("SPY", ns, i, row.loc[i, "price"], int(row.loc[i, "size"]),
                           exchange=row.loc[i, "exchange"], tape=TAPE))
    corrected = {fix: (float(row.loc[fix, "price"]) + 0.37, 777, "Regular"),
                 cond: (float(row.loc[cond, "price"]), int(row.loc[cond, "size"]),
                        "OddLot")}
    for i, (p, s, c) in corrected.items():
        msgs.append(correction("SPY", ns, orig(i), (i, p, s, c.split()),
                               exchange=row.loc[i, "exchange"], tape=TAPE))
    new_id = 900_000
    msgs.append(correction("SPY", ns, orig(chain), (new_id, 1.0, 1, ["Regular"]),
                           exchange=row.loc[chain, "exchange"], tape=TAPE))
    msgs.append(cancel("SPY", ns + 1, new_id, 1.0, 1, action="E",
                       exchange=row.loc[chain, "exchange"], tape=TAPE))
    return [*whole, top, chain], corrected, msgs


async def run_stream(store: Store, script):
    """A service fed by the fake through the real SDK; ``script(fake, svc, conn)`` drives
    it. Returns the service's stats."""
    async with AlpacaStreamFake(KEY, SECRET) as fake:
        conn = AlpacaStreamConnector(KEY, SECRET, stream_url=fake.url, polling_fallback=False)
        svc = IngestionService(conn, store, ["SPY"], timeframes=TIMEFRAMES,
                               rules=get_rules(RULES), flush_interval=3600)
        stop = asyncio.Event()
        assert await svc.start(stop)
        driver = asyncio.create_task(conn.run(stop))
        try:
            await asyncio.wait_for(fake.subscribed.wait(), 20)
            await script(fake, svc, conn)
        finally:
            stop.set()
            await driver
            stats = await svc.stop()
    return stats


def test_cancels_and_corrections_restate_live_bars_equal_to_a_rebuild(store):
    raw = spy_trades()
    cancelled, corrected, amendments = pick_amendments(raw)
    expected = amended_directly(raw, cancelled, corrected)

    async def script(fake, svc, conn):
        msgs = messages(raw)
        for k in range(0, len(msgs), 500):  # one frame each
            await fake.publish(*msgs[k:k + 500])
        await until(lambda: conn.stats.trades == len(msgs))
        await svc.flush()
        before = stored_export(store)
        assert before == amended_directly(raw, [], {})
        LandingRepository(store).consume(LandingRepository(store).pending(PART))
        await fake.publish(*amendments)
        await until(lambda: conn.stats.amendments == len(amendments))
        await svc.flush()
        live = stored_export(store)
        assert live != before
        assert live == rebuilt_export(store) == expected
        # the amendments made the partition's verification pending; it finds them equal
        assert len(LandingRepository(store).pending(PART)) == len(amendments)
        verdict = build_bars(store, PART, RULES, incremental=True).verdict
        assert verdict.equal and not verdict.written
        assert stored_export(store) == expected
        # a full rebuild from the store (phase1 replay, Dagster backfill) agrees
        full = build_bars(store, PART, RULES, incremental=False)
        assert CanonicalExporter(full.bars).to_bytes() == expected
        # redelivery: the same messages again do nothing
        recorded = len(AmendmentRepository(store).read("SPY", PART.start_ns, PART.end_ns))
        await fake.publish(*amendments)
        await until(lambda: conn.stats.amendments == 2 * len(amendments))
        await svc.flush()
        assert svc.stats.amendment_duplicates == len(amendments)
        assert len(AmendmentRepository(store).read("SPY", PART.start_ns, PART.end_ns)) \
            == recorded == len(amendments)
        assert stored_export(store) == expected

    stats = asyncio.run(run_stream(store, script))
    assert stats.amendments == len(amendments)
    assert stats.quarantined == 0


def test_amendments_that_cannot_apply_are_quarantined_with_a_reason(store):
    raw = spy_trades().iloc[:300].reset_index(drop=True)
    row = raw.iloc[5]
    ns = int(raw["ns"].iloc[-1]) + 1

    async def script(fake, svc, conn):
        await fake.publish(*messages(raw))
        await until(lambda: conn.stats.trades == len(raw))
        await svc.flush()
        good = cancel("SPY", ns, row.i, row.price, int(row.size), exchange=row.exchange,
                      tape=TAPE)
        bad = [
            cancel("SPY", ns, 123_456, 1.0, 1, exchange=row.exchange, tape=TAPE),  # unknown
            correction("SPY", ns + 1, (row.i, row.price, int(row.size), []),
                       (row.i, 2.0, 5, []), exchange=row.exchange, tape=TAPE),  # cancelled
            correction("SPY", ns + 2, (int(raw.iloc[7].i), 1.0, 1, []),
                       (int(raw.iloc[7].i), -3.0, 5, []), exchange=raw.iloc[7].exchange,
                       tape=TAPE),  # bad price
            {"T": "x", "S": "SPY", "p": 1.0},  # no id, no time
        ]
        await fake.publish(good, *bad)
        await until(lambda: svc.stats.rows_received == len(raw) + 1 + len(bad))
        await svc.flush()

    stats = asyncio.run(run_stream(store, script))
    assert stats.amendments == 1 and stats.quarantined == 4
    q = QuarantineRepository(store).read(PART.key)
    assert sorted(q["reason"]) == sorted([UNKNOWN_TRADE, CANCELLED_TRADE, BAD_CORRECTION])
    assert q["raw"].str.contains('"T": "c"').sum() == 2
    elsewhere = QuarantineRepository(store).read("ingest|alpaca")
    assert list(elsewhere["reason"]) == ["amendment t is missing"]
    assert stored_export(store) == rebuilt_export(store)


def test_refused_login_is_one_clear_error_and_never_shows_the_key(caplog, tmp_path,
                                                                   monkeypatch, capsys):
    wrong = "PKWRONGKEY0000000099"
    caplog.set_level(logging.DEBUG)

    async def main():
        async with AlpacaStreamFake(KEY, SECRET, echo_key=True) as fake:
            conn = AlpacaStreamConnector(wrong, SECRET, stream_url=fake.url,
                                         polling_fallback=False)
            await conn.subscribe(["SPY"])
            with pytest.raises(ConnectorError) as err:
                await conn.connect()
            assert fake.refused >= 1
            return str(err.value), fake.url

    text, _ = asyncio.run(main())
    assert "APCA_API_KEY_ID" in text and "auth failed" in text
    assert wrong not in text and wrong not in caplog.text

    async def cli():  # the same through `phase1 ingest --source alpaca`: exit 2, one line
        async with AlpacaStreamFake(KEY, SECRET, echo_key=True) as fake:
            monkeypatch.setenv("ALPACA_STREAM_URL", fake.url)
            monkeypatch.setenv("APCA_API_KEY_ID", wrong)
            monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
            return await asyncio.to_thread(cli_main, [
                "ingest", "--source", "alpaca", "--symbols", "SPY", "--dagster-report", "off",
                "--database-url", f"sqlite:///{tmp_path / 's.sqlite'}"])

    assert asyncio.run(cli()) == 2
    out = capsys.readouterr()
    lines = [ln for ln in out.err.splitlines() if "error:" in ln and "phase1" in ln]
    assert len(lines) == 1 and "APCA_API_KEY_ID" in lines[0]
    assert wrong not in out.err + out.out + caplog.text
