"""Dagster's event logs (SQLite, PostgreSQL), keeping their connections instead of opening
one per statement.

``SqliteEventLogStorage`` (Dagster 1.13) creates an engine, opens a connection and closes it
for every statement it runs: storing one asset or check event opens the index database four
to six times, and closing the last connection to a WAL database checkpoints it. A run of
one partition (9 assets, 16 checks) stores about 100 events; measured on this machine that
is ~1 s of a 6 s run, and in a 20-partition backfill run ~10 s of its 13 s.

``PooledSqliteEventLogStorage`` changes only that: per process it keeps one connection to
the index database (where every asset and check event is mirrored) and one to each of
the few run databases it last wrote. Statements still run one at a time under the
storage's lock, as before; WAL with ``synchronous=NORMAL`` (SQLite's recommended
setting for WAL: a crash of the process loses nothing; a power loss may lose the last
transactions, never corrupt). A write to a run database lands in its ``-wal`` file, so the
storage touches the ``.db`` file after it: the UI's live event-log watcher listens for
changes of that file (a checkpoint would do too, at the cost of an fsync per event).
Everything else, schema, files and queries, is Dagster's.

``PooledPostgresEventLogStorage`` does the same for ``PostgresEventLogStorage``, which
connects to PostgreSQL (a new server process and authentication) for every statement: it
keeps one pooled connection per process (more under concurrent threads, up to 5), checked
with a ping before use. Dagster's webserver already does this (``optimize_for_webserver``);
run workers and the daemon did not.

Selected in ``dagster.yaml`` (and ``dagster.postgres.yaml``, ``dagster.celery.yaml``)::

    event_log_storage:
      module: phase1_platform.instance_storage
      class: PooledSqliteEventLogStorage      # or PooledPostgresEventLogStorage + its config

(SQLite: ``base_dir`` defaults to Dagster's own location, ``$DAGSTER_HOME/history/runs``.
PostgreSQL: the same ``postgres_db``/``postgres_url`` configuration as Dagster's class.)
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as db
from dagster import Field, StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

RUN_SHARDS_KEPT = 4  # a process writes one run at a time; the webserver reads a few


def default_base_dir() -> str:
    """Dagster's own default for the event log (``DagsterSqliteStorage``)."""
    home = os.environ.get("DAGSTER_HOME") or os.getcwd()
    return os.path.join(os.path.abspath(home), "history", "runs", "")


def _tune(dbapi_conn, _record) -> None:
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log storage, with one kept connection per database."""

    def __init__(self, base_dir: str | None = None, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._engines_lock = threading.Lock()
        super().__init__(base_dir or default_base_dir(), inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            if self._engines_pid != os.getpid():  # forked: the parent's connections are not ours
                self._engines = OrderedDict()
                self._engines_pid = os.getpid()
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
            engine = db.create_engine(
                self.conn_string_for_shard(shard), poolclass=StaticPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                              "check_same_thread": False})
            db.event.listen(engine, "connect", _tune)
            self._engines[shard] = engine
            runs = [s for s in self._engines if s != INDEX_SHARD_NAME]
            for old in runs[:-RUN_SHARDS_KEPT]:
                self._engines.pop(old).dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                changes = _total_changes(conn)
                with conn.begin():
                    yield conn
                wrote = _total_changes(conn) != changes
            if wrote and shard != INDEX_SHARD_NAME:
                # the UI's watcher of a run's events listens for changes of <run>.db, but
                # the write went to <run>.db-wal: touch <run>.db (no fsync, unlike a
                # checkpoint), the watcher then reads the new events through the WAL
                os.utime(self.path_for_shard(shard))

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def upgrade(self) -> None:
        self._dispose_engines()
        super().upgrade()

    def wipe(self) -> None:
        self._dispose_engines()  # wipe deletes the run databases' files
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()


def _total_changes(conn: Connection) -> int:
    """Rows this SQLite connection has changed since it opened (sqlite3 ``total_changes``)."""
    return conn.connection.dbapi_connection.total_changes


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """Dagster's PostgreSQL event log storage, with a connection pool per process."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data=None, token_provider=None):
        self._engine_pid = os.getpid()  # Dagster's own NullPool engine until __init__ ends
        super().__init__(postgres_url, should_autocreate_tables, inst_data=inst_data,
                         token_provider=token_provider)
        self._engine = self._pooled_engine()

    def _pooled_engine(self) -> Engine:
        self._engine_pid = os.getpid()
        return create_pg_engine(
            self.postgres_url, self._token_provider, isolation_level="AUTOCOMMIT",
            pool_size=1, max_overflow=4, pool_pre_ping=True, pool_recycle=3600)

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))

    def _connect(self):
        if self._engine_pid != os.getpid():  # forked: the parent's connections are not ours
            self._engine.dispose(close=False)
            self._engine = self._pooled_engine()
        return super()._connect()

    def dispose(self) -> None:
        self._engine.dispose()
        super().dispose()
