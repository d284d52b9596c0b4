"""Store of record: ticks, bars, quarantine and watermarks in SQLite or PostgreSQL.

``Store.from_url(url)`` opens (and migrates) the database; the repositories read and
write the core's frames; ``BarCache`` and ``TieredBarStore`` put an async LRU cache in
front of the bars. See DESIGN sections 6, 7 and 9.
"""

from .cache import BarCache, BarKey, CacheStats, TieredBarStore
from .repositories import (
    BarRepository,
    ConcurrentBuildError,
    LandingRepository,
    Landings,
    QuarantineRepository,
    TickRepository,
    WatermarkRepository,
)
from .store import DEFAULT_URL, Store, StoreError, mask_url, resolve_url

__all__ = [
    "DEFAULT_URL",
    "BarCache",
    "BarKey",
    "BarRepository",
    "CacheStats",
    "ConcurrentBuildError",
    "LandingRepository",
    "Landings",
    "QuarantineRepository",
    "Store",
    "StoreError",
    "TickRepository",
    "TieredBarStore",
    "WatermarkRepository",
    "mask_url",
    "resolve_url",
]
