"""What every repository shares: one transaction per call, database errors as one line.

``Repository._run(fn)`` runs ``fn(conn)`` in one transaction of the store (inside
``Store.read_snapshot()``, a read runs in the snapshot's transaction; inside
``Store.transaction()``, every call runs in that write transaction). A database
failure the user can fix (unreachable server, read-only file, lock held past the busy
timeout, full disk, I/O error) becomes a ``StoreError`` (a
``core.errors.StoreUnavailableError``) naming the database and the fix; anything else
(a bug) keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from .store import Store, StoreError


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame is missing column(s): {', '.join(missing)}")


def window(start_ns: int, end_ns: int) -> tuple[int, int]:
    start_ns, end_ns = int(start_ns), int(end_ns)
    if end_ns < start_ns:
        raise ValueError(f"empty time range: end {end_ns} is before start {start_ns}")
    return start_ns, end_ns


def insert_for(conn: Connection, table):
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def rows_frame(rows, columns: list[str]) -> pd.DataFrame:
    """A frame of result rows (SQLAlchemy ``Row``s or tuples) with ``columns``: one
    transposition in C (pandas' ``from_records`` probes every ``Row`` for field names,
    several times slower)."""
    if not rows:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame(dict(zip(columns, zip(*rows, strict=True), strict=True)))


class Repository:
    def __init__(self, store: Store):
        self.store = store

    def _run(self, fn, write: bool = True):
        """Run ``fn(conn)`` in one transaction; database errors a user can fix become
        ``StoreError`` (see ``Store.operational_error``)."""
        pinned = self.store.pinned_connection()
        if pinned is not None and write:
            raise RuntimeError("a write inside Store.read_snapshot(): writes need their own "
                               "transaction")
        if pinned is None:
            pinned = self.store.unit_connection()  # inside Store.transaction()
        try:
            if pinned is not None:
                return fn(pinned)
            with self.store.begin(write=write) as conn:
                return fn(conn)
        except (DBAPIError, self.store.driver_error) as exc:  # raw cursors (bulk): the latter
            mapped = self.store.operational_error(exc)
            if mapped is not None:
                raise mapped from None
            raise


__all__ = ["Repository", "StoreError", "insert_for", "require_columns", "rows_frame",
           "window"]
