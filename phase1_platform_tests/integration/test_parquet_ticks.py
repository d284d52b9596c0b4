"""The Parquet tick store (``TICK_STORE=parquet:///PATH``, ``storage.parquet_ticks``): its
hive layout and the SQL store's answers; writes whole or not at all (a failed write, a
rolled-back transaction, a process killed between the renames and the commit of the
landing rows); writers of one partition in two processes lose nothing. The determinism
tests run on it through ``support.stores.TICK_BACKENDS``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

from phase1_platform.core.partition import Partition
from phase1_platform.storage import (
    LandingRepository,
    Store,
    StoreError,
    TickRepository,
    TickStore,
    parquet_ticks,
)
from phase1_platform.storage.parquet_ticks import FILE, JOURNALS, ParquetTicks

from .test_store import DAY, normalized, raw_ticks

DAY2 = "2013-10-08"
ROOT = parquet_ticks.__file__.rsplit("/phase1_platform/", 1)[0]


def ticks_of(symbol: str = "SPY", day: str = DAY, n: int = 400, seed: int = 0,
             source: str = "a.csv") -> pd.DataFrame:
    return normalized(raw_ticks(day=day, symbol=symbol, n=n, seed=seed, source=source)).ticks


@pytest.fixture
def stores(tmp_path):
    """(SQL store, Parquet store) over fresh SQLite files."""
    sql = Store.from_url(f"sqlite:///{tmp_path / 'sql.sqlite'}", tick_store="sql")
    pq = Store.from_url(f"sqlite:///{tmp_path / 'pq.sqlite'}",
                        tick_store=f"parquet://{tmp_path / 'ticks'}")
    yield sql, pq
    sql.dispose()
    pq.dispose()


def files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                  and p.name != ".lock")


def test_layout_is_a_hive_dataset_and_answers_equal_the_sql_store(stores, tmp_path):
    sql, pq = stores
    assert isinstance(sql.ticks, TickRepository) and isinstance(pq.ticks, ParquetTicks)
    assert isinstance(sql.ticks, TickStore) and isinstance(pq.ticks, TickStore)
    batch = pd.concat([ticks_of("SPY"), ticks_of("QQQ", seed=1), ticks_of("SPY", DAY2, seed=2)],
                      ignore_index=True).sample(frac=1, random_state=3)  # any order
    for store in stores:
        got = store.ticks.land(batch)
        assert (got.new, got.already, got.refused) == (len(batch), 0, 0)
    root = tmp_path / "ticks"
    assert files(root) == [f"date={DAY}/symbol=QQQ/{FILE}", f"date={DAY}/symbol=SPY/{FILE}",
                           f"date={DAY2}/symbol=SPY/{FILE}"]
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == len(batch)
    assert sorted(set(table.column("symbol").to_pylist())) == ["QQQ", "SPY"]
    parts = [Partition(DAY, "SPY"), Partition(DAY, "QQQ"), Partition(DAY2, "SPY")]
    for part in parts:
        pd.testing.assert_frame_equal(pq.ticks.read(part), sql.ticks.read(part))
        assert pq.ticks.count_canonical(part) == sql.ticks.count_canonical(part) > 0
    pd.testing.assert_frame_equal(pq.ticks.read_many(parts), sql.ticks.read_many(parts))
    since = int(batch["ts"].astype("int64").median())
    pd.testing.assert_frame_equal(pq.ticks.read_since(parts[0], since),
                                  sql.ticks.read_since(parts[0], since))
    assert pq.ticks.symbols() == sql.ticks.symbols() == {"SPY", "QQQ"}
    assert pq.ticks.count("SPY") == sql.ticks.count("SPY") and pq.ticks.count() == len(batch)
    pd.testing.assert_frame_equal(LandingRepository(pq).spans(), LandingRepository(sql).spans())
    assert files(root / JOURNALS) == []


def test_a_failed_write_leaves_the_partition_and_no_temp_file(stores, tmp_path, monkeypatch):
    _, store = stores
    first = ticks_of(n=200)
    store.ticks.land(first)
    real = parquet_ticks.pq.write_table

    def full_disk(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(parquet_ticks.pq, "write_table", full_disk)
    more = ticks_of(n=300, seed=5, source="b.csv")
    with pytest.raises(StoreError) as err:
        store.ticks.land(more)
    message = str(err.value)
    assert "\n" not in message and "No space left on device" in message
    assert str(tmp_path / "ticks") in message
    part = Partition(DAY, "SPY")
    pd.testing.assert_frame_equal(store.ticks.read(part), first.reset_index(drop=True))
    assert files(tmp_path / "ticks") == [f"date={DAY}/symbol=SPY/{FILE}"]  # no temp, no journal
    assert len(LandingRepository(store).spans()) == 1  # the first landing's only
    monkeypatch.setattr(parquet_ticks.pq, "write_table", real)
    assert store.ticks.land(more).new == len(more)  # the partition is not left locked
    assert store.ticks.count_canonical(part) == len(first) + len(more)


def test_a_rolled_back_transaction_lands_nothing(stores, tmp_path):
    _, store = stores
    ticks = ticks_of()
    with pytest.raises(RuntimeError, match="bar write failed"), store.transaction():
        assert store.ticks.land(ticks).new == len(ticks)
        raise RuntimeError("bar write failed")
    assert store.ticks.count() == 0 and len(LandingRepository(store).spans()) == 0
    assert files(tmp_path / "ticks") == []
    with store.transaction():  # two landings of one partition in one transaction
        assert store.ticks.land(ticks.iloc[:100]).new == 100
        again = store.ticks.land(ticks)
        assert (again.new, again.already) == (len(ticks) - 100, 100)
    pd.testing.assert_frame_equal(store.ticks.read(Partition(DAY, "SPY")),
                                  ticks.reset_index(drop=True))
    assert files(tmp_path / JOURNALS) == []


CRASH = textwrap.dedent("""
    import os, sys
    import pandas as pd
    from phase1_platform.storage import Store
    from phase1_platform.storage.parquet_ticks import ParquetTicks
    store = Store.from_url(sys.argv[1], tick_store=sys.argv[2])
    ParquetTicks.store_rows = lambda self, spans: os._exit(9)  # dies before the commit
    store.ticks.land(pd.read_pickle(sys.argv[3]))
