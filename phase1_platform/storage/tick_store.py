"""``TickStore``: where a store's ticks live, as the app layer sees it.

Two implementations give the same answers (columns and dtypes of ``core.schema.TICK_COLUMNS``,
canonical order, the tick identity of ``core.identity``, ``LandResult``'s refusals):

- ``storage.ticks.TickRepository``: the ``ticks`` table of the SQL store (the default);
- ``storage.parquet_ticks.ParquetTicks``: a Parquet dataset partitioned by date and symbol
  (``TICK_STORE=parquet:///PATH``), for scale; bars, landings, quarantine, watermarks and
  checks stay in the SQL store.

``Store.ticks`` is the one way to get a store's (``open_tick_store`` of its setting).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..core.partition import Partition
from .store import TICK_STORE_ENV, StoreError
from .ticks import LandResult

if TYPE_CHECKING:
    from .store import Store

PARQUET_SCHEME = "parquet://"
TICK_STORE_HINT = (f"set {TICK_STORE_ENV} to sql (the database's ticks table) or "
                   "parquet:///ABSOLUTE/PATH (a Parquet dataset)")


@runtime_checkable
class TickStore(Protocol):
    """Normalized ticks by the one tick identity (DESIGN section 3)."""

    def land(self, ticks: pd.DataFrame) -> LandResult:
        """Store the ticks whose identity is new, count repeats with the same content,
        refuse (return) those whose identity is stored with other content; log a landing
        (``tick_landings``) of the batch's span per symbol when any tick was new."""

    def stored_mask(self, ticks: pd.DataFrame) -> np.ndarray:
        """Per row: whether its identity is stored, whatever its content."""

    def count_at(self, symbol: str, source: str, ts_ns: int) -> int:
        """Ticks without a trade id of ``(symbol, source)`` stored at exactly ``ts_ns``."""

    def read(self, part: Partition) -> pd.DataFrame:
        """The partition's ticks (its symbol, ts in its window), canonical order."""

    def read_many(self, parts: Sequence[Partition]) -> pd.DataFrame:
        """The ticks of several partitions, canonical order."""

    def read_since(self, part: Partition, since_ns: int) -> pd.DataFrame:
        """The partition's ticks with ts in [since_ns, end), canonical order."""

    def count_canonical(self, part: Partition) -> int:
        """How many ticks the partition holds (every stored row: unique by identity)."""

    def count(self, symbol: str | None = None) -> int:
        """Ticks stored (of ``symbol``, or all)."""

    def symbols(self) -> set[str]:
        """Every symbol with ticks stored."""


def parquet_root(spec: str) -> Path | None:
    """The dataset folder of a ``parquet:///PATH`` setting; None for ``sql``; a
    ``StoreError`` naming the setting for anything else."""
    if spec.lower() == "sql":
        return None
    if spec.startswith(PARQUET_SCHEME):
        path = spec[len(PARQUET_SCHEME):]
        if path.startswith("/"):
            return Path(path)
    raise StoreError(f"invalid tick store {spec!r}: {TICK_STORE_HINT}")


def open_tick_store(store: Store, spec: str) -> TickStore:
    """The tick store a setting names (``parquet_root``), on ``store`` for the rest."""
    root = parquet_root(spec)
    if root is None:
        from .ticks import TickRepository

        return TickRepository(store)
    from .parquet_ticks import ParquetTicks

    return ParquetTicks(store, root)


__all__ = ["PARQUET_SCHEME", "TickStore", "open_tick_store", "parquet_root"]
