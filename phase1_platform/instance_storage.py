"""Dagster's event logs and run storages (SQLite, PostgreSQL), keeping their connections
instead of opening one per statement.

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

``PooledSqliteRunStorage`` and ``PooledSqliteScheduleStorage`` do the same for
``SqliteRunStorage`` (``runs.db``) and ``SqliteScheduleStorage`` (``schedules.db``): a
small pool per process instead of an engine and a connection per statement.

Opening (SQLite): Dagster's storages check a database's alembic stamp by loading every
migration script to find the head revision (15-20 ms each, three per process), then only
act on a database without a stamp. Ours read the stamp alone and leave a stamped database
as Dagster would; a new or unstamped one still goes through Dagster's own code.

``PooledPostgresEventLogStorage`` and ``PooledPostgresRunStorage`` do the same for
dagster-postgres's classes, which connect to PostgreSQL (a new server process and
authentication) for every statement: one pooled connection per process (more under
concurrent threads, up to 5), checked with a ping before use, committing with
``synchronous_commit=off`` (``_commit_without_flush``). Dagster's webserver already pools
(``optimize_for_webserver``); run workers and the daemon did not.

Selected in ``dagster.yaml`` (and ``dagster.postgres.yaml``, ``dagster.celery.yaml``)::

    run_storage:
      module: phase1_platform.instance_storage
      class: PooledSqliteRunStorage           # or PooledPostgresRunStorage + its config
    event_log_storage:
      module: phase1_platform.instance_storage
      class: PooledSqliteEventLogStorage      # or PooledPostgresEventLogStorage + its config
    schedule_storage:                         # SQLite only
      module: phase1_platform.instance_storage
      class: PooledSqliteScheduleStorage

(SQLite: ``base_dir`` defaults to Dagster's own locations, ``<instance directory>/history``,
``history/runs`` and ``schedules``, the directory the instance was loaded from:
``$DAGSTER_HOME``, or the temporary home of a ``dagster dev`` run without it. PostgreSQL:
the same ``postgres_db``/``postgres_url`` configuration as Dagster's classes.)

New run databases (SQLite): Dagster creates each run's database on the run's first event:
schema, WAL mode and an alembic stamp, loading its migration scripts twice (~0.1 s, 2% of a
single-partition run). The storage creates that empty database once per instance
directory and Dagster version, with Dagster's own code (``_initdb``), as
``.run-shard-template-<version>.db`` next to the index, and starts each new run's database
as a copy of it (linked into place, so a database another process has begun is never
replaced). A Dagster upgrade (a new version) makes a new template; ``dagster instance
migrate`` migrates run databases as before.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as db
from alembic.runtime.migration import MigrationContext
from dagster import Field, StringSource
from dagster import __version__ as DAGSTER_VERSION
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool, StaticPool

RUN_SHARDS_KEPT = 4  # a process writes one run at a time; the webserver reads a few


def history_dir(instance_dir: str) -> str:
    """Dagster's own location of the run storage (``runs.db``) under an instance directory."""
    return os.path.join(os.path.abspath(instance_dir), "history", "")


def runs_dir(instance_dir: str) -> str:
    """Dagster's own location of the event log under an instance directory."""
    return os.path.join(history_dir(instance_dir), "runs", "")


def _provisional_dir(base_dir: str | None, default) -> tuple[str, str | None]:
    """(the directory to open now, the provisional one to remove later or None).

    Without ``base_dir`` configured, the instance directory is only known once the instance
    registers the storage (``register_instance``); until then ``$DAGSTER_HOME``'s when set
    (the usual case: no move later), else a private temporary directory."""
    if base_dir is not None:
        return base_dir, None
    if os.environ.get("DAGSTER_HOME"):
        return default(os.environ["DAGSTER_HOME"]), None
    provisional = tempfile.mkdtemp(prefix="phase1-dagster-storage-")
    return provisional, provisional


def _stamped(conn: Connection) -> bool:
    """Whether the database carries an alembic revision. Dagster's SQLite storages create and
    stamp a database that has none and leave a stamped one alone; their check also loads
    every migration script to find the head revision (15-20 ms, three storages per
    process), which decides nothing once the database is stamped."""
    return bool(MigrationContext.configure(conn).get_current_revision())


