"""Sensors never migrate the store; symbol keys are validated wherever they enter.

- A sensor tick against a store that is missing, empty or behind the head revision
  skips with one line naming ``phase1 db upgrade`` and leaves the database as it was
  (no file created, no table created, no revision moved).
- An invalid key in the ``symbols`` dynamic partitions (the Dagster UI and API accept
  anything, e.g. ``../../../outside/x``) or an invalid symbol in the store never becomes
  a registration, a partition key or a run; ``phase1 symbols remove`` deletes it and
  ``phase1 symbols add`` refuses it.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from phase1_platform.cli import main as phase1
from phase1_platform.core.calendar import trading_day_window
from phase1_platform.defs.partitions import partition_key, split_key
from phase1_platform.defs.resources import StoreResource
from phase1_platform.defs.schedules import daily_backfill, weekly_reconciliation
from phase1_platform.defs.sensors import live_ticks_sensor, symbol_registry_sensor
from phase1_platform.storage import Store, WatermarkRepository

BAD = "../../../outside/x"
DAY = "2013-10-07"
NY = ZoneInfo("America/New_York")


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as inst:
        yield inst


def _tick(sensor, instance, url: str):
    with dg.build_sensor_context(instance=instance,
                                 resources={"store": StoreResource(database_url=url)}) as ctx:
        return sensor(ctx)


def _tables(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


# ------------------------------------------------------------ sensors never migrate
@pytest.mark.parametrize("sensor", [live_ticks_sensor, symbol_registry_sensor],
                         ids=["live", "registry"])
def test_sensor_tick_on_an_unmigrated_sqlite_file_skips_and_migrates_nothing(
        tmp_path, instance, sensor):
    path = tmp_path / "empty.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE unrelated (x INTEGER)")  # a database, not our schema
    result = _tick(sensor, instance, f"sqlite:///{path}")
    assert isinstance(result, dg.SkipReason), result
    assert "phase1 db upgrade" in result.skip_message and "\n" not in result.skip_message
    assert "has no schema" in result.skip_message
    assert _tables(path) == {"unrelated"}  # no alembic_version, no ticks, no watermarks


@pytest.mark.parametrize("sensor", [live_ticks_sensor, symbol_registry_sensor],
                         ids=["live", "registry"])
def test_sensor_tick_on_a_missing_sqlite_file_skips_and_creates_nothing(
        tmp_path, instance, sensor):
    path = tmp_path / "absent.sqlite"
    result = _tick(sensor, instance, f"sqlite:///{path}")
    assert isinstance(result, dg.SkipReason), result
    assert "does not exist" in result.skip_message
    assert "phase1 db upgrade" in result.skip_message
    assert not path.exists() and list(tmp_path.glob("absent.sqlite*")) == []


def test_sensor_tick_on_a_store_behind_head_skips_and_leaves_its_revision(tmp_path, instance):
    path = tmp_path / "old.sqlite"
    old = Store.from_url(f"sqlite:///{path}", migrate=False)
    old.upgrade("0001_initial")
    old.dispose()
    result = _tick(live_ticks_sensor, instance, f"sqlite:///{path}")
    assert isinstance(result, dg.SkipReason)
    assert "at revision 0001_initial" in result.skip_message
    assert "phase1 db upgrade" in result.skip_message
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("0001_initial",)]
    assert "tick_landings" not in _tables(path)


# ------------------------------------------------------- invalid symbols never enter
def test_invalid_symbols_in_the_instance_and_the_store_are_skipped(tmp_path, instance):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    store = Store.from_url(url)
    t = trading_day_window(DAY)[0] + 14 * 3600 * 10**9
    WatermarkRepository(store).advance("finnhub:SPY", "SPY", t)
    WatermarkRepository(store).advance("rogue", BAD, t)
    store.dispose()
    instance.add_dynamic_partitions("symbols", [BAD])  # what the UI or API lets anyone do

    live = _tick(live_ticks_sensor, instance, url)
    assert [r.partition_key for r in live.run_requests] == [f"{DAY}|SPY"]
    assert [list(d.partition_keys) for d in live.dynamic_partitions_requests] == [["SPY"]]

    registry = _tick(symbol_registry_sensor, instance, url)
    assert [list(d.partition_keys) for d in registry.dynamic_partitions_requests] == [["SPY"]]

    instance.add_dynamic_partitions("symbols", ["SPY"])
    daily = daily_backfill(dg.build_schedule_context(
        instance=instance, scheduled_execution_time=datetime(2013, 10, 7, 16, 30, tzinfo=NY)))
    assert [r.partition_key for r in daily] == [f"{DAY}|SPY"]
    weekly = weekly_reconciliation(dg.build_schedule_context(
        instance=instance, scheduled_execution_time=datetime(2013, 10, 12, 9, 0, tzinfo=NY)))
    assert [r.tags["dagster/asset_partition_range_start"] for r in weekly] == [f"{DAY}|SPY"]


def test_partition_keys_are_made_and_split_only_when_valid():
    assert split_key(f"{DAY}|SPY") == (DAY, "SPY")
    assert partition_key(DAY, "BRK.B") == f"{DAY}|BRK.B"
    for key in (f"{DAY}|{BAD}", f"{DAY}|spy", "2013-10-05|SPY", "SPY"):
        with pytest.raises(ValueError, match="partition key|trading session"):
            split_key(key)
    with pytest.raises(ValueError, match="invalid symbol"):
        partition_key(DAY, BAD)


def test_cli_removes_an_invalid_key_added_through_the_instance_and_refuses_to_add_it(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "cli_home"))
    from phase1_platform.defs.instance import get_instance

    with get_instance() as inst:  # the instance `phase1 symbols` uses
        inst.add_dynamic_partitions("symbols", [BAD, "SPY"])
    assert phase1(["symbols", "list"]) == 0
    out = capsys.readouterr().out
    assert f"'{BAD}' (invalid symbol: remove it with phase1 symbols remove '{BAD}')" in out
    assert phase1(["symbols", "remove", BAD]) == 0
    assert f"removed: '{BAD}'" in capsys.readouterr().out
    with get_instance() as inst:
        assert inst.get_dynamic_partitions("symbols") == ["SPY"]

    assert phase1(["symbols", "add", BAD]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("phase1 symbols: error: invalid symbol") and "\n" not in err
    assert phase1(["symbols", "remove", BAD]) == 2  # gone: not a partition any more
    assert "not a symbol partition" in capsys.readouterr().err
    with get_instance() as inst:
        assert inst.get_dynamic_partitions("symbols") == ["SPY"]
