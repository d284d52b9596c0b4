"""A backfill through the Dagster daemon and the multiprocess executor, SQLite and PostgreSQL.

The smaller sibling of ``python -m benchmarks.bench_backfill`` (20 symbols x 20 days), on
the same path: seeded synthetic tick files in a file drop, ``dagster-daemon run`` as a
subprocess, one asset backfill of every asset over 4 symbols x 3 trading days submitted
to the instance, run concurrency limited by the QueuedRunCoordinator (2 runs), the
multiprocess executor inside each run (forkserver), the assets' multi-run backfill policy
(one run per trading date: 3 runs, 2 at a time). Asserted: the backfill completes, every run
succeeded, nothing says "database is locked", the store holds exactly the generated ticks
minus the quarantined rows, every bad row is quarantined, every partition is exported
and its export equals ``phase1 replay`` of its file byte for byte.
"""

from __future__ import annotations

import os

import pytest

from benchmarks.bench_backfill import postgres_available, run_backfill


def _backfill(kind: str) -> dict:
    res = run_backfill(kind, n_symbols=4, n_days=3, ticks_per_day=300, max_concurrent_runs=2,
                       max_concurrent_steps=2, partitions_per_run=4, timeout_s=600)
    assert res["problems"] == []
    assert res["partitions"] == 12 and res["runs"] == 3  # one run per trading date
    assert res["ticks_stored"] == res["ticks_generated"] - res["quarantined"]
    return res


def test_backfill_through_daemon_on_sqlite():
    res = _backfill("sqlite")
    assert res["instance_storage"] == "PooledSqliteRunStorage"


@pytest.mark.postgres
def test_backfill_through_daemon_on_postgres():
    why = postgres_available()
    if why:
        if os.environ.get("CI"):
            raise AssertionError(why)
        pytest.skip(why)
    res = _backfill("postgres")
    assert res["instance_storage"] == "PooledPostgresRunStorage"
