"""The stored ticks as every bar build reads them: the landed ticks with the trade
amendments applied (``core.amendments``).

The ticks (``Store.ticks``: the SQL table or the Parquet dataset) stay as they landed;
the amendments log (``storage.AmendmentRepository``) is read beside them and applied
here, so the batch path (``app.build``, ``app.run_build``, ``phase1 replay
--database-url``), the parity judge and the live path (seeding and restating its
streaming bars) all build from the same amended ticks and agree byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..core.amendments import apply_amendments
from ..core.partition import Partition
from ..storage import AmendmentRepository, Store


def _amended(store: Store, ticks: pd.DataFrame, symbols, start_ns: int, end_ns: int
             ) -> pd.DataFrame:
    if len(ticks) == 0:
        return ticks
    log = AmendmentRepository(store).read(symbols, start_ns, end_ns)
    return apply_amendments(ticks, log)


def read_partition(store: Store, part: Partition) -> pd.DataFrame:
    """The partition's landed ticks, amended (``TickStore.read``'s frame)."""
    ticks = store.ticks.read(part)
    return _amended(store, ticks, part.symbol, part.start_ns, part.end_ns)


def read_since(store: Store, part: Partition, since_ns: int, until_ns: int | None = None
               ) -> pd.DataFrame:
    """The partition's landed ticks in [since_ns, until_ns or its end), amended."""
    ticks = store.ticks.read_since(part, since_ns, until_ns)
    end_ns = part.end_ns if until_ns is None else min(int(until_ns), part.end_ns)
    return _amended(store, ticks, part.symbol, since_ns, end_ns)


def read_many(store: Store, parts: Sequence[Partition]) -> pd.DataFrame:
    """The landed ticks of several partitions, amended (``TickStore.read_many``)."""
    ticks = store.ticks.read_many(parts)
    return _amended(store, ticks, {p.symbol for p in parts}, min(p.start_ns for p in parts),
                    max(p.end_ns for p in parts))


def is_amended(store: Store, part: Partition) -> bool:
    """Whether any trade of the partition is cancelled or corrected."""
    return AmendmentRepository(store).count(part) > 0


__all__ = ["is_amended", "read_many", "read_partition", "read_since"]
