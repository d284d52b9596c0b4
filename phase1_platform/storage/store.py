"""``Store``: one database of record (SQLite by default, PostgreSQL at scale).

``Store.from_url(url)`` resolves the URL (argument, else ``DATABASE_URL``, else a SQLite
file ``phase1.sqlite`` in the working directory), builds a SQLAlchemy 2 engine, checks
the connection and the schema revision, and migrates the schema to the head revision
when it is behind (a fresh database is created on first use). Every failure a user
can fix (bad URL, missing driver, unreachable server, schema newer than this code)
is a ``StoreError`` with one line that names the URL, password masked, and the fix.

SQLite runs in WAL mode with a busy timeout (``PHASE1_SQLITE_BUSY_TIMEOUT_S`` seconds,
default 60); write transactions start with ``BEGIN IMMEDIATE`` so concurrent writers
queue on the lock instead of failing with "database is locked" when a read transaction
tries to upgrade itself. A read-only, locked (past the busy timeout), full or failing
database is a ``StoreError`` too (``Store.operational_error``).

``Store.read_snapshot()`` pins one read-only transaction for the calls made inside it (in
the same thread or task): every repository read there sees one consistent state of the
store (PostgreSQL: ``REPEATABLE READ READ ONLY``, which never blocks writers; SQLite in
WAL: one read transaction). The read API runs each request in one.

``Store.transaction()`` pins one write transaction the same way: every repository call made
inside it (reads and writes) runs in it, and it commits at the end of the block or rolls
everything back (the live service lands a flush's ticks and writes its bars in one).

``Store.ticks`` is where the store's ticks live (``storage.tick_store.TickStore``): the
``ticks`` table of this database by default, or a Parquet dataset when the setting
``TICK_STORE`` (or ``from_url(tick_store=...)``) is ``parquet:///PATH``; everything else
(bars, landings, quarantine, watermarks, checks) stays in this database.
``Store.after_transaction(fn)`` runs ``fn(committed)`` when the pinned write
transaction ends (at once outside one): what a tick store outside the database does
once the landing rows it wrote are committed.

``Store.change_token()`` is a cheap value that differs from every earlier one whenever a
write may have committed since (the read API's response cache keys on it; see its doc).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool, StaticPool

from ..core.errors import StoreUnavailableError
from .change_probe import SqliteChangeProbe

DEFAULT_URL = "sqlite:///phase1.sqlite"
SQLITE_BUSY_TIMEOUT_S = 60.0
BUSY_TIMEOUT_ENV = "PHASE1_SQLITE_BUSY_TIMEOUT_S"
PG_CONNECT_TIMEOUT_S = 5
# key of the PostgreSQL advisory lock that serializes concurrent schema upgrades
_PG_UPGRADE_LOCK = 0x5048_4153_4531  # "PHASE1"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
URL_HINT = "use sqlite:///FILE or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"


class StoreError(StoreUnavailableError):
    """A database problem the user can fix; its message is one line."""


# (store, connection) of the read snapshot pinned in this thread or task, if any
_SNAPSHOT: ContextVar[tuple[Store, Connection] | None] = ContextVar("phase1_read_snapshot",
                                                                      default=None)
# (store, connection, what to run when it ends) of the write transaction pinned in this
# thread or task, if any
_UNIT: ContextVar[tuple[Store, Connection, list[Callable[[bool], None]]] | None] = \
    ContextVar("phase1_write_unit", default=None)
TICK_STORE_ENV = "TICK_STORE"


def busy_timeout_s() -> float:
    """SQLite's busy timeout: ``PHASE1_SQLITE_BUSY_TIMEOUT_S`` (seconds), default 60."""
    text = os.environ.get(BUSY_TIMEOUT_ENV, "").strip()
    if not text:
        return SQLITE_BUSY_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise StoreError(f"{BUSY_TIMEOUT_ENV}={text!r} is not a number of seconds >= 0: "
                         "set it to e.g. 60 or unset it")
    return value


def resolve_url(url: str | None = None) -> str:
    return url or os.environ.get("DATABASE_URL") or DEFAULT_URL


def resolve_tick_store(spec: str | None = None) -> str:
    """Where ticks live: ``spec``, else ``TICK_STORE``, else ``sql`` (the database's
    ``ticks`` table); ``parquet:///PATH`` is a Parquet dataset (``storage.parquet_ticks``)."""
    return (spec or os.environ.get(TICK_STORE_ENV) or "sql").strip()


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***`` (also for unparseable URLs)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
        return parsed.render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0].strip() if text else type(orig).__name__


