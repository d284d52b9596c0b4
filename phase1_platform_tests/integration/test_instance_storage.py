"""The event log storages of our instance files (phase1_platform/instance_storage.py).

Dagster's classes with kept connections: every event a run stores is read back the same,
the UI's watcher of a run's events still fires, the kept connections stay bounded, and a
wiped instance keeps working; on SQLite (``dagster.yaml``) and PostgreSQL
(``dagster.postgres.yaml``).
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pytest
import sqlalchemy

from phase1_platform.instance_storage import (
    RUN_SHARDS_KEPT,
    PooledPostgresEventLogStorage,
    PooledPostgresRunStorage,
    PooledSqliteEventLogStorage,
    PooledSqliteRunStorage,
)
from phase1_platform_tests.conftest import ROOT
from phase1_platform_tests.integration.test_dagster_postgres import PG, pg_databases  # noqa: F401


@dg.asset
def upstream() -> int:
    return 1


@dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="downstream")])
def downstream(upstream: int):
    yield dg.Output(upstream + 1, metadata={"value": upstream + 1})
    yield dg.AssetCheckResult(passed=upstream + 1 > 0, check_name="positive")


def _runs(instance, n_runs: int) -> list[str]:
    run_ids = []
    for _ in range(n_runs):
        result = dg.materialize([upstream, downstream], instance=instance)
        assert result.success
        run_ids.append(result.run_id)
    return run_ids


def _assert_events_readable(instance, run_ids: list[str]) -> None:
    for run_id in run_ids:
        records = instance.get_records_for_run(run_id, limit=1000).records
        types = [r.event_log_entry.dagster_event_type for r in records
                 if r.event_log_entry.is_dagster_event]
        assert types.count(dg.DagsterEventType.RUN_START) == 1
        assert types[-1] == dg.DagsterEventType.RUN_SUCCESS
        assert types.count(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED) == 2
        assert types.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 2
        assert types.count(dg.DagsterEventType.ASSET_CHECK_EVALUATION) == 1
    mats = instance.fetch_materializations(dg.AssetKey("downstream"), limit=100).records
    assert [m.run_id for m in mats] == list(reversed(run_ids))
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("downstream"), "positive")])
    assert next(iter(check.values())).run_id == run_ids[-1]


@pytest.fixture
def sqlite_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@contextmanager
def sqlite_connections_opened() -> Iterator[list[str]]:
    """The file of every SQLite connection SQLAlchemy opens meanwhile, in order."""
    opened: list[str] = []

    def count(dbapi_conn, _record):
        opened.append(dbapi_conn.execute("PRAGMA database_list").fetchone()[2])

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", count)
    try:
        yield opened
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "connect", count)


def test_sqlite_runs_store_and_read_every_event(sqlite_home):
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        assert storage._base_dir == str(sqlite_home / "history" / "runs")  # Dagster's default
        run_ids = _runs(instance, RUN_SHARDS_KEPT + 3)
        _assert_events_readable(instance, run_ids)
        # connections kept: the index (and its table checks') and the last few run
        # databases, not one per run
        assert set(storage._engines) == {"index", "index (table checks)",
                                         *run_ids[-RUN_SHARDS_KEPT:]}

    with dg.DagsterInstance.get() as reopened:  # another process's view: all on disk
        _assert_events_readable(reopened, run_ids)


def test_sqlite_watcher_sees_a_running_runs_events(sqlite_home):
    """The UI follows a run through file events on ``<run_id>.db``: the kept connection
    still changes that file after each write."""
    with dg.DagsterInstance.get() as instance:
        run = instance.create_run_for_job(dg.define_asset_job("j", [upstream]).resolve(
            asset_graph=dg.Definitions(assets=[upstream]).resolve_asset_graph()))
        arrived = threading.Event()

        def callback(entry, _cursor):
            if entry.message == "hello from the engine":
                arrived.set()

        instance.event_log_storage.watch(run.run_id, None, callback)
        try:
            instance.report_engine_event("hello from the engine", run)
            assert arrived.wait(10), "the watcher never saw the event"
        finally:
            instance.event_log_storage.end_watch(run.run_id, callback)


def test_sqlite_new_runs_start_from_the_template_as_dagster_creates_them(sqlite_home):
    """A new instance directory gets the run-database template with its index; each new
    run's database is a copy of it, with Dagster's schema and alembic stamp."""
    with dg.DagsterInstance.get() as instance:
        runs = sqlite_home / "history" / "runs"
        templates = list(runs.glob(".run-shard-template-*.db"))
        assert [t.name for t in templates] == [f".run-shard-template-{dg.__version__}.db"]
        run_id = _runs(instance, 1)[0]
        _assert_events_readable(instance, [run_id])
        shard, template = runs / f"{run_id}.db", templates[0]

        def schema(path):
            with sqlite3.connect(path) as conn:
                tables = conn.execute("SELECT type, name, sql FROM sqlite_master "
                                      "ORDER BY type, name").fetchall()
                return tables, conn.execute("SELECT * FROM alembic_version").fetchall(), \
                    conn.execute("PRAGMA journal_mode").fetchone()

        assert schema(shard) == schema(template)
        assert schema(template)[1] and schema(template)[2] == ("wal",)
        # a database another process began is never replaced
        assert instance.event_log_storage._start_run_shard(run_id) is False
        _assert_events_readable(instance, [run_id])
        assert not list(runs.glob("*.tmp"))


def test_sqlite_event_log_lives_in_the_instance_directory(tmp_path, monkeypatch):
    """Without base_dir and without $DAGSTER_HOME (``DagsterInstance.from_config``, or
    ``dagster dev``'s temporary home), the event log is the instance directory's own
    history/runs, as with Dagster's class, and nothing is written elsewhere."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        assert storage._base_dir == str(home / "history" / "runs")
        assert instance.run_storage._conn_string == f"sqlite:///{home}/history/runs.db"
        run_ids = _runs(instance, 2)
        _assert_events_readable(instance, run_ids)
        assert {p.name for p in (home / "history" / "runs").glob("*.db")} >= {
            "index.db", *(f"{r}.db" for r in run_ids)}
    assert list(cwd.iterdir()) == []
    with dg.DagsterInstance.from_config(str(home)) as again:  # a second process, same home
        _assert_events_readable(again, run_ids)


def test_sqlite_run_storage_keeps_its_connection(sqlite_home):
    """Runs, their status events and lookups go through one kept connection to runs.db
    (Dagster's class opened one per statement: 46 in a single-partition run)."""
    with sqlite_connections_opened() as opened, dg.DagsterInstance.get() as instance:
        storage = instance.run_storage
        assert isinstance(storage, PooledSqliteRunStorage)
        runs_db = str(sqlite_home / "history" / "runs.db")
        run_ids = _runs(instance, 1)
        after_first = opened.count(runs_db)  # Dagster's setup of runs.db, then the pool
        run_ids += _runs(instance, 3)
        _assert_events_readable(instance, run_ids)
        assert [r.run_id for r in instance.get_runs()] == list(reversed(run_ids))
        assert all(instance.get_run_by_id(r).is_success for r in run_ids)
        assert opened.count(runs_db) == after_first  # no connection opened since
        with storage.connect() as conn:  # synchronous=NORMAL (1) on the kept connection
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1


def test_sqlite_table_checks_use_the_kept_index_connection(sqlite_home):
    """Dagster asks ``has_table`` before every dynamic-partition and asset-check query; its
    own method opened a new engine each time. Ours answers on the kept connection and
    remembers a table found, until a wipe (then asked again, still right)."""
    index_db = str(sqlite_home / "history" / "runs" / "index.db")
    with sqlite_connections_opened() as opened, dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        instance.add_dynamic_partitions("symbols", ["SPY"])
        before = opened.count(index_db)
        for _ in range(5):
            assert instance.has_dynamic_partition("symbols", "SPY")
            assert not instance.has_dynamic_partition("symbols", "QQQ")
            assert storage.supports_asset_checks
        assert storage.has_table("dynamic_partitions")
        assert not storage.has_table("no_such_table")
        assert opened.count(index_db) == before  # every question on the kept connection
        instance.wipe()  # asked again while the index is made anew: still right
        with sqlite3.connect(index_db) as raw:
            tables = {r[0] for r in raw.execute("select name from sqlite_master")}
        assert "dynamic_partitions" in storage._index_tables <= tables
        instance.add_dynamic_partitions("symbols", ["QQQ"])
        assert instance.get_dynamic_partitions("symbols") == ["QQQ"]
        assert storage.has_table("dynamic_partitions")


def test_sqlite_storages_open_a_stamped_instance_without_loading_migrations(sqlite_home,
                                                                          monkeypatch):
    """Opening an instance whose databases exist and are stamped does not load Dagster's
    migration scripts (its own classes load them once per storage); a new home is still
    created and stamped."""
    from alembic.script import ScriptDirectory

    with dg.DagsterInstance.get() as instance:  # a new home: created and stamped
        run_ids = _runs(instance, 1)
    for db_file in ("history/runs.db", "history/runs/index.db", f"history/runs/{run_ids[0]}.db",
                    "schedules/schedules.db"):
        with sqlite3.connect(sqlite_home / db_file) as raw:
            assert raw.execute("select version_num from alembic_version").fetchone()

    loads = []
    original = ScriptDirectory._load_revisions

    def counted(self):
        loads.append(self.dir)  # Dagster's one alembic directory, for every storage
        return original(self)

    monkeypatch.setattr(ScriptDirectory, "_load_revisions", counted)
    with dg.DagsterInstance.get() as instance:  # an existing home: only opened
        run_ids += _runs(instance, 1)
        _assert_events_readable(instance, run_ids)
    assert loads == []  # Dagster's classes: 4 loads


def test_sqlite_schedule_storage_keeps_its_connection(sqlite_home):
    """Sensor ticks (the daemon writes one per evaluation) go through one kept connection to
    schedules.db, in Dagster's own location, and read back as written."""
    from dagster._core.scheduler.instigation import (
        InstigatorType,
        TickData,
        TickStatus,
    )

    from phase1_platform.instance_storage import PooledSqliteScheduleStorage

    schedules_db = str(sqlite_home / "schedules" / "schedules.db")
    with sqlite_connections_opened() as opened, dg.DagsterInstance.get() as instance:
        storage = instance.schedule_storage
        assert isinstance(storage, PooledSqliteScheduleStorage)
        tick = TickData(instigator_origin_id="origin", instigator_name="live_ticks_sensor",
                        instigator_type=InstigatorType.SENSOR, status=TickStatus.STARTED,
                        timestamp=1.0, selector_id="selector")
        first = storage.create_tick(tick)
        after_first = opened.count(schedules_db)
        for i in range(10):
            done = storage.create_tick(tick._replace(timestamp=2.0 + i))
            storage.update_tick(done.with_status(TickStatus.SKIPPED))
        ticks = storage.get_ticks("origin", "selector", limit=20)
        assert len(ticks) == 11 and ticks[-1].tick_id == first.tick_id
        assert [t.status for t in ticks[:10]] == [TickStatus.SKIPPED] * 10
        assert opened.count(schedules_db) == after_first  # no connection opened since


def test_sqlite_wipe_with_kept_connections(sqlite_home):
    with dg.DagsterInstance.get() as instance:
        _runs(instance, 2)
        instance.wipe()
        assert instance.get_runs() == []
        run_ids = _runs(instance, 2)
        _assert_events_readable(instance, run_ids)


@pytest.mark.postgres
def test_postgres_runs_on_one_pooled_connection(pg_databases, tmp_path, monkeypatch):  # noqa: F811
    import psycopg

    dagster_db, _ = pg_databases
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.postgres.yaml", home / "dagster.yaml")
    for key, value in {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": PG["host"],
                       "DAGSTER_PG_USER": PG["user"], "DAGSTER_PG_PASSWORD": "",
                       "DAGSTER_PG_DB": dagster_db}.items():
        monkeypatch.setenv(key, value)

    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, PooledPostgresEventLogStorage)
        assert isinstance(instance.run_storage, PooledPostgresRunStorage)
        with psycopg.connect(dbname="test", **PG) as conn:
            sessions_before = _sessions(conn, dagster_db)
            run_ids = _runs(instance, 3)
            # ~60 events stored, 3 runs recorded and looked up: the event log and the run
            # storage each held one connection open for all of them
            assert storage._engine.pool.checkedin() == 1
            assert instance.run_storage._engine.pool.checkedin() == 1
            assert _sessions(conn, dagster_db) - sessions_before <= 2
        _assert_events_readable(instance, run_ids)


def _sessions(conn, database: str) -> int:
    return conn.execute("select count(*) from pg_stat_activity where datname = %s",
                        (database,)).fetchone()[0]
