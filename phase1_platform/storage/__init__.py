"""Store of record: ticks, bars, quarantine, watermarks and check results in SQLite or PostgreSQL
(ticks optionally in a Parquet dataset: ``Store.ticks``, ``tick_store``, ``parquet_ticks``).

``Store.from_url(url)`` opens (and migrates) the database; the repositories read and
write the core's frames; the tables stay private to this package. See DESIGN sections
3, 6, 7 and 9.
"""

from .checks import CheckResultRepository, StoredCheck
from .reads import BarCursor, BarReads, QuarantineCursor, QuarantineReads
from .repositories import (
    BarRepository,
    ConcurrentBuildError,
    LandingRepository,
    Landings,
    QuarantineRepository,
    WatermarkRepository,
)
from .store import DEFAULT_URL, Store, StoreError, mask_url, resolve_url
from .tick_store import TickStore
from .ticks import LandResult, TickRepository

__all__ = [
    "DEFAULT_URL",
    "BarCursor",
    "BarReads",
    "BarRepository",
    "CheckResultRepository",
    "ConcurrentBuildError",
    "LandResult",
    "LandingRepository",
    "Landings",
    "QuarantineCursor",
    "QuarantineReads",
    "QuarantineRepository",
    "Store",
    "StoreError",
    "StoredCheck",
    "TickRepository",
    "TickStore",
    "WatermarkRepository",
    "mask_url",
    "resolve_url",
]
