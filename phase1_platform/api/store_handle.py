"""The read API's store, opened on first use and again after a failed open.

The API starts whether or not its database answers: a request while the store cannot be
opened is a 503 problem naming the masked URL, and the first request after the database
is back opens it. Once open, a database that stops answering fails each request the same
way (``storage``'s one-line ``StoreError``) and the engine's pool reconnects when it is
back. A SQLite store is opened with ``follow_file``: a connection per request, so a file
replaced, deleted or damaged under the server is noticed at the next request.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from ..connectors.net import register_secret
from ..core.errors import StoreUnavailableError, one_line
from ..storage import Store, mask_url

log = logging.getLogger("phase1.api")


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return None


class StoreHandle:
    def __init__(self, url: str):
        self.url = url
        self.masked_url = mask_url(url)
        register_secret(_password(url))  # masked in every log record, tracebacks included
        self._store: Store | None = None
        self._lock = threading.Lock()

    def get(self) -> Store:
        """The open store; ``StoreUnavailableError`` (503) while it cannot be opened."""
        store = self._store
        if store is not None:
            return store
        with self._lock:
            if self._store is None:
                self._store = Store.from_url(self.url, follow_file=True)
                log.info("store open: %s", self.masked_url)
            return self._store

    def try_open(self) -> str | None:
        """Open now if possible; the one-line reason when not (the API still starts)."""
        try:
            self.get()
        except StoreUnavailableError as exc:
            return one_line(exc)
        return None

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.dispose()
                self._store = None


__all__ = ["StoreHandle"]
