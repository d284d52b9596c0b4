"""A Dagster run on a PostgreSQL-backed instance (dagster-postgres) and a PostgreSQL store.

Uses the machine's server (127.0.0.1:5432, user postgres, database ``test`` to connect);
creates two fresh databases (Dagster's and the store's: both keep an ``alembic_version``
table) and drops them afterwards. Unreachable server: skipped with the reason, except
in CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import os
import shutil
import uuid

import dagster as dg
import pytest

from phase1_platform.core.calendar import trading_day_window
from phase1_platform.defs.assets import ALL_ASSETS
from phase1_platform.defs.checks import ALL_CHECKS
from phase1_platform.defs.resources import default_resources
from phase1_platform_tests.conftest import ROOT

pytestmark = pytest.mark.postgres
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def _admin():
    import psycopg

    try:
        return psycopg.connect(dbname="test", autocommit=True, connect_timeout=5, **PG)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 ({exc})")


@pytest.fixture
def pg_databases():
    suffix = uuid.uuid4().hex[:10]
    names = (f"phase1_dagster_{suffix}", f"phase1_store_{suffix}")
    with _admin() as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield names
    finally:
        with _admin() as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_run_on_postgres_instance_and_store(pg_databases, tmp_path, monkeypatch):
    dagster_db, store_db = pg_databases
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.postgres.yaml", home / "dagster.yaml")
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": PG["host"],
        "DAGSTER_PG_USER": PG["user"],
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": dagster_db,
        "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{store_db}",
        "PHASE1_DROP_DIR": str(tmp_path / "drop"),
        "PHASE1_EXPORT_DIR": str(tmp_path / "exports"),
    }.items():
        monkeypatch.setenv(key, value)

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PooledPostgresRunStorage"
        instance.add_dynamic_partitions("symbols", ["AAPL"])
        result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], partition_key="2013-10-07|AAPL",
                                instance=instance, resources=default_resources())
        assert result.success
        assert all(e.passed for e in result.get_asset_check_evaluations())
        (run,) = instance.get_runs()
        assert run.run_id == result.run_id
        mats = instance.fetch_materializations(dg.AssetKey("canonical_export"), limit=5)
        (record,) = mats.records
        assert record.partition_key == "2013-10-07|AAPL"
        digest = record.asset_materialization.metadata["hash"].value

    # the run's records live in PostgreSQL, and so do the bars
    import psycopg

    with psycopg.connect(dbname=dagster_db, **PG) as conn:
        assert conn.execute("select count(*) from runs").fetchone()[0] == 1
    from phase1_platform.core.export import CanonicalExporter
    from phase1_platform.storage.repositories import BarRepository
    from phase1_platform.storage.store import Store

    store = Store.from_url()
    try:
        assert store.dialect == "postgresql"
        start, end = trading_day_window("2013-10-07")
        bars = BarRepository(store).read("AAPL", None, start, end)
        assert len(bars) == 341
        assert CanonicalExporter(bars).compute_hash() == digest
    finally:
        store.dispose()
