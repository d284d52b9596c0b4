"""Store of record on SQLite and PostgreSQL: schema, ticks, bars, quarantine, watermarks.

Every backend test runs on a fresh SQLite file and on the machine's PostgreSQL
(127.0.0.1:5432, database ``test``) in a schema of its own, dropped afterwards. When
PostgreSQL is unreachable the PostgreSQL cases are skipped with the reason, except in
CI (env ``CI`` set), where they fail.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from phase1_platform.core import BarEngine, CanonicalExporter, TickNormalizer, trading_day_window
from phase1_platform.core.partition import Partition
from phase1_platform.core.schema import TICK_COLUMNS
from phase1_platform.storage import (
    BarRepository,
    QuarantineRepository,
    Store,
    StoreError,
    WatermarkRepository,
    bulk,
)

from ..support.stores import (
    BACKENDS,
    PG_URL,
    make_url,
    require_postgres,
)

DAY = "2013-10-07"


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path) -> str:
    return make_url(request.param, tmp_path, request)


@pytest.fixture
def store(url):
    s = Store.from_url(url)
    yield s
    s.dispose()


# ----------------------------------------------------------------------------- data
def raw_ticks(day: str = DAY, symbol: str = "SPY", n: int = 3000, seed: int = 0,
              source: str = "feed.csv", trade_ids: bool = False) -> pd.DataFrame:
    """Raw rows of a trading day (regular hours), with some bad ones to quarantine."""
    rng = np.random.default_rng(seed)
    open_ns = trading_day_window(day)[0] + (9 * 3600 + 1800) * 10**9
    ts = open_ns + np.sort(rng.integers(0, 6 * 3600 * 10**9 + 1800 * 10**9, n))
    price = np.round(160 + np.cumsum(rng.normal(0, 0.01, n)), 4)
    size = rng.integers(1, 500, n).astype(float)
    size[::97] = 0.5 + rng.random(len(size[::97]))  # fractional sizes
    frame = pd.DataFrame({
        "timestamp": pd.to_datetime(ts, utc=True).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "symbol": symbol,
        "price": [repr(p) for p in price.tolist()],
        "size": [repr(s) for s in size.tolist()],
        "exchange": rng.choice(["P", "Q", "N"], n),
        "conditions": rng.choice(["", "@", "F", "@ T"], n),
    })
    if trade_ids:
        frame["trade_id"] = [f"{symbol}-{day}-{i}" for i in range(n)]
    frame.loc[5, "price"] = "-1"  # quarantined: price <= 0
    frame.loc[9, "timestamp"] = "2013-10-07 14:00:00"  # quarantined: no zone
    frame["source"] = source
    frame["source_row"] = np.arange(n)
    return frame


def normalized(raw: pd.DataFrame, bad: int = 2):
    result = TickNormalizer().normalize(raw)
    assert len(result.ticks) == len(raw) - bad  # by default the two rows raw_ticks spoils
    return result


def bars_of(ticks: pd.DataFrame, timeframes: str = "1m,5m,15m,1h,1d") -> pd.DataFrame:
    return BarEngine().build(ticks, timeframes)


def export_bytes(bars: pd.DataFrame) -> bytes:
    return CanonicalExporter(bars).to_bytes()


# ---------------------------------------------------------------------------- schema
def test_fresh_database_is_migrated_to_head(store):
    assert store.current_revision() == store.head_revision()
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"ticks", "bars", "quarantine", "watermarks", "alembic_version"} <= names
    assert store.upgrade() == store.head_revision()  # idempotent


def test_sqlite_runs_in_wal_mode_with_busy_timeout(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path / 'wal.sqlite'}")
    with store.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def test_newer_schema_revision_is_refused(url):
    store = Store.from_url(url)
    with store.begin(write=True) as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
    store.dispose()
    with pytest.raises(StoreError) as err:
        Store.from_url(url)
    message = str(err.value)
    assert "ffff_from_the_future" in message and "newer" in message
    assert "\n" not in message


def test_default_url_comes_from_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    store = Store.from_url()
    assert store.dialect == "sqlite" and (tmp_path / "phase1.sqlite").exists()
    target = tmp_path / "env.sqlite"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{target}")
    assert Store.from_url().masked_url == f"sqlite:///{target}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "invalid database URL"),
        ("mysql+nosuchdriver://user:s3cret-pw@db.example/prod", "no driver"),
        ("postgresql+psycopg://user:s3cret-pw@127.0.0.1:1/x", "cannot open database"),
        ("sqlite:////no/such/folder/x.sqlite", "does not exist"),
    ],
)
def test_bad_url_is_one_clear_line_with_password_masked(url, expected):
    with pytest.raises(StoreError) as err:
        Store.from_url(url)
    message = str(err.value)
    assert expected in message
    assert "s3cret-pw" not in message
    assert "\n" not in message
    if "user:" in url:
        assert "user:***@" in message


# ----------------------------------------------------------------------------- ticks
def test_ticks_round_trip_and_land_once(store):
    result = normalized(raw_ticks())
    ticks = result.ticks
    repo = store.ticks
    assert repo.land(ticks).new == len(ticks)
    assert repo.land(ticks).new == 0  # replaying the same file stores its ticks once
    back = repo.read(Partition(DAY, "SPY"))
    pd.testing.assert_frame_equal(back, ticks.reset_index(drop=True))
    assert back.dtypes.to_dict() == {k: pd.Series(dtype=v).dtype for k, v in TICK_COLUMNS.items()}
    assert repo.count("SPY") == len(ticks)


def test_tick_identity_trade_id_and_source_position(store):
    repo = store.ticks
    first = normalized(raw_ticks(n=400, trade_ids=True, source="a.csv")).ticks
    # the same trades delivered by another source: same (symbol, trade_id) -> one trade
    again = first.assign(source="b.csv")
    assert repo.land(first).new == len(first)
    assert repo.land(again).new == 0
    # identical prints without trade id are distinct trades (different source rows)
    raw = raw_ticks(n=50, source="c.csv").iloc[20:22].copy()
    raw["timestamp"] = "2013-10-07T15:00:00.000000Z"
    raw[["price", "size", "exchange", "conditions"]] = ["161", "100", "P", ""]
    twins = normalized(raw, bad=0).ticks
    assert len(twins) == 2
    assert repo.land(twins).new == 2
    assert repo.land(twins).new == 0
    # a file of the same name on another day is other ticks, not a replay
    day2 = normalized(raw_ticks(day="2013-10-08", n=300, source="c.csv")).ticks
    assert repo.land(day2).new == len(day2)
    assert repo.count("SPY") == len(first) + 2 + len(day2)


def test_trade_ids_reused_on_another_day_are_other_trades(store):
    """Vendors restart trade ids every session: the id alone is not an identity."""
    repo = store.ticks
    day1 = normalized(raw_ticks(n=200, trade_ids=True)).ticks
    day2_raw = raw_ticks(day="2013-10-08", n=200, trade_ids=True)
    day2_raw["trade_id"] = [f"SPY-{DAY}-{i}" for i in range(200)]  # day 1's ids again
    day2 = normalized(day2_raw).ticks
    assert set(day2["trade_id"]) & set(day1["trade_id"])
    assert repo.land(day1).new == len(day1)
    assert repo.land(day2).new == len(day2)  # nothing silently dropped as "already landed"
    assert repo.land(day2).new == 0
    pd.testing.assert_frame_equal(repo.read(Partition("2013-10-08", "SPY")),
                                  day2.reset_index(drop=True))


def test_tick_read_is_the_partitions_half_open_window(store):
    start, end = trading_day_window(DAY)
    raw = raw_ticks(n=20).iloc[10:13].copy()
    raw["timestamp"] = [pd.Timestamp(t, tz="UTC").isoformat() for t in (start, end - 1, end)]
    ticks = normalized(raw, bad=0).ticks
    store.ticks.land(ticks)
    back = store.ticks.read(Partition(DAY, "SPY"))
    assert back["ts"].map(lambda t: t.value).tolist() == [start, end - 1]
    assert store.ticks.read(Partition(DAY, "QQQ")).empty


# ------------------------------------------------------------------------------ bars
def test_bars_round_trip_is_bit_exact(store):
    bars = bars_of(normalized(raw_ticks()).ticks)
    start, end = trading_day_window(DAY)
    repo = BarRepository(store)
    assert repo.write_partition(bars, Partition(DAY, "SPY"), "default", "test") == len(bars)
    back = repo.read("SPY", None, start, end)
    pd.testing.assert_frame_equal(back, bars)
    assert export_bytes(back) == export_bytes(bars)
    only = repo.read(["SPY"], ["5m", "1d"], start, end)
    assert set(only["timeframe"]) == {"5m", "1d"}
    assert export_bytes(only) == export_bytes(bars[bars["timeframe"].isin(["5m", "1d"])])


def test_writing_the_same_partition_twice_gives_same_rows_and_hash(store):
    bars = bars_of(normalized(raw_ticks()).ticks)
    start, end = trading_day_window(DAY)
    repo = BarRepository(store)
    repo.write_partition(bars, Partition(DAY, "SPY"), "default", "test")
    first = repo.read("SPY", None, start, end)
    repo.write_partition(bars, Partition(DAY, "SPY"), "default", "test")
    second = repo.read("SPY", None, start, end)
    pd.testing.assert_frame_equal(first, second)
    assert CanonicalExporter(first).compute_hash() == CanonicalExporter(second).compute_hash()
    with store.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM bars")).scalar() == len(bars)


def test_partition_rewrite_replaces_all_its_timeframes_and_nothing_else(store):
    repo = BarRepository(store)
    d1, d2 = trading_day_window(DAY), trading_day_window("2013-10-08")
    spy1 = bars_of(normalized(raw_ticks(seed=1)).ticks)
    spy2 = bars_of(normalized(raw_ticks(day="2013-10-08", seed=2)).ticks)
    qqq1 = bars_of(normalized(raw_ticks(symbol="QQQ", seed=3)).ticks)
    repo.write_partition(spy1, Partition(DAY, "SPY"), "default", "t")
    repo.write_partition(spy2, Partition("2013-10-08", "SPY"), "default", "t")
    repo.write_partition(qqq1, Partition(DAY, "QQQ"), "default", "t")
    fewer = bars_of(normalized(raw_ticks(n=200, seed=4)).ticks, "1m")
    repo.write_partition(fewer, Partition(DAY, "SPY"), "default", "t")
    pd.testing.assert_frame_equal(repo.read("SPY", None, *d1), fewer)
    pd.testing.assert_frame_equal(repo.read("SPY", None, *d2), spy2)
    pd.testing.assert_frame_equal(repo.read("QQQ", None, *d1), qqq1)
    # an empty partition clears it
    repo.write_partition(fewer.iloc[0:0], Partition(DAY, "SPY"), "default", "t")
    assert repo.read("SPY", None, *d1).empty


def test_write_partition_rejects_bars_outside_it(store):
    bars = bars_of(normalized(raw_ticks()).ticks)
    repo = BarRepository(store)
    start, end = trading_day_window("2013-10-08")
    with pytest.raises(ValueError, match="outside"):
        repo.write_partition(bars, Partition("2013-10-08", "SPY"), "default", "t")
    with pytest.raises(ValueError, match="bars of SPY"):
        repo.write_partition(bars, Partition(DAY, "QQQ"), "default", "t")
    with pytest.raises(ValueError, match="unknown timeframe"):
        repo.read("SPY", ["7m"], start, end)


def test_failed_partition_write_leaves_previous_version_intact_and_visible(store, monkeypatch):
    old = bars_of(normalized(raw_ticks(seed=1)).ticks)
    new = bars_of(normalized(raw_ticks(seed=2)).ticks)
    start, end = trading_day_window(DAY)
    repo = BarRepository(store)
    repo.write_partition(old, Partition(DAY, "SPY"), "default", "old")
    old_bytes = export_bytes(repo.read("SPY", None, start, end))

    halfway = threading.Event()
    proceed = threading.Event()
    real_insert = bulk.insert_rows

    def insert_half_then_fail(conn, table, columns, on_conflict=""):
        half = {k: (v[: len(v) // 2] if not hasattr(v, "iloc") else v.iloc[: len(v) // 2])
                for k, v in columns.items()}
        real_insert(conn, table, half, on_conflict)  # old rows deleted, half the new in
        halfway.set()
        proceed.wait(30)
        raise RuntimeError("injected failure in the middle of a partition write")

    monkeypatch.setattr(bulk, "insert_rows", insert_half_then_fail)
    errors: list[BaseException] = []

    def writer():
        try:
            repo.write_partition(new, Partition(DAY, "SPY"), "default", "new")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    assert halfway.wait(30)
    # while the write is open, another reader sees the old version, whole
    during = BarRepository(store).read("SPY", None, start, end)
    assert export_bytes(during) == old_bytes
    proceed.set()
    thread.join(30)
    assert errors and "injected failure" in str(errors[0])
    monkeypatch.setattr(bulk, "insert_rows", real_insert)
    after = repo.read("SPY", None, start, end)
    assert export_bytes(after) == old_bytes


def test_upsert_updates_and_inserts_bars(store):
    bars = bars_of(normalized(raw_ticks()).ticks, "1m")
    repo = BarRepository(store)
    start, end = trading_day_window(DAY)
    assert repo.upsert(bars.iloc[:100], "default", "stream") == 100
    changed = bars.iloc[90:200].copy()
    changed["close"] = changed["close"] + 0.25
    changed["trade_count"] += 1
    repo.upsert(changed, "default", "stream")
    expected = pd.concat([bars.iloc[:90], changed], ignore_index=True)
    pd.testing.assert_frame_equal(repo.read("SPY", ["1m"], start, end), expected)


# ------------------------------------------------------------------ quarantine, marks
def test_quarantine_is_stored_once_per_partition(store):
    result = normalized(raw_ticks())
    q = result.quarantine
    assert len(q) == 2
    repo = QuarantineRepository(store)
    assert repo.add(q, f"{DAY}|SPY") == 2
    assert repo.add(q, f"{DAY}|SPY") == 0
    back = repo.read(f"{DAY}|SPY")
    pd.testing.assert_frame_equal(back, q.reset_index(drop=True), check_like=False)
    assert repo.read("2013-10-08|SPY").empty


def test_watermark_never_moves_backwards(store):
    marks = WatermarkRepository(store)
    assert marks.get("finnhub", "SPY") is None
    assert marks.advance("finnhub", "SPY", 2_000) == 2_000
    assert marks.advance("finnhub", "SPY", 1_000) == 2_000
    assert marks.get("finnhub", "SPY") == 2_000
    assert marks.advance("finnhub", "SPY", 3_000) == 3_000
    assert marks.get("finnhub", "QQQ") is None


# ------------------------------------------------------------------- cross-backend
def test_sqlite_and_postgresql_exports_are_byte_identical(tmp_path, request):
    ticks = normalized(raw_ticks(n=5000, seed=7)).ticks
    bars = bars_of(ticks)
    start, end = trading_day_window(DAY)
    out = {}
    for backend in BACKENDS:
        store = Store.from_url(make_url(backend, tmp_path, request))
        store.ticks.land(ticks)
        stored_ticks = store.ticks.read(Partition(DAY, "SPY"))
        BarRepository(store).write_partition(bars_of(stored_ticks), Partition(DAY, "SPY"),
                                             "default", "test")
        out[backend] = export_bytes(BarRepository(store).read("SPY", None, start, end))
        store.dispose()
    assert out["sqlite"] == out["postgresql"] == export_bytes(bars)


def test_postgresql_schema_missing_is_one_clear_line():
    require_postgres()
    url = f"{PG_URL.replace('postgres@', 'postgres:pw-hidden@')}?options=-csearch_path%3Dno_such"
    with pytest.raises(StoreError) as err:
        Store.from_url(url)
    message = str(err.value)
    assert "cannot migrate database" in message and "schema" in message
    assert "pw-hidden" not in message and "\n" not in message
