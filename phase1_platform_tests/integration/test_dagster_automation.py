"""Sensors and schedules: watermark-driven micro-batches, symbol registration, daily backfill,
weekly reconciliation.

The live path end to end: the real ingestion service lands the AAPL fixture ticks in
micro-batches, ``live_ticks_sensor`` is evaluated after each (``build_sensor_context``)
and its run request is executed (``live_bars``); the partition's export after every run
equals a full recompute of what has landed so far, and after the last one the bytes of
``phase1 replay`` of the whole file.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest

from phase1_platform.app.replay import replay
from phase1_platform.connectors.mock import MockConnector
from phase1_platform.core.calendar import trading_day_window
from phase1_platform.core.engine import BarEngine
from phase1_platform.core.export import CanonicalExporter
from phase1_platform.core.partition import Partition
from phase1_platform.definitions import defs
from phase1_platform.defs.jobs import LIVE_RUN_CONFIG
from phase1_platform.defs.resources import StoreResource
from phase1_platform.defs.schedules import daily_backfill, week_sessions, weekly_reconciliation
from phase1_platform.defs.sensors import (
    Watermark,
    live_ticks_sensor,
    pending_partitions,
    plan_live_runs,
    symbol_registry_sensor,
)
from phase1_platform.ingestion.service import IngestionService
from phase1_platform.readers import read_ticks
from phase1_platform.storage import Store, WatermarkRepository
from phase1_platform_tests.conftest import FIXTURES
from phase1_platform_tests.support.workdir import offline_workdir

NY = ZoneInfo("America/New_York")
AAPL_CSV = FIXTURES / "2013-10-07" / "AAPL.csv"
DAY = "2013-10-07"
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@pytest.fixture
def env(tmp_path, monkeypatch):
    url = offline_workdir(tmp_path, monkeypatch)
    with dg.instance_for_test() as instance:
        yield tmp_path, url, instance


def sensor_context(instance, cursor=None):
    return dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                   resources={"store": StoreResource()})


def evaluate(instance, cursor=None):
    with sensor_context(instance, cursor) as ctx:
        result = live_ticks_sensor(ctx)
        return result, ctx.cursor


def run_requests(result) -> list[dg.RunRequest]:
    if isinstance(result, dg.SensorResult):
        return list(result.run_requests or [])
    return []


# ---------------------------------------------------------------------------- sensors
def test_new_watermark_requests_a_run_same_watermark_none_cursor_advances(env):
    _, url, instance = env
    store = Store.from_url(url)
    marks = WatermarkRepository(store)
    t1 = trading_day_window(DAY)[0] + 14 * 3600 * 10**9  # 10:00 New York
    marks.advance("finnhub:SPY:2013-10-07", "SPY", t1)

    result, cursor = evaluate(instance)
    (req,) = run_requests(result)
    assert req.partition_key == "2013-10-07|SPY"
    assert req.run_key == f"live|2013-10-07|SPY|{t1}"
    assert req.job_name in (None, "live_bars")
    # the unknown symbol is registered in the same evaluation
    (dyn,) = result.dynamic_partitions_requests
    assert dyn.partitions_def_name == "symbols" and list(dyn.partition_keys) == ["SPY"]
    assert json.loads(cursor) == {"finnhub:SPY:2013-10-07|SPY": t1}

    instance.add_dynamic_partitions("symbols", ["SPY"])  # what the daemon does with `dyn`
    same, cursor2 = evaluate(instance, cursor)
    assert isinstance(same, dg.SkipReason) and "no watermark moved" in same.skip_message
    assert cursor2 == cursor

    marks.advance("finnhub:SPY:2013-10-07", "SPY", t1 + 5 * 10**9)
    marks.advance("finnhub:MSFT:2013-10-07", "MSFT", t1)
    result, cursor3 = evaluate(instance, cursor2)
    reqs = {r.partition_key: r for r in run_requests(result)}
    assert set(reqs) == {"2013-10-07|SPY", "2013-10-07|MSFT"}
    assert reqs["2013-10-07|SPY"].run_key == f"live|2013-10-07|SPY|{t1 + 5 * 10**9}"
    assert [list(d.partition_keys) for d in result.dynamic_partitions_requests] == [["MSFT"]]
    assert json.loads(cursor3)["finnhub:SPY:2013-10-07|SPY"] == t1 + 5 * 10**9
    store.dispose()


def test_busy_partition_waits_and_weekend_ticks_are_skipped():
    t = trading_day_window(DAY)[0] + 15 * 3600 * 10**9
    marks = [Watermark("s:SPY", "SPY", t), Watermark("s:QQQ", "QQQ", t)]
    reqs, new, cursor, notes = plan_live_runs(marks, {}, {"SPY", "QQQ"}, busy={"2013-10-07|SPY"})
    assert [r.partition_key for r in reqs] == ["2013-10-07|QQQ"]
    assert "s:SPY|SPY" not in cursor and cursor["s:QQQ|QQQ"] == t  # SPY is asked again later
    assert any("still queued or running" in n for n in notes) and new == []
    saturday = trading_day_window("2013-10-12")[0] + 15 * 3600 * 10**9
    reqs, _, cursor, notes = plan_live_runs([Watermark("s:SPY", "SPY", saturday)], {}, set(),
                                            set())
    assert reqs == [] and cursor == {"s:SPY|SPY": saturday}
    assert "not a trading session" in notes[0]


def test_pending_landings_of_live_symbols_request_runs_for_late_ticks():
    hour = 3600 * 10**9
    t = trading_day_window(DAY)[0] + 15 * hour
    marks = [Watermark("s:SPY", "SPY", t)]
    spans = pd.DataFrame({"id": [3, 7, 9, 11], "symbol": ["SPY", "SPY", "QQQ", "SPY"],
                          "lo_ts": [t - 2 * hour, t - hour, t, t - 40 * 24 * hour],
                          "hi_ts": [t - 2 * hour, t - hour, t, t - 40 * 24 * hour]})
    # QQQ has no watermark (a backfill landed it, not the live service); SPY's landing of
    # 40 days ago is beyond the horizon
    assert pending_partitions(spans, marks) == {"2013-10-07|SPY": 7}
    # the watermark did not move (cursor at it): the pending landing asks for the run
    reqs, _, _, _ = plan_live_runs(marks, {"s:SPY|SPY": t}, {"SPY"}, set(),
                                   pending_partitions(spans, marks))
    (req,) = reqs
    assert req.run_key == f"live|2013-10-07|SPY|{t}|7" and req.run_config == LIVE_RUN_CONFIG
    reqs, _, _, notes = plan_live_runs(marks, {"s:SPY|SPY": t}, {"SPY"}, {"2013-10-07|SPY"},
                                       {"2013-10-07|SPY": 7})
    assert reqs == [] and "still queued or running" in notes[0]
    # a landing from Monday evening to Tuesday morning touches both days
    overnight = pd.DataFrame({"id": [5], "symbol": ["SPY"], "lo_ts": [t + 4 * hour],
                              "hi_ts": [t + 20 * hour]})
    assert pending_partitions(overnight, marks) == {"2013-10-07|SPY": 5,
                                                    "2013-10-08|SPY": 5}


def test_symbol_registry_registers_symbols_of_the_store(env):
    _, url, instance = env
    store = Store.from_url(url)
    raw = read_ticks(AAPL_CSV)
    from phase1_platform.core.normalizer import TickNormalizer

    store.ticks.land(TickNormalizer(symbols=["AAPL"]).normalize(raw).ticks)
    WatermarkRepository(store).advance("finnhub:MSFT:2013-10-07", "MSFT", 1)
    store.dispose()
    instance.add_dynamic_partitions("symbols", ["AAPL"])
    with sensor_context(instance) as ctx:
        result = symbol_registry_sensor(ctx)
    (req,) = result.dynamic_partitions_requests
    assert list(req.partition_keys) == ["MSFT"]
    instance.add_dynamic_partitions("symbols", ["MSFT"])
    with sensor_context(instance) as ctx:
        again = symbol_registry_sensor(ctx)
    assert isinstance(again, dg.SkipReason)


def test_micro_batches_through_sensor_runs_equal_a_full_recompute(env):
    """Ingestion service lands micro-batches; after each, sensor -> live_bars run."""
    tmp, url, instance = env
    start, end = trading_day_window(DAY)
    expected = replay([AAPL_CSV], symbols=["AAPL"], window=(start, end))
    raw = read_ticks(AAPL_CSV).drop(columns=["source", "source_row"], errors="ignore")
    cuts = [0, 37, 38, 100, 101, 250, len(raw)]  # uneven splits, one-row batches included
    batches = [raw.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    late = raw.iloc[[40]].assign(trade_id="9000001", size="77")  # behind the watermark
    later = raw.iloc[[len(raw) - 1]].assign(trade_id="9000002",
                                            timestamp="2013-10-07T19:59:59.5Z")
    export = tmp / "exports" / DAY / "AAPL.csv"
    job = defs.resolve_job_def("live_bars")

    async def scenario():
        store = Store.from_url(url)
        conn = MockConnector()
        svc = IngestionService(conn, store, ["AAPL"], flush_interval=3600)
        await svc.start()
        cursor, run_keys, exports, recomputes = None, [], {}, []

        async def land_and_sense(frame):
            nonlocal cursor
            await conn.inject_ticks(frame)
            await svc.flush()
            result, cursor = evaluate(instance, cursor)
            for dyn in getattr(result, "dynamic_partitions_requests", None) or []:
                instance.add_dynamic_partitions(dyn.partitions_def_name, dyn.partition_keys)
            requests = run_requests(result)
            for req in requests:
                run_keys.append(req.run_key)
                out = job.execute_in_process(partition_key=req.partition_key,
                                             instance=instance, tags=req.tags,
                                             run_config={**req.run_config, **QUIET})
                assert out.success
                assert all(e.passed for e in out.get_asset_check_evaluations())
                (mat,) = out.asset_materializations_for_node("normalized_ticks")
                recomputes.append((mat.metadata["recompute"].value,
                                   mat.metadata["ticks_read"].value,
                                   mat.metadata["ticks"].value))
                # the partition's export == a full recompute of everything landed so far
                landed = store.ticks.read(Partition(DAY, "AAPL"))
                full = BarEngine().build(landed, "1m,5m,15m,1h,1d")
                assert export.read_bytes() == CanonicalExporter(full).to_bytes()
                nothing, cursor = evaluate(instance, cursor)  # same watermark: no run
                assert run_requests(nothing) == []
            return requests

        for batch in batches:
            assert len(await land_and_sense(batch)) == 1
        exports["all"] = export.read_bytes()
        # a late tick lands behind the watermark: the watermark does not move, its pending
        # landing requests the run (rebuilding from the late tick's hour) ...
        (req,) = await land_and_sense(late)
        wm = req.tags["phase1/watermark_ns"]
        assert re.fullmatch(rf"live\|2013-10-07\|AAPL\|{wm}\|\d+", req.run_key), req.run_key
        # ... and the next micro-batch's run as well
        assert len(await land_and_sense(later)) == 1
        await svc.stop()
        landed = store.ticks.read(Partition(DAY, "AAPL"))
        store.dispose()
        return run_keys, exports, landed, recomputes

    run_keys, exports, landed, recomputes = asyncio.run(scenario())
    assert len(set(run_keys)) == len(run_keys) == len(batches) + 2
    # the service stored the bars as the ticks landed, so even the first run verifies
    # incrementally (its check live_equals_batch passed, above); every later one reads only
    # the ticks from the first new tick's hour, fewer than the partition holds
    assert recomputes[0][0].startswith("incremental from "), recomputes[0]
    for text, read, total in recomputes[1:]:
        assert text.startswith("incremental from ") and read < total, (text, read, total)
    late_hour = pd.Timestamp(late["timestamp"].iloc[0]).tz_convert("UTC").strftime("%H:00")
    assert recomputes[-2][0].startswith(f"incremental from {late_hour} UTC")
    assert exports["all"] == CanonicalExporter(expected.bars).to_bytes()  # == phase1 replay
    assert {"9000001", "9000002"} <= set(landed["trade_id"])
    assert len(landed) == len(expected.normalized.ticks) + 2


# -------------------------------------------------------------------------- schedules
def test_daily_backfill_requests_every_registered_symbol_on_trading_days(env):
    _, _, instance = env
    instance.add_dynamic_partitions("symbols", ["SPY", "AAPL", "MSFT"])
    ctx = dg.build_schedule_context(instance=instance,
                                    scheduled_execution_time=datetime(2013, 10, 7, 16, 30,
                                                                      tzinfo=NY))
    reqs = daily_backfill(ctx)
    assert sorted(r.partition_key for r in reqs) == [
        "2013-10-07|AAPL", "2013-10-07|MSFT", "2013-10-07|SPY"]
    assert all(r.run_key == f"daily|{r.partition_key}" for r in reqs)
    for day in (datetime(2013, 12, 25, 16, 30, tzinfo=NY),  # Christmas, a Wednesday
                datetime(2013, 10, 5, 16, 30, tzinfo=NY)):  # a Saturday
        skip = daily_backfill(dg.build_schedule_context(instance=instance,
                                                        scheduled_execution_time=day))
        assert isinstance(skip, dg.SkipReason) and "not an XNYS trading session" in \
            skip.skip_message


def test_daily_backfill_without_symbols_says_how_to_add_them(env):
    _, _, instance = env
    ctx = dg.build_schedule_context(instance=instance,
                                    scheduled_execution_time=datetime(2013, 10, 7, 16, 30,
                                                                      tzinfo=NY))
    skip = daily_backfill(ctx)
    assert isinstance(skip, dg.SkipReason) and "phase1 symbols add" in skip.skip_message


def test_weekly_reconciliation_runs_parity_checks_over_the_week(env):
    tmp, _, instance = env
    instance.add_dynamic_partitions("symbols", ["SPY"])
    assert week_sessions("2013-10-12") == [f"2013-10-{d:02d}" for d in (7, 8, 9, 10, 11)]
    assert week_sessions("2013-11-30") == ["2013-11-25", "2013-11-26", "2013-11-27",
                                           "2013-11-29"]  # Thanksgiving
    ctx = dg.build_schedule_context(instance=instance,
                                    scheduled_execution_time=datetime(2013, 10, 12, 9, 0,
                                                                      tzinfo=NY))
    (req,) = weekly_reconciliation(ctx)
    assert req.tags["dagster/asset_partition_range_start"] == "2013-10-07|SPY"
    assert req.tags["dagster/asset_partition_range_end"] == "2013-10-11|SPY"

    # the fixture SPY day: materialize it, then reconcile it against LEAN's bars
    assert defs.resolve_job_def("bars_pipeline").execute_in_process(
        partition_key="2013-10-07|SPY", instance=instance, run_config=QUIET).success
    tags = {**req.tags, "dagster/asset_partition_range_end": "2013-10-07|SPY"}
    out = defs.resolve_job_def("reconcile_vendor_bars").execute_in_process(
        instance=instance, tags=tags, run_config=QUIET)
    assert out.success
    evals = {e.check_name: e for e in out.get_asset_check_evaluations()}
    assert set(evals) == {"parity_1m", "parity_5m", "parity_15m", "parity_1h", "parity_1d"}
    assert all(e.passed for e in evals.values())
    assert evals["parity_1m"].metadata["compared"].value is True
    mats = [e.asset_key.path[-1] for e in out.get_asset_materialization_events()]
    assert mats == ["reference_bars"]  # the stored bars are compared, not rebuilt


def test_definitions_are_loadable_with_sensors_schedules_and_jobs():
    dg.Definitions.validate_loadable(defs)
    assert {s.name for s in defs.sensors} == {"live_ticks_sensor", "symbol_registry_sensor"}
    assert {s.name for s in defs.schedules} == {"daily_backfill", "weekly_reconciliation"}
    for name in ("bars_pipeline", "live_bars", "reconcile_vendor_bars"):
        assert defs.resolve_job_def(name) is not None
    # parity and quality per bar timeframe, live_equals_batch per bar timeframe, rejected_ratio
    assert len(list(defs.resolve_asset_graph().asset_check_keys)) == 16
