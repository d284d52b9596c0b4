"""What the live automation reads from the store of record: the ingestion service's
watermarks, the pending tick landings and the symbols seen, through repositories only.

The readers open the store **without migrating it** (a schema change is an operator's
decision, ``phase1 db upgrade``, never a side effect of a sensor's 15-second poll) and
close it before returning. A store that cannot serve them is a ``StoreNotReadyError`` (a
``core.errors.StoreUnavailableError``): the SQLite file does not exist (it is not
created), or the schema is not at the head revision (empty, or behind). The Dagster
sensors turn exactly these user errors into a one-line ``SkipReason``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from ..core.errors import StoreUnavailableError
from ..storage import LandingRepository, Store, WatermarkRepository
from ..storage.store import mask_url, resolve_url

UPGRADE_FIX = "run `phase1 db upgrade` (with the same DATABASE_URL)"


class StoreNotReadyError(StoreUnavailableError):
    """The store exists but is not usable by a sensor yet (missing or not at head)."""


@dataclass(frozen=True)
class Watermark:
    """The latest tick time the ingestion service landed for one (source, symbol)."""

    source: str
    symbol: str
    ts: int

    @property
    def cursor_key(self) -> str:
        return f"{self.source}|{self.symbol}"


@dataclass(frozen=True)
class IngestionState:
    """One consistent look at what ingestion landed and the bars not rebuilt yet."""

    watermarks: list[Watermark]  # by source, then symbol
    pending: pd.DataFrame  # every pending tick landing: id, symbol, lo_ts, hi_ts (by id)


def _missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL when it does not exist (opening it would create it)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # Store.from_url reports the bad URL
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


@contextmanager
def open_store_at_head(url: str | None) -> Iterator[Store]:
    """The store at ``url`` (None: ``DATABASE_URL``, else the default) opened without
    migrating; ``StoreNotReadyError`` when it is missing or its schema is not at head."""
    raw = resolve_url(url)
    missing = _missing_sqlite_file(raw)
    if missing is not None:
        raise StoreNotReadyError(
            f"database {mask_url(raw)} does not exist (no file {missing}): {UPGRADE_FIX}, "
            "or point DATABASE_URL at the store the ingestion service writes")
    store = Store.from_url(raw, migrate=False)
    try:
        current, head = store.current_revision(), store.head_revision()
        if current != head:
            state = "has no schema" if current is None else f"is at revision {current}"
            raise StoreNotReadyError(
                f"database {store.masked_url} {state}, not at head {head}: {UPGRADE_FIX}")
        yield store
    finally:
        store.dispose()


def read_ingestion_state(url: str | None) -> IngestionState:
    """Every watermark and every pending tick landing of the store at ``url``."""
    with open_store_at_head(url) as store:
        marks = [Watermark(*row) for row in WatermarkRepository(store).all()]
        return IngestionState(marks, LandingRepository(store).spans())


def landed_symbols(url: str | None) -> set[str]:
    """Symbols in the store's landing table and its watermarks (not validated: callers
    do, an invalid symbol must be named, never registered)."""
    with open_store_at_head(url) as store:
        return store.ticks.symbols() | {
            sym for _, sym, _ in WatermarkRepository(store).all()}


__all__ = ["UPGRADE_FIX", "IngestionState", "StoreNotReadyError", "Watermark",
           "landed_symbols", "open_store_at_head", "read_ingestion_state"]
