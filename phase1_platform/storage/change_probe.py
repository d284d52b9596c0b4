"""What ``Store.change_token`` reads for a SQLite file: a value that changes whenever a write
has committed to it since (``PRAGMA data_version`` on one dedicated read-only connection, per
SQLite's documentation, changes when another connection commits) or when the path names
another file (device, inode, size and mtime).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote


class SqliteChangeProbe:
    """``Store.change_token`` of a SQLite file: ``PRAGMA data_version`` on one dedicated
    read-only connection (reopened, with a new epoch, when the path names another file)
    and the file's identity. Each call ends its read transaction at once."""

    def __init__(self, database: str, timeout_s: float):
        self.path = str(Path(database).resolve())
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._epoch = 0
        self._lock = threading.Lock()
        self._timeout_s = timeout_s

    def token(self) -> str | None:
        with self._lock:
            try:
                st = os.stat(self.path)
                identity = (st.st_dev, st.st_ino)
                if self._conn is None or identity != self._identity:
                    self._reopen(identity)
                version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            except (OSError, sqlite3.Error):
                self._close()  # deleted, unreadable, replaced mid-open: no token
                return None
            return f"{self._epoch}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:" \
                   f"{version}"

    def _reopen(self, identity: tuple[int, int]) -> None:
        self._close()
        # read-only: never creates a deleted file, and never checkpoints or deletes a
        # -wal by its path on close (which, once the file was replaced, is another's)
        uri = "file:" + quote(self.path) + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=self._timeout_s,
                               isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA data_version").fetchone()
        st = os.stat(self.path)
        if (st.st_dev, st.st_ino) != identity:  # replaced while opening: which file is it?
            conn.close()
            raise OSError(f"{self.path} was replaced while being opened")
        self._conn, self._identity, self._epoch = conn, identity, self._epoch + 1

    def _close(self) -> None:
        if self._conn is not None:
            with suppress(sqlite3.Error):
                self._conn.close()
        self._conn = self._identity = None

    def close(self) -> None:
        with self._lock:
            self._close()


__all__ = ["SqliteChangeProbe"]
