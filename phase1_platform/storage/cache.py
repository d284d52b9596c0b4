"""``BarCache`` (async LRU) and ``TieredBarStore`` (cache in front of the database).

BarCache is bounded by entry count, evicts the least recently used entry, counts hits
and misses, and is safe under concurrent tasks (and threads): every critical section
is a few dictionary operations under a lock and never awaits.

TieredBarStore reads the cache first, then the database (in a worker thread, so the
event loop is never blocked); concurrent reads of the same missing key share one
database query. Writes go to the database, then to the cache (write-through); a
partition rewrite or an upsert invalidates every cached result it overlaps, and a
read that raced with a write never caches the stale result it fetched.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..core.engine import sort_bars
from ..core.schema import BAR_COLUMNS
from .repositories import BarRepository

_MISSING = object()


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    evictions: int
    size: int
    maxsize: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class BarCache:
    """Bounded async LRU cache."""

    def __init__(self, maxsize: int = 256):
        if int(maxsize) < 1:
            raise ValueError(f"cache size must be at least 1, got {maxsize}")
        self.maxsize = int(maxsize)
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    async def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING:
                self.misses += 1
                return default
            self._data.move_to_end(key)
            self.hits += 1
            return value

    async def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
                self.evictions += 1

    async def delete(self, key: Hashable) -> bool:
        with self._lock:
            return self._data.pop(key, _MISSING) is not _MISSING

    async def invalidate(self, predicate: Callable[[Hashable], bool]) -> int:
        """Drop every entry whose key satisfies ``predicate``; returns how many."""
        with self._lock:
            doomed = [k for k in self._data if predicate(k)]
            for k in doomed:
                del self._data[k]
            return len(doomed)

    async def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self.hits, self.misses, self.evictions, len(self._data),
                              self.maxsize)


@dataclass(frozen=True)
class BarKey:
    """Cache key of one read: symbols, timeframes (None = all) and [start, end)."""

    symbols: tuple[str, ...]
    timeframes: tuple[str, ...] | None
    start_ns: int
    end_ns: int

    @classmethod
    def of(cls, symbols, timeframes, start_ns: int, end_ns: int) -> BarKey:
        syms = (symbols,) if isinstance(symbols, str) else tuple(sorted(set(symbols)))
        tfs = None if timeframes is None else tuple(sorted(set(timeframes)))
        return cls(syms, tfs, int(start_ns), int(end_ns))

    def overlaps(self, symbols: Iterable[str], start_ns: int, end_ns: int) -> bool:
        return (not set(self.symbols).isdisjoint(symbols)
                and self.start_ns < end_ns and start_ns < self.end_ns)


class TieredBarStore:
    """Bars through an async LRU cache in front of a ``BarRepository``."""

    def __init__(self, repository: BarRepository, cache: BarCache | None = None):
        self.repository = repository
        self.cache = cache if cache is not None else BarCache()
        self._generation = 0
        self._inflight: dict[BarKey, asyncio.Future] = {}

    async def read(self, symbols: str | Iterable[str], timeframes: Iterable[str] | None,
                   start_ns: int, end_ns: int) -> pd.DataFrame:
        key = BarKey.of(symbols, timeframes, start_ns, end_ns)
        cached = await self.cache.get(key, _MISSING)
        if cached is not _MISSING:
            return cached.copy(deep=False)  # copy-on-write: the cached frame stays intact
        pending = self._inflight.get(key)
        if pending is not None:
            return (await asyncio.shield(pending)).copy(deep=False)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        generation = self._generation
        try:
            bars = await asyncio.to_thread(
                self.repository.read, list(key.symbols),
                None if key.timeframes is None else list(key.timeframes),
                key.start_ns, key.end_ns,
            )
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._inflight.pop(key, None)
        if generation == self._generation:  # no write overlapped the query
            await self.cache.put(key, bars)
        future.set_result(bars)
        return bars.copy(deep=False)

    async def invalidate(self, symbols: str | Iterable[str], start_ns: int, end_ns: int) -> int:
        symbols = {symbols} if isinstance(symbols, str) else set(symbols)
        self._generation += 1
        return await self.cache.invalidate(
            lambda k: isinstance(k, BarKey) and k.overlaps(symbols, start_ns, end_ns)
        )

    async def write_partition(self, bars: pd.DataFrame, symbol: str, start_ns: int,
                              end_ns: int, rule_set: str, source: str) -> int:
        """Rewrite a partition in the database, then refresh the cache (write-through)."""
        self._generation += 1
        try:
            n = await asyncio.to_thread(self.repository.write_partition, bars, symbol,
                                        start_ns, end_ns, rule_set, source)
        finally:
            await self.invalidate(symbol, start_ns, end_ns)
        stored = sort_bars(bars[list(BAR_COLUMNS)].astype(BAR_COLUMNS))
        await self.cache.put(BarKey.of(symbol, None, start_ns, end_ns), stored)
        return n

    async def upsert(self, bars: pd.DataFrame, rule_set: str, source: str) -> int:
        self._generation += 1
        try:
            return await asyncio.to_thread(self.repository.upsert, bars, rule_set, source)
        finally:
            if len(bars):
                ts = bars["ts"].to_numpy("int64")
                await self.invalidate(set(bars["symbol"].astype(str)), int(ts.min()),
                                      int(ts.max()) + 1)