""")


def test_a_crash_between_the_renames_and_the_commit_is_logged_by_the_next_landing(tmp_path):
    url, spec = f"sqlite:///{tmp_path / 'store.sqlite'}", f"parquet://{tmp_path / 'ticks'}"
    store = Store.from_url(url, tick_store=spec)
    part = Partition(DAY, "SPY")
    ticks = ticks_of()
    ticks.to_pickle(tmp_path / "ticks.pkl")
    done = subprocess.run([sys.executable, "-c", CRASH, url, spec, str(tmp_path / "ticks.pkl")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr[-2000:]
    # the ticks are stored, their landing row is not: the journal names it
    assert store.ticks.count() == len(ticks)
    assert len(LandingRepository(store).spans()) == 0
    assert len(files(tmp_path / "ticks" / JOURNALS)) == 1
    assert LandingRepository(store).pending(part).first_ns is None  # no build would look
    again = store.ticks.land(ticks)  # the crashed landing's retry: nothing stored twice
    assert (again.new, again.already) == (0, len(ticks))
    spans = LandingRepository(store).spans()
    assert spans[["symbol", "lo_ts", "hi_ts"]].values.tolist() == [
        ["SPY", int(ticks["ts"].min().value), int(ticks["ts"].max().value)]]
    assert files(tmp_path / "ticks" / JOURNALS) == []
    assert LandingRepository(store).pending(part).first_ns == int(ticks["ts"].min().value)
    store.dispose()


def _land_slices(url: str, spec: str, path: str, start: int) -> int:
    store = Store.from_url(url, tick_store=spec)
    ticks = pd.read_pickle(path)
    new = sum(store.ticks.land(ticks.iloc[i:i + 25]).new for i in range(start, len(ticks), 50))
    store.dispose()
    return new


def test_two_processes_writing_one_partition_lose_nothing(tmp_path):
    url, spec = f"sqlite:///{tmp_path / 'store.sqlite'}", f"parquet://{tmp_path / 'ticks'}"
    Store.from_url(url, tick_store=spec).dispose()
    ticks = ticks_of(n=1000)
    ticks.to_pickle(tmp_path / "ticks.pkl")
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        new = list(pool.map(_land_slices, [url] * 2, [spec] * 2,
                            [str(tmp_path / "ticks.pkl")] * 2, [0, 25]))
    assert new == [500, 498]  # the two rows raw_ticks spoils fall in the second's slices
    store = Store.from_url(url, tick_store=spec)
    pd.testing.assert_frame_equal(store.ticks.read(Partition(DAY, "SPY")),
                                  ticks.reset_index(drop=True))
    assert [p.name for p in (tmp_path / "ticks" / f"date={DAY}" / "symbol=SPY").iterdir()
            if p.name != ".lock"] == [FILE]
    store.dispose()


@pytest.mark.parametrize("spec", ["parquet://relative/ticks", "s3://bucket/ticks", "parquet:"])
def test_a_bad_tick_store_setting_is_one_line(tmp_path, spec):
    with pytest.raises(StoreError) as err:
        Store.from_url(f"sqlite:///{tmp_path / 'store.sqlite'}", tick_store=spec)
    assert str(err.value).startswith(f"invalid tick store {spec!r}: set TICK_STORE")


def test_a_reader_sees_every_landing_whole_while_a_writer_lands(stores):
    """Reads racing landings of the same partition: each sees the ticks of a whole number
    of landings (a prefix of them, landed in time order), never part of a file."""
    _, store = stores
    ticks = ticks_of(n=1200).reset_index(drop=True)
    part = Partition(DAY, "SPY")
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read_while_landing() -> None:
        try:
            while not done.is_set():
                got = store.ticks.read(part)
                pd.testing.assert_frame_equal(got, ticks.iloc[:len(got)])
                assert len(got) % 100 == 0 or len(got) == len(ticks)
                assert store.ticks.count_canonical(part) >= len(got)
                seen.append(len(got))
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test below
            errors.append(exc)

    reader = threading.Thread(target=read_while_landing)
    reader.start()
    try:
        for i in range(0, len(ticks), 100):
            assert store.ticks.land(ticks.iloc[i:i + 100]).new == len(ticks.iloc[i:i + 100])
    finally:
        done.set()
        reader.join(60)
    if errors:
        raise errors[0]
    assert seen == sorted(seen) and len(set(seen)) > 2  # it did see landings in between