class Store:
    """An engine on the database of record plus its schema management."""

    def __init__(self, engine: Engine, masked_url: str, tick_store: str | None = None):
        self.engine = engine
        self.masked_url = masked_url
        self.tick_store_spec = resolve_tick_store(tick_store)
        self.dialect: str = engine.dialect.name
        self.driver: str = engine.dialect.driver
        # base class of the driver's own errors (what raw DBAPI cursors raise)
        self.driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        database = engine.url.database or ""
        file_backed = self.dialect == "sqlite" and database not in ("", ":memory:") \
            and not database.startswith("file:")
        self._probe = SqliteChangeProbe(database, busy_timeout_s()) if file_backed else None

    # ------------------------------------------------------------------ creation
    @classmethod
    def from_url(cls, url: str | None = None, *, migrate: bool = True,
                 follow_file: bool = False, tick_store: str | None = None) -> Store:
        """Open the store at ``url`` (None: ``DATABASE_URL``, else ``sqlite:///phase1.sqlite``).

        With ``migrate`` (default) a database behind the head revision (a fresh one
        included) is upgraded; a database at an unknown, newer revision is refused.
        With ``follow_file`` a SQLite file store opens a connection per transaction
        instead of pooling them: a long-lived reader (the read API) then follows the file
        at the path when another process replaces, deletes or damages it (a pooled
        connection keeps reading the old file, or its cached pages, forever), and never
        creates it again once deleted (that is a ``StoreError``, not an empty new store).
        It costs a fraction of a millisecond per transaction; other backends are
        unaffected. ``tick_store`` (None: ``TICK_STORE``, else ``sql``): see ``ticks``.
        """
        raw = resolve_url(url)
        masked = mask_url(raw)
        try:
            parsed = make_url(raw)
        except (ArgumentError, ValueError):
            raise StoreError(f"invalid database URL {masked!r}: {URL_HINT}") from None
        engine = _create_engine(parsed, masked, follow_file)
        store = cls(engine, masked, tick_store)
        try:
            current = store.current_revision()  # also checks that the server is reachable
            store._refuse_unknown(current)
            if migrate and current != store.head_revision():
                store.upgrade()
            store.ticks  # noqa: B018 - a bad TICK_STORE fails here, in one line
        except BaseException:
            engine.dispose()
            raise
        return store

    def dispose(self) -> None:
        if self._probe is not None:
            self._probe.close()
        self.engine.dispose()

    def change_token(self) -> str | None:
        """A value that changes whenever a write has committed to the database since an
        earlier call could have seen it; None when it cannot be told (then cache nothing).

        Safe for caching when read BEFORE the data, outside ``read_snapshot``: data read
        after the token is at least as new as the state the token names, and an equal
        token later means no commit in between. SQLite file: ``PRAGMA data_version`` of one
        dedicated connection (it changes when any other connection, of any process,
        commits) with the file's identity and size/mtime folded in (a file replaced,
        rewritten or deleted under the store changes it or fails it), and a counter of
        reopens. PostgreSQL: ``pg_current_snapshot()`` (which transactions are visible:
        it changes when any write transaction of the cluster starts or ends, so
        conservative) with the server's start time. Other stores (in-memory SQLite): None.
        """
        if self._probe is not None:
            return self._probe.token()
        if self.dialect != "postgresql":
            return None
        try:
            with self.engine.connect() as conn:
                row = conn.exec_driver_sql("SELECT pg_current_snapshot()::text, "
                                           "pg_postmaster_start_time()::text").one()
        except DBAPIError:
            return None  # the normal read path maps the failure (a 503)
        return f"{row[1]}|{row[0]}"

    def __repr__(self) -> str:
        return f"Store({self.masked_url})"

    @cached_property
    def ticks(self):
        """The store's ticks (``storage.tick_store.TickStore``), as ``tick_store_spec``
        says: this database's ``ticks`` table or a Parquet dataset."""
        from .tick_store import open_tick_store

        return open_tick_store(self, self.tick_store_spec)

    # -------------------------------------------------------------- connections
    @contextmanager
    def connect(self) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except DBAPIError as exc:
            raise (self.operational_error(exc) or self.connection_error(exc)) from None
        with conn:
            yield conn

    @contextmanager
    def begin(self, write: bool = False) -> Iterator[Connection]:
        """A transaction; ``write=True`` takes SQLite's write lock up front."""
        with self.connect() as conn:
            if write:
                conn.execution_options(phase1_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read_snapshot(self) -> Iterator[Connection]:
        """One read-only transaction that every repository call of this store made inside
        the block (same thread or task) runs in: one consistent view, one round of
        ``BEGIN``/``COMMIT``. Nested blocks reuse the outer one; a write inside is a bug
        (``RuntimeError``)."""
        pinned = self.pinned_connection()
        if pinned is not None:
            yield pinned
            return
        with self.connect() as conn:
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ",
                                              postgresql_readonly=True)
            try:
                txn = conn.begin()
            except DBAPIError as exc:
                raise (self.operational_error(exc) or self.connection_error(exc)) from None
            token = _SNAPSHOT.set((self, conn))
            try:
                yield conn
            finally:
                _SNAPSHOT.reset(token)
                if txn.is_active:  # nothing was written: ending it is all there is
                    with suppress(DBAPIError):  # a lost connection: its pool discards it
                        txn.rollback()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction that every repository call of this store made inside the
        block (same thread or task) runs in; committed when the block ends, rolled back
        (nothing written) when it raises. Nested blocks reuse the outer one."""
        unit = self.unit_connection()
        if unit is not None:
            yield unit
            return
        if self.pinned_connection() is not None:
            raise RuntimeError("Store.transaction() inside Store.read_snapshot()")
        at_end: list[Callable[[bool], None]] = []
        committed = False
        try:
            with self.begin(write=True) as conn:
                token = _UNIT.set((self, conn, at_end))
                try:
                    yield conn
                finally:
                    _UNIT.reset(token)
            committed = True
        except (DBAPIError, self.driver_error) as exc:  # BEGIN or COMMIT itself failed
            raise (self.operational_error(exc) or self.connection_error(exc)) from None
        finally:
            for fn in at_end:
                fn(committed)

    def unit_connection(self) -> Connection | None:
        """The connection of the write transaction pinned here (``transaction``), if any."""
        unit = _UNIT.get()
        return unit[1] if unit is not None and unit[0] is self else None

    def after_transaction(self, fn: Callable[[bool], None]) -> None:
        """Run ``fn(committed)`` when the write transaction pinned here ends (committed or
        rolled back); ``fn(True)`` at once outside one (every write there has committed)."""
        unit = _UNIT.get()
        if unit is not None and unit[0] is self:
            unit[2].append(fn)
        else:
            fn(True)

    def pinned_connection(self) -> Connection | None:
        """The connection of the read snapshot pinned here (``read_snapshot``), if any."""
        pinned = _SNAPSHOT.get()
        return pinned[1] if pinned is not None and pinned[0] is self else None

    def connection_error(self, exc: BaseException) -> StoreError:
        if self.dialect == "sqlite":
            fix = "check that the file's folder exists and is writable"
        else:
            fix = ("check DATABASE_URL / --database-url (host, port, user, password, database) "
                   "and that the server is running")
        return StoreError(f"cannot open database {self.masked_url}: {_one_line(exc)}; {fix}")

    def operational_error(self, exc: Exception) -> StoreError | None:
        """The one-line ``StoreError`` for a database failure the user can fix
        (unreachable, read-only, locked past the busy timeout, full, I/O error); None
        for anything else (a bug, which keeps its traceback). ``exc``: SQLAlchemy's
        ``DBAPIError`` or the driver's own error (raw cursors)."""
        orig = getattr(exc, "orig", None) or exc
        what = f"database {self.masked_url}"
        if self.dialect == "sqlite":
            text = str(orig).lower()
            if "readonly" in text or "read-only" in text:
                return StoreError(
                    f"{what} is read-only: make the file and its folder writable "
                    "(chmod u+w) or point --database-url / DATABASE_URL at a writable one")
            if "locked" in text or "busy" in text:
                return StoreError(
                    f"{what} is locked by another process (waited {busy_timeout_s():g} s): "
                    f"retry when it is done, raise {BUSY_TIMEOUT_ENV}, or use PostgreSQL "
                    "for concurrent writers")
            if "full" in text:
                return StoreError(
                    f"{what} is full (no space left on its disk, or a size limit): free "
                    "disk space or point --database-url / DATABASE_URL at another disk")
            if "disk i/o" in text:
                return StoreError(
                    f"disk I/O error on {what}: check the disk and that the file and its "
                    "-wal/-shm files are readable and writable")
            if "unable to open" in text:
                return self.connection_error(exc)
            if "not a database" in text or "malformed" in text:
                return StoreError(
                    f"{what} is not a readable SQLite database (replaced, truncated or "
                    "corrupt): restore the file or point --database-url / DATABASE_URL at "
                    "the right one")
        elif self.dialect == "postgresql":
            state = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
            if state == "25006":
                return StoreError(f"{what} is read-only (a standby, or a read-only "
                                  "transaction setting): point DATABASE_URL at the primary")
            if state in ("55P03", "57014"):
                return StoreError(f"{what}: a lock or statement timeout expired: retry "
                                  "when the concurrent work is done")
            if state.startswith("53"):
                return StoreError(f"{what} is out of resources ({_one_line(exc)}): free "
                                  "disk space on the server or raise its limits")
            if state == "58030":
                return StoreError(f"I/O error on {what} ({_one_line(exc)}): check the "
                                  "server's disk")
            if state.startswith("08") or state in ("57P01", "57P02", "57P03"):
                return self.connection_error(exc)  # connection lost, server shut down
        if getattr(exc, "connection_invalidated", False) or isinstance(orig, OSError):
            return self.connection_error(exc)
        return None

    # ------------------------------------------------------------------- schema
    def _alembic_config(self):
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        return cfg

    def _script(self):
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config())

    def head_revision(self) -> str:
        return str(self._script().get_current_head())

    def known_revisions(self) -> set[str]:
        return {r.revision for r in self._script().walk_revisions()}

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.connect() as conn:
            try:
                heads = MigrationContext.configure(conn).get_current_heads()
            except DBAPIError as exc:
                raise (self.operational_error(exc) or self.connection_error(exc)) from None
        return heads[0] if heads else None

    def _refuse_unknown(self, current: str | None) -> None:
        if current is not None and current not in self.known_revisions():
            raise StoreError(
                f"database {self.masked_url} has schema revision {current!r}, unknown to this "
                f"phase1 (head {self.head_revision()!r}): it was written by a newer version; "
                "upgrade phase1 or point DATABASE_URL at another database"
            )

    def upgrade(self, revision: str = "head") -> str:
        """Migrate the schema to ``revision`` (default: the head; idempotent, safe when
        concurrent); returns the revision reached."""
        try:
            self._upgrade(revision)
        except DBAPIError as exc:
            mapped = self.operational_error(exc)
            if mapped is not None:
                raise mapped from None
            raise StoreError(
                f"cannot migrate database {self.masked_url}: {_one_line(exc)}; check that its "
                "schema exists and the user may create tables in it"
            ) from None
        return self.head_revision() if revision == "head" else revision

    def _upgrade(self, revision: str) -> None:
        from alembic import command

        with self.begin(write=True) as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_UPGRADE_LOCK})")
            from alembic.runtime.migration import MigrationContext

            heads = MigrationContext.configure(conn).get_current_heads()
            self._refuse_unknown(heads[0] if heads else None)
            cfg = self._alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)


