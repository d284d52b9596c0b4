"""Stores of record for tests, one per backend: a fresh SQLite file, or a PostgreSQL schema
of its own in the machine's test database (127.0.0.1:5432, database ``test``), dropped
afterwards. ``TICK_BACKENDS`` adds ``parquet``: a fresh SQLite file with the ticks in a
Parquet dataset of the test's own (``TICK_STORE`` set for the test, so every
``Store.from_url`` of it, in this process or a child process, uses it).

When PostgreSQL is unreachable its cases are skipped with the reason, except in CI (env
``CI`` set), where they fail: a CI run must never pass by skipping the PostgreSQL half.
"""

from __future__ import annotations

import os
import uuid

import pytest

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgresql"]
TICK_BACKENDS = [*BACKENDS, "parquet"]  # where ticks can live (storage.tick_store)


def pg_unavailable() -> str | None:
    """None when the test PostgreSQL answers, else the reason."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure is the reason to report
        return f"PostgreSQL at {PG_ADMIN} unreachable: {str(exc).strip().splitlines()[0]}"


def require_postgres() -> None:
    """Return when the test PostgreSQL answers; else skip the test (fail it under CI)."""
    reason = pg_unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: PostgreSQL tests must run)")
    pytest.skip(f"{reason}; start it: pg_ctlcluster --skip-systemctl-redirect 15 main start")


class PgSchema:
    """A schema of its own in the test database; its URL sets the search_path."""

    def __init__(self) -> None:
        import psycopg

        self.name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        self.url = f"{PG_URL}?options=-csearch_path%3D{self.name}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


def make_url(backend: str, tmp_path, request) -> str:
    """A fresh store URL of ``backend`` ("sqlite", "postgresql" or "parquet") for the test
    of ``request``: a file in ``tmp_path``, or a schema dropped when the test ends;
    "parquet" also sets ``TICK_STORE`` to a folder in ``tmp_path`` until the test ends."""
    if backend == "parquet":
        env = pytest.MonkeyPatch()
        env.setenv("TICK_STORE", f"parquet://{tmp_path / 'ticks'}")
        request.addfinalizer(env.undo)
        backend = "sqlite"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    require_postgres()
    schema = PgSchema()
    request.addfinalizer(schema.drop)
    return schema.url


__all__ = ["BACKENDS", "PG_ADMIN", "PG_URL", "TICK_BACKENDS", "PgSchema", "make_url",
           "pg_unavailable",
           "require_postgres"]
