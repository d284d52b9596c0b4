"""MockConnector: deterministic replay of tick files as a live feed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from phase1_platform.app.replay import replay
from phase1_platform.connectors.base import ConnectorError
from phase1_platform.connectors.mock import MockConnector
from phase1_platform.core import BarEngine, CanonicalExporter, TickNormalizer

from ..support.clock import FakeClock, run

ROOT = Path(__file__).resolve().parents[2]
SPY_ZIP = ROOT / "fixtures/lean/equity/usa/tick/spy/20131007_trade.zip"
TIMEFRAMES = "1m,5m,15m,1h,1d"


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("timestamp,symbol,price,size\n" + "\n".join(rows) + "\n")
    return path


def collect(mock: MockConnector, **kwargs) -> list[pd.DataFrame]:
    frames: list[pd.DataFrame] = []
    mock.register_callback(frames.append)

    async def main():
        await mock.connect()
        n = await mock.replay_ticks(**kwargs)
        await mock.disconnect()
        return n

    n = run(main())
    assert n == sum(len(f) for f in frames)
    return frames


def bars_hash(frames) -> str:
    result = TickNormalizer().normalize(pd.concat(frames, ignore_index=True))
    return CanonicalExporter(BarEngine().build(result.ticks, TIMEFRAMES)).compute_hash()


def test_lean_fixture_replay_in_micro_batches_has_replay_hash():
    if not SPY_ZIP.exists():
        pytest.skip(f"fixture missing: {SPY_ZIP}")
    mock = MockConnector([SPY_ZIP], batch_size=997)
    frames = collect(mock)
    assert len(frames) == -(-mock.rows_loaded // 997)
    assert all(len(f) == 997 for f in frames[:-1])
    reference = CanonicalExporter(replay([SPY_ZIP], TIMEFRAMES).bars).compute_hash()
    assert bars_hash(frames) == reference
    # deterministic: a second replay gives the same batches, row for row
    again = collect(MockConnector([SPY_ZIP], batch_size=997))
    for a, b in zip(frames, again, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_replay_is_in_market_time_whatever_the_file_order(tmp_path):
    rows = [f"2024-03-04T14:30:{s:02d}.000Z,AAPL,{100 + s},1" for s in range(10)]
    ordered = write_csv(tmp_path / "a.csv", rows)
    shuffled = write_csv(tmp_path / "b.csv", rows[5:] + rows[:5])
    f1 = pd.concat(collect(MockConnector([ordered], batch_size=3)), ignore_index=True)
    f2 = pd.concat(collect(MockConnector([shuffled], batch_size=3)), ignore_index=True)
    assert f1["price"].tolist() == f2["price"].tolist() == [str(100 + s) for s in range(10)]
    assert bars_hash([f1]) == bars_hash([f2])


def test_bad_rows_are_delivered_for_the_normalizer_to_quarantine(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [
        "2024-03-04T14:30:00Z,AAPL,100,1",
        "not-a-time,AAPL,100,1",
        "2024-03-04T14:30:01,AAPL,100,1",
        "2024-03-04T14:30:02Z,AAPL,-5,1",
        "2024-03-04T14:30:03Z,AAPL,101,2",
    ])
    frames = collect(MockConnector([path], batch_size=2))
    raw = pd.concat(frames, ignore_index=True)
    assert len(raw) == 5
    assert raw["timestamp"].tolist()[:2] == ["2024-03-04T14:30:00Z", "not-a-time"]  # rides along
    result = TickNormalizer().normalize(raw)
    assert result.rejected_by_reason == {
        "price <= 0 or NaN": 1, "timestamp without zone": 1, "unparseable timestamp": 1}
    assert len(result.ticks) == 2


def test_speed_factor_spaces_batches_in_replay_time(tmp_path):
    path = write_csv(tmp_path / "t.csv", [
        "2024-03-04T14:30:00.000Z,AAPL,100,1",
        "2024-03-04T14:30:00.400Z,AAPL,100,1",
        "2024-03-04T14:30:02.000Z,AAPL,101,1",
        "2024-03-04T14:30:06.000Z,AAPL,102,1",
        "2024-03-04T14:30:06.500Z,MSFT,50,1",
    ])
    clock = FakeClock()
    mock = MockConnector([path], speed=2.0, batch_window="1s", sleep=clock.sleep, clock=clock)
    frames = collect(mock)
    assert [len(f) for f in frames] == [2, 1, 2]  # one batch per second of market time
    assert clock.sleeps == [1.0, 2.0]  # 2 s and 4 s of market time at speed 2
    # speed 0: no waiting at all
    clock2 = FakeClock()
    collect(MockConnector([path], speed=0, sleep=clock2.sleep, clock=clock2))
    assert clock2.sleeps == []


def test_subscription_filters_symbols(tmp_path):
    path = write_csv(tmp_path / "t.csv", [
        "2024-03-04T14:30:00Z,AAPL,100,1", "2024-03-04T14:30:01Z,MSFT,50,1",
        "2024-03-04T14:30:02Z,aapl,101,1",
    ])
    mock = MockConnector([path])
    run(mock.subscribe(["aapl"]))
    raw = pd.concat(collect(mock), ignore_index=True)
    assert raw["price"].tolist() == ["100", "101"]
    assert pd.concat(collect(MockConnector([path]), symbols=["MSFT"]))["symbol"].tolist() == [
        "MSFT"]


def test_inject_ticks_are_delivered_with_their_own_identity(tmp_path):
    mock = MockConnector()
    frames: list[pd.DataFrame] = []
    mock.register_callback(frames.append)

    async def main():
        await mock.inject_tick(timestamp="2024-03-04T14:30:00Z", symbol="AAPL", price=1, size=2)
        await mock.inject_ticks([
            {"timestamp": "2024-03-04T14:30:00Z", "symbol": "AAPL", "price": 1, "size": 2},
            {"timestamp": "2024-03-04T14:30:01Z", "symbol": "AAPL", "price": 0, "size": 2},
        ])
        with pytest.raises(ValueError, match="price"):
            await mock.inject_ticks([{"timestamp": "x", "symbol": "A", "size": 1}])

    run(main())
    raw = pd.concat(frames, ignore_index=True)
    assert raw["source"].eq("mock:inject").all()
    assert raw["source_row"].tolist() == [0, 1, 2]
    result = TickNormalizer().normalize(raw)
    assert len(result.ticks) == 2  # identical prints are two trades, not a duplicate
    assert result.rejected_by_reason == {"price <= 0 or NaN": 1}


def test_historical_ticks_from_loaded_files(tmp_path):
    rows = [f"2024-03-04T14:30:{s:02d}Z,{'AAPL' if s % 2 else 'MSFT'},{100 + s},1"
            for s in range(20)]
    mock = MockConnector([write_csv(tmp_path / "h.csv", rows)], page_size=3)

    async def fetch(symbol, start, end):
        return [p async for p in mock.get_historical_ticks(symbol, pd.Timestamp(start),
                                                           pd.Timestamp(end))]

    pages = run(fetch("AAPL", "2024-03-04T14:30:02Z", "2024-03-04T14:30:15Z"))
    assert [len(p) for p in pages] == [3, 3]
    assert pd.concat(pages)["price"].tolist() == [str(100 + s) for s in range(3, 15, 2)]
    assert run(fetch("AAPL", "2024-03-05T00:00Z", "2024-03-06T00:00Z")) == []
    with pytest.raises(ValueError, match="empty window"):
        run(fetch("AAPL", "2024-03-05T00:00Z", "2024-03-05T00:00Z"))
    with pytest.raises(ValueError, match="zone"):
        run(fetch("AAPL", "2024-03-05T00:00", "2024-03-06T00:00Z"))


def test_latest_trade_of_a_file_history_is_its_newest_row(tmp_path):
    rows = ["2024-03-04T14:30:09Z,AAPL,101,1", "2024-03-04T14:30:02Z,AAPL,100,1",
            "not a time,AAPL,102,1", "2024-03-04T14:31:00Z,MSFT,50,1"]
    mock = MockConnector([write_csv(tmp_path / "h.csv", rows)])
    assert run(mock.latest_trade_time("aapl")) == pd.Timestamp("2024-03-04T14:30:09Z")
    assert run(mock.latest_trade_time("MSFT")) == pd.Timestamp("2024-03-04T14:31:00Z")
    assert run(mock.latest_trade_time("SPY")) is None


def test_no_data_and_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(ConnectorError, match="load_from_csv"):
        run(MockConnector().replay_ticks())
    with pytest.raises(ValueError, match="speed"):
        MockConnector(speed=-1)
    with pytest.raises(ValueError, match="not found"):
        MockConnector([tmp_path / "missing.csv"])


def test_aapl_fixture_micro_batches_match_replay_including_bad_rows():
    src = ROOT / "fixtures/2013-10-07/AAPL.csv"
    if not src.exists():
        pytest.skip(f"fixture missing: {src}")
    frames = collect(MockConnector([src], batch_size=17))
    raw = pd.concat(frames, ignore_index=True)
    result = TickNormalizer().normalize(raw)
    reference = replay([src], TIMEFRAMES)
    assert result.rejected_by_reason == reference.normalized.rejected_by_reason
    assert bars_hash(frames) == CanonicalExporter(reference.bars).compute_hash()


def test_run_ends_promptly_on_stop_during_a_paced_replay(tmp_path):
    # one tick a minute, replayed in real time: the whole replay would take an hour
    rows = [f"2024-03-04T{14 + m // 60:02d}:{m % 60:02d}:00Z,AAPL,{100 + m % 5},1"
            for m in range(60)]
    mock = MockConnector([write_csv(tmp_path / "slow.csv", rows)], speed=1.0,
                         batch_window="1s")
    frames: list[pd.DataFrame] = []
    mock.register_callback(frames.append)

    async def main():
        stop = asyncio.Event()
        await mock.connect(stop)
        task = asyncio.create_task(mock.run(stop))
        while not frames:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5.0)  # not the 59 minutes of market time left
        await mock.disconnect()

    run(main())
    assert sum(len(f) for f in frames) == 1 == mock.rows_delivered