def _create_engine(url: URL, masked: str, follow_file: bool = False) -> Engine:
    kwargs: dict = {}
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        memory = database in ("", ":memory:") or database.startswith("file::memory:")
        kwargs["connect_args"] = {"timeout": busy_timeout_s(), "check_same_thread": False}
        if memory:
            kwargs["poolclass"] = StaticPool
        elif not Path(database).parent.exists():
            raise StoreError(
                f"cannot open database {masked}: folder {Path(database).parent} does not "
                "exist; create it or give another path"
            )
        elif follow_file:
            kwargs["poolclass"] = NullPool
            try:  # create it now if new (connections below never do), in WAL mode for good
                conn = sqlite3.connect(database)
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open database {masked}: {exc}; check that the "
                                 "path is a file in a writable folder") from None
    elif backend == "postgresql":
        kwargs["pool_pre_ping"] = True
        if url.get_driver_name() in ("psycopg", "psycopg2"):
            kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    try:
        engine = create_engine(url, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(
            f"cannot use database {masked}: no driver for {url.drivername!r} ({_one_line(exc)}); "
            f"install it, or {URL_HINT}"
        ) from None
    except (ArgumentError, TypeError, ValueError) as exc:
        raise StoreError(f"invalid database URL {masked}: {_one_line(exc)}; {URL_HINT}") from None
    if backend == "sqlite":
        if follow_file and kwargs.get("poolclass") is NullPool:
            _sqlite_events(engine, set_wal=False)
            _open_existing_only(engine, url.database or "")
        else:
            _sqlite_events(engine)
    return engine


def _open_existing_only(engine: Engine, database: str) -> None:
    """Open the file read-write but never create it: a store deleted under a long-lived
    reader is "unable to open" (a ``StoreError``), not an empty new file."""
    uri = "file:" + quote(str(Path(database).resolve())) + "?mode=rw"

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):
        cargs[:] = [uri]
        cparams["uri"] = True


def _sqlite_events(engine: Engine, set_wal: bool = True) -> None:
    """Busy timeout and explicit transactions on every connection; WAL mode (persistent in
    the file) and NORMAL sync unless ``set_wal`` is False: a connection per transaction
    (``follow_file``) skips them, the file was put in WAL mode when it was opened."""
    timeout_ms = int(busy_timeout_s() * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        if set_wal:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("phase1_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