class _PlacedInInstance:
    """A SQLite storage without ``base_dir`` configured opens ``_provisional_dir``'s
    directory, then moves to the instance's own when the instance registers it
    (``_move_to_instance``), removing the provisional one."""

    _placed: bool
    _provisional: str | None

    def register_instance(self, instance) -> None:
        super().register_instance(instance)
        if not self._placed:
            self._placed = True
            self._move_to_instance(instance.root_directory)
            self._drop_provisional()

    def _move_to_instance(self, instance_dir: str) -> None:
        raise NotImplementedError

    def _drop_provisional(self) -> None:
        if self._provisional is not None:
            shutil.rmtree(self._provisional, ignore_errors=True)
            self._provisional = None


_TABLE_CHECKS = "index (table checks)"  # has_table's own connection to the index database


def _tune(dbapi_conn, _record) -> None:
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")


def _kept_engine(conn_string: str, **pool) -> Engine:
    """An engine whose SQLite connections are kept: Dagster's busy timeout, usable from any
    thread (the storage's lock or the pool serializes them), ``synchronous=NORMAL``."""
    engine = db.create_engine(conn_string, **pool, connect_args={
        "timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
    db.event.listen(engine, "connect", _tune)
    return engine


class PooledSqliteEventLogStorage(_PlacedInInstance, SqliteEventLogStorage):
    """Dagster's SQLite event log storage, with one kept connection per database."""

    def __init__(self, base_dir: str | None = None, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._engines_lock = threading.Lock()
        self._index_tables: set[str] = set()  # tables has_table found in the index
        self._placed = base_dir is not None  # else placed by register_instance
        base_dir, self._provisional = _provisional_dir(base_dir, runs_dir)
        fresh = not os.path.exists(os.path.join(base_dir, f"{INDEX_SHARD_NAME}.db"))
        super().__init__(base_dir, inst_data=inst_data)
        if fresh and self._provisional is None:
            self._run_shard_template()  # a new instance directory: see the module docstring

    def _initdb(self, engine: Engine, for_index_shard=False) -> None:
        """Dagster's, unless the database is stamped already (``_stamped``)."""
        with engine.connect() as conn:
            if _stamped(conn):
                return
        super()._initdb(engine, for_index_shard)

    def _move_to_instance(self, instance_dir: str) -> None:
        """Use the instance's ``history/runs`` from now on, creating its index as Dagster's
        __init__ does."""
        own = os.path.abspath(runs_dir(instance_dir))
        if own == os.path.abspath(self._base_dir):
            return
        self._dispose_engines()
        self._base_dir = own
        os.makedirs(self._base_dir, exist_ok=True)
        self._initialized_dbs = set()
        if not os.path.exists(self.path_for_shard(INDEX_SHARD_NAME)):
            self._initdb(self._engine(INDEX_SHARD_NAME), for_index_shard=True)
            self._initialized_dbs.add(INDEX_SHARD_NAME)
            self.reindex_events()
            self.reindex_assets()
            self._run_shard_template()

    def _run_shard_template(self) -> str:
        """An empty run database as Dagster creates one, made once per directory and version."""
        path = os.path.join(self._base_dir, f".run-shard-template-{DAGSTER_VERSION}.db")
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"
            engine = db.create_engine(f"sqlite:///{tmp}", poolclass=NullPool)
            try:
                self._initdb(engine)
            finally:
                engine.dispose()  # the last connection of a WAL database: checkpointed
            os.replace(tmp, path)  # a concurrent creator wrote the same database
        return path

    def _start_run_shard(self, shard: str) -> bool:
        """Create a new run's database as a copy of the template; False if it exists."""
        path = self.path_for_shard(shard)
        if os.path.exists(path):
            return False
        tmp = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"
        shutil.copyfile(self._run_shard_template(), tmp)
        try:
            os.link(tmp, path)  # never replaces a database another process has begun
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

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
            engine = _kept_engine(self.conn_string_for_shard(
                INDEX_SHARD_NAME if shard == _TABLE_CHECKS else shard), poolclass=StaticPool)
            self._engines[shard] = engine
            runs = [s for s in self._engines if s not in (INDEX_SHARD_NAME, _TABLE_CHECKS)]
            for old in runs[:-RUN_SHARDS_KEPT]:
                self._engines.pop(old).dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            if shard not in self._initialized_dbs:
                if shard != INDEX_SHARD_NAME and self._start_run_shard(shard):
                    self._initialized_dbs.add(shard)
                else:
                    self._initdb(self._engine(shard))
                    self._initialized_dbs.add(shard)
            engine = self._engine(shard)
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

    def has_table(self, table_name: str) -> bool:
        """Whether the index database holds ``table_name``. Dagster asks before every
        dynamic-partition and asset-check query (some while it holds the index connection),
        and its own method creates a new engine for each question (six per run, 0.06 s).
        Asked here on a kept connection of its own, and a table once found is remembered
        until the storage is upgraded, wiped or moved."""
        if table_name not in self._index_tables:
            engine = self._engine(_TABLE_CHECKS)
            with engine.connect() as conn:
                if engine.dialect.has_table(conn, table_name):
                    self._index_tables.add(table_name)
        return table_name in self._index_tables

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
            self._index_tables.clear()

    def upgrade(self) -> None:
        self._dispose_engines()
        super().upgrade()

    def wipe(self) -> None:
        self._dispose_engines()  # wipe deletes the run databases' files
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()
        self._drop_provisional()


def schedules_dir(instance_dir: str) -> str:
    """Dagster's own location of the schedule storage under an instance directory."""
    return os.path.join(os.path.abspath(instance_dir), "schedules")


class _PooledSqliteFile(_PlacedInInstance):
    """A Dagster SQLite storage of one database file (``runs.db``, ``schedules.db``) keeping
    its connections: Dagster's class creates an engine and opens and closes a connection for
    every statement, and closing the last connection to a WAL database checkpoints it. This
    keeps a small pool per process (one connection, more under concurrent threads: the
    webserver), created again after a fork, with ``synchronous=NORMAL`` as the event log's.
    Schema, file and queries are Dagster's (its ``from_local`` creates and stamps the
    database; a stamped one is only opened, ``_stamped``)."""

    _db_name: str  # the file's name without .db, as Dagster names it
    _required_table: str | None = None  # made by Dagster's from_local besides the stamp

    @staticmethod
    def _default_dir(instance_dir: str) -> str:
        raise NotImplementedError

    def __init__(self, conn_string: str, inst_data=None):
        super().__init__(conn_string, inst_data)
        self._pool: Engine | None = None
        self._pool_pid = os.getpid()
        self._pool_lock = threading.Lock()
        self._placed, self._provisional = True, None

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        base_dir, provisional = _provisional_dir(config_value.get("base_dir"),
                                                 cls._default_dir)
        storage = cls.from_local(base_dir, inst_data=inst_data)
        storage._placed = config_value.get("base_dir") is not None
        storage._provisional = provisional
        return storage

    @classmethod
    def from_local(cls, base_dir: str, inst_data=None):
        """Dagster's, unless the database is stamped and complete already: then opened."""
        conn_string = create_db_conn_string(base_dir, cls._db_name)
        if os.path.exists(os.path.join(base_dir, f"{cls._db_name}.db")):
            engine = db.create_engine(conn_string, poolclass=NullPool)
            try:
                with engine.connect() as conn:
                    ready = _stamped(conn) and (cls._required_table is None or
                                                db.inspect(conn).has_table(cls._required_table))
            finally:
                engine.dispose()
            if ready:
                return cls(conn_string, inst_data)
        return super().from_local(base_dir, inst_data=inst_data)

    def _move_to_instance(self, instance_dir: str) -> None:
        """Use the instance's own database from now on (made as Dagster makes it)."""
        own = self._default_dir(instance_dir)
        if self._conn_string != create_db_conn_string(own, self._db_name):
            self._conn_string = type(self).from_local(own)._conn_string
            self._dispose_pool()

    def _engine(self) -> Engine:
        with self._pool_lock:
            if self._pool is not None and self._pool_pid == os.getpid():
                return self._pool
            self._pool_pid = os.getpid()  # forked: the parent's connections are not ours
            self._pool = _kept_engine(self._conn_string, poolclass=QueuePool, pool_size=1,
                                      max_overflow=4)
            return self._pool

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._engine().connect() as conn, conn.begin():
            yield conn

    def _dispose_pool(self) -> None:
        with self._pool_lock:
            if self._pool is not None and self._pool_pid == os.getpid():
                self._pool.dispose()
            self._pool = None

    def upgrade(self) -> None:
        self._dispose_pool()
        super().upgrade()

    def dispose(self) -> None:
        self._dispose_pool()
        super().dispose()
        self._drop_provisional()


class PooledSqliteRunStorage(_PooledSqliteFile, SqliteRunStorage):
    """Dagster's SQLite run storage (``runs.db``), keeping its connections: a
    single-partition run made 46 connections with Dagster's class (the run record, its
    status events, run lookups, the key-value store)."""

    _db_name, _required_table = "runs", "instance_info"
    _default_dir = staticmethod(history_dir)


class PooledSqliteScheduleStorage(_PooledSqliteFile, SqliteScheduleStorage):
    """Dagster's SQLite schedule storage (``schedules.db``: sensor and schedule ticks,
    cursors), keeping its connections: the daemon writes a tick for every sensor evaluation
    (every 30 s per sensor, ours included)."""

    _db_name = "schedules"
    _default_dir = staticmethod(schedules_dir)


def _total_changes(conn: Connection) -> int:
    """Rows this SQLite connection has changed since it opened (sqlite3 ``total_changes``)."""
    return conn.connection.dbapi_connection.total_changes


def _commit_without_flush(dbapi_conn, _record) -> None:
    """``synchronous_commit = off`` for this session: a commit returns before its WAL is
    flushed (PostgreSQL flushes it within 3 x ``wal_writer_delay``, 600 ms by default).
    A server crash may lose those last transactions, never corrupts; the same choice as
    ``synchronous=NORMAL`` on SQLite. Every statement of Dagster's storages is its own
    transaction (AUTOCOMMIT), so each waited for a flush of the WAL."""
    cur = dbapi_conn.cursor()
    cur.execute("SET synchronous_commit TO OFF")
    cur.close()


class _PooledPostgres:
    """The pooling shared by the PostgreSQL storages: Dagster's ``__init__`` (schema
    creation, checks) runs on its own NullPool engine, then a pooled engine replaces it;
    after a fork the child builds its own pool."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data=None, token_provider=None):
        self._engine_pid = os.getpid()  # Dagster's own NullPool engine until __init__ ends
        super().__init__(postgres_url, should_autocreate_tables, inst_data=inst_data,
                         token_provider=token_provider)
        self._use_pool()

    def _use_pool(self) -> None:
        self._engine_pid = os.getpid()
        self._engine = create_pg_engine(
            self.postgres_url, self._token_provider, isolation_level="AUTOCOMMIT",
            pool_size=1, max_overflow=4, pool_pre_ping=True, pool_recycle=3600)
        db.event.listen(self._engine, "connect", _commit_without_flush)

    def _own_pool(self) -> None:
        if self._engine_pid != os.getpid():  # forked: the parent's connections are not ours
            self._engine.dispose(close=False)
            self._use_pool()

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))

    def dispose(self) -> None:
        self._engine.dispose()
        super().dispose()


class PooledPostgresEventLogStorage(_PooledPostgres, PostgresEventLogStorage):
    """Dagster's PostgreSQL event log storage, with a connection pool per process."""

    def _connect(self):
        self._own_pool()
        return super()._connect()


class PooledPostgresRunStorage(_PooledPostgres, PostgresRunStorage):
    """Dagster's PostgreSQL run storage, with a connection pool per process (it connected
    to the server for every statement: a new backend process each time)."""

    def connect(self):
        self._own_pool()
        return super().connect()
