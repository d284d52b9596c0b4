"""BarCache (async LRU) and TieredBarStore (cache in front of a real SQLite store)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from phase1_platform.core import BarEngine, CanonicalExporter, TickNormalizer, trading_day_window
from phase1_platform.storage import BarCache, BarRepository, Store, TieredBarStore
from phase1_platform.storage.cache import BarKey

DAY = "2013-10-07"


def run(coro):
    return asyncio.run(coro)


# ---------------------------------------------------------------------------- BarCache
def test_lru_evicts_least_recently_used_first():
    async def scenario():
        cache = BarCache(maxsize=3)
        for k in "abc":
            await cache.put(k, k.upper())
        assert await cache.get("a") == "A"  # a is now the most recent
        await cache.put("d", "D")  # evicts b, the least recently used
        assert cache.keys() == ["c", "a", "d"]
        assert await cache.get("b") is None
        await cache.put("c", "C2")  # an update refreshes recency
        await cache.put("e", "E")  # evicts a
        assert cache.keys() == ["d", "c", "e"]
        assert await cache.get("c") == "C2"
        stats = cache.stats
        assert (stats.hits, stats.misses, stats.evictions, stats.size) == (2, 1, 2, 3)
        await cache.clear()
        assert len(cache) == 0 and await cache.get("c") is None

    run(scenario())


def test_cache_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        BarCache(maxsize=0)


def test_concurrent_gets_and_puts_keep_the_cache_consistent():
    async def scenario():
        cache = BarCache(maxsize=50)

        async def task(i: int) -> None:
            for j in range(200):
                key = (i * 7 + j) % 80
                if await cache.get(key) is None:
                    await cache.put(key, key)
                await asyncio.sleep(0)

        await asyncio.gather(*(task(i) for i in range(20)))
        stats = cache.stats
        assert stats.hits + stats.misses == 20 * 200
        assert stats.size == 50 == len(set(cache.keys()))
        keys = cache.keys()
        assert [await cache.get(k) for k in keys] == keys

    run(scenario())


def test_invalidate_drops_matching_entries():
    async def scenario():
        cache = BarCache()
        await cache.put(("SPY", 1), 1)
        await cache.put(("QQQ", 1), 2)
        assert await cache.invalidate(lambda k: k[0] == "SPY") == 1
        assert cache.keys() == [("QQQ", 1)]

    run(scenario())


# ------------------------------------------------------------------------- TieredBarStore
def day_bars(seed: int, n: int = 2000, symbol: str = "SPY") -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    start = trading_day_window(DAY)[0] + (9 * 3600 + 1800) * 10**9
    ts = start + np.sort(rng.integers(0, 23_400 * 10**9, n))
    raw = pd.DataFrame({
        "timestamp": pd.to_datetime(ts, utc=True),
        "symbol": symbol,
        "price": 100 + np.round(rng.normal(0, 1, n), 2),
        "size": rng.integers(1, 100, n).astype(float),
    })
    return BarEngine().build(TickNormalizer().normalize(raw).ticks, "1m,5m,1d")


class CountingRepository(BarRepository):
    def __init__(self, store):
        super().__init__(store)
        self.reads = 0

    def read(self, *args, **kwargs):
        self.reads += 1
        return super().read(*args, **kwargs)


@pytest.fixture
def tiered(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path / 'cache.sqlite'}")
    yield TieredBarStore(CountingRepository(store), BarCache(maxsize=8))
    store.dispose()


def test_tiered_reads_database_then_cache(tiered):
    old = day_bars(1)
    start, end = trading_day_window(DAY)
    tiered.repository.write_partition(old, "SPY", start, end, "default", "t")

    async def scenario():
        cold = await tiered.read("SPY", ["1m"], start, end)
        warm = await tiered.read(["SPY"], ["1m"], start, end)
        assert tiered.repository.reads == 1
        assert (tiered.cache.hits, tiered.cache.misses) == (1, 1)
        expected = old[old["timeframe"] == "1m"].reset_index(drop=True)
        pd.testing.assert_frame_equal(cold, expected)
        pd.testing.assert_frame_equal(warm, expected)
        warm.loc[0, "close"] = -1.0  # a caller's change never reaches the cache
        again = await tiered.read("SPY", ["1m"], start, end)
        pd.testing.assert_frame_equal(again, expected)

    run(scenario())


def test_concurrent_reads_of_one_key_share_one_query(tiered):
    bars = day_bars(2)
    start, end = trading_day_window(DAY)
    tiered.repository.write_partition(bars, "SPY", start, end, "default", "t")

    async def scenario():
        results = await asyncio.gather(*(tiered.read("SPY", None, start, end)
                                         for _ in range(10)))
        assert tiered.repository.reads == 1
        for r in results:
            pd.testing.assert_frame_equal(r, bars)

    run(scenario())


def test_partition_rewrite_invalidates_and_writes_through(tiered):
    old, new = day_bars(3), day_bars(4, n=500)
    start, end = trading_day_window(DAY)

    async def scenario():
        await tiered.write_partition(old, "SPY", start, end, "default", "t")
        qqq = day_bars(5, symbol="QQQ")
        await tiered.write_partition(qqq, "QQQ", start, end, "default", "t")
        assert len(await tiered.read("SPY", ["1m"], start, end)) == (old["timeframe"] == "1m").sum()
        await tiered.read("QQQ", ["1m"], start, end)
        reads = tiered.repository.reads
        await tiered.write_partition(new, "SPY", start, end, "default", "t")
        keys = tiered.cache.keys()
        assert BarKey.of("SPY", ["1m"], start, end) not in keys  # invalidated
        assert BarKey.of("QQQ", ["1m"], start, end) in keys  # another symbol: kept
        whole = await tiered.read("SPY", None, start, end)  # written through: no query
        assert tiered.repository.reads == reads
        assert CanonicalExporter(whole).to_bytes() == CanonicalExporter(new).to_bytes()
        one = await tiered.read("SPY", ["1m"], start, end)
        pd.testing.assert_frame_equal(one, new[new["timeframe"] == "1m"].reset_index(drop=True))
        stored = tiered.repository.read("SPY", None, start, end)
        pd.testing.assert_frame_equal(stored, whole)

    run(scenario())


def test_read_racing_a_rewrite_does_not_cache_stale_bars(tiered):
    old, new = day_bars(6), day_bars(7, n=300)
    start, end = trading_day_window(DAY)
    tiered.repository.write_partition(old, "SPY", start, end, "default", "t")
    repo = tiered.repository
    real_read = BarRepository.read

    async def scenario():
        import threading

        entered, release = threading.Event(), threading.Event()

        def slow_read(*args, **kwargs):
            result = real_read(repo, *args, **kwargs)  # reads the old version
            entered.set()
            release.wait(10)
            return result

        repo.read = slow_read
        reader = asyncio.create_task(tiered.read("SPY", ["1m"], start, end))
        await asyncio.to_thread(entered.wait, 10)
        await tiered.write_partition(new, "SPY", start, end, "default", "t")
        release.set()
        stale = await reader
        assert len(stale) == (old["timeframe"] == "1m").sum()  # it began before the write
        del repo.read
        fresh = await tiered.read("SPY", ["1m"], start, end)
        pd.testing.assert_frame_equal(fresh, new[new["timeframe"] == "1m"].reset_index(drop=True))

    run(scenario())
