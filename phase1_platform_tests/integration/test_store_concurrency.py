"""Two processes writing different partitions of one store at the same time.

On each backend: both processes open a fresh database at once (so they race on the
migration too), then land ticks and rewrite bar partitions in a loop. No lock error
("database is locked" on SQLite), no lost row.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback

import pytest

from phase1_platform.core import trading_day_window
from phase1_platform.core.partition import Partition
from phase1_platform.storage import BarRepository, Store

from ..support.stores import TICK_BACKENDS, make_url
from .test_store import bars_of, export_bytes, normalized, raw_ticks

DAYS = ["2013-10-07", "2013-10-08", "2013-10-09", "2013-10-10", "2013-10-11", "2013-10-14"]
ROUNDS = 3


def partition_data(symbol: str, day: str):
    seed = DAYS.index(day) * 10 + (1 if symbol == "SPY" else 2)
    ticks = normalized(raw_ticks(day=day, symbol=symbol, n=2500, seed=seed,
                                 source=f"{symbol}.csv")).ticks
    return ticks, bars_of(ticks)


def worker(url: str, symbol: str, barrier, errors, spans) -> None:
    try:
        data = {day: partition_data(symbol, day) for day in DAYS}
        barrier.wait(120)  # both processes ready: start together
        began = time.time()
        store = Store.from_url(url)
        ticks_repo, bars_repo = store.ticks, BarRepository(store)
        for _ in range(ROUNDS):
            for day in DAYS:
                ticks, bars = data[day]
                ticks_repo.land(ticks)
                bars_repo.write_partition(bars, Partition(day, symbol), "default",
                                          f"proc-{symbol}")
        store.dispose()
        spans.put((began, time.time()))
    except BaseException:  # noqa: BLE001 - reported to the parent
        errors.put(f"{symbol}: {traceback.format_exc()}")
        raise


@pytest.mark.parametrize("backend", TICK_BACKENDS)
def test_two_processes_write_different_partitions(backend, tmp_path, request):
    url = make_url(backend, tmp_path, request)
    ctx = mp.get_context("spawn")
    barrier, errors, spans = ctx.Barrier(2), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(url, sym, barrier, errors, spans))
             for sym in ("SPY", "QQQ")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert not problems, "\n".join(problems)
    assert [p.exitcode for p in procs] == [0, 0]
    (a0, a1), (b0, b1) = spans.get(timeout=5), spans.get(timeout=5)
    assert a0 < b1 and b0 < a1, "the two writers did not run at the same time"

    store = Store.from_url(url)
    try:
        for symbol in ("SPY", "QQQ"):
            total = 0
            for day in DAYS:
                ticks, bars = partition_data(symbol, day)
                lo, hi = trading_day_window(day)
                stored = BarRepository(store).read(symbol, None, lo, hi)
                assert export_bytes(stored) == export_bytes(bars), (symbol, day)
                assert len(store.ticks.read(Partition(day, symbol))) == len(ticks)
                total += len(ticks)
            assert store.ticks.count(symbol) == total
    finally:
        store.dispose()
