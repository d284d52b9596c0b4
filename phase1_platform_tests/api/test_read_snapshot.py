"""``Store.read_snapshot``: one consistent, read-only view for every repository read inside
it, never blocking a writer (SQLite WAL, PostgreSQL REPEATABLE READ READ ONLY); and
``follow_file``: a SQLite reader that follows its file instead of a pooled old copy."""

from __future__ import annotations

import pytest

from phase1_platform.app.read_bars import BarSelection, read_page
from phase1_platform.core.partition import Partition
from phase1_platform.storage import BarRepository, Store, StoreError
from phase1_platform.storage.reads import BarReads

from ..support.stores import BACKENDS, make_url
from .harness import AAPL_CSV, DAY, replay_into

PART = Partition(DAY, "AAPL")


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path) -> str:
    url = make_url(request.param, tmp_path, request)
    replay_into(url, [AAPL_CSV], tmp_path / "aapl.csv", "1m,1h")
    return url


def test_reads_inside_a_snapshot_see_one_state_while_a_writer_commits(url):
    reader, writer = Store.from_url(url), Store.from_url(url)
    try:
        bars = BarRepository(writer).read_partition(PART)
        with reader.read_snapshot():
            before = BarReads(reader).counts("AAPL", PART.start_ns, PART.end_ns)
            # the writer is not blocked by the open read transaction, and commits
            assert BarRepository(writer).write_partition(bars.iloc[:3], PART, "default", "t") == 3
            during = BarReads(reader).counts("AAPL", PART.start_ns, PART.end_ns)
            assert len(BarRepository(reader).read_partition(PART)) == sum(before.values())
            with pytest.raises(RuntimeError, match="read_snapshot"):
                BarRepository(reader).write_partition(bars, PART, "default", "t")
        after = BarReads(reader).counts("AAPL", PART.start_ns, PART.end_ns)
    finally:
        reader.dispose()
        writer.dispose()
    assert during == before and sum(before.values()) == len(bars)
    assert sum(after.values()) == 3


def test_a_page_is_read_in_one_snapshot_and_follows_its_cursor(url):
    store = Store.from_url(url)
    try:
        selection = BarSelection.parse("AAPL", "1m", DAY)
        whole = read_page(store, selection, 10_000).bars
        first = read_page(store, selection, 7)
        rest = read_page(store, selection, 10_000, first.next_cursor)
    finally:
        store.dispose()
    assert first.next_cursor.ts == int(whole["ts"].iat[6])
    assert list(first.bars["ts"]) + list(rest.bars["ts"]) == list(whole["ts"])
    assert rest.next_cursor is None


def test_follow_file_sees_a_replaced_file_and_never_recreates_a_deleted_one(tmp_path):
    db = tmp_path / "s.sqlite"
    url = f"sqlite:///{db}"
    replay_into(url, [AAPL_CSV], tmp_path / "a.csv", "1h")
    follower, pooled = Store.from_url(url, follow_file=True), Store.from_url(url)
    try:
        assert BarReads(follower).counts("AAPL", PART.start_ns, PART.end_ns) == {"1h": 8}
        assert BarReads(pooled).counts("AAPL", PART.start_ns, PART.end_ns) == {"1h": 8}
        for f in tmp_path.glob("s.sqlite*"):
            f.unlink()
        replay_into(url, [AAPL_CSV], tmp_path / "b.csv", "1d")  # another store, same path
        assert BarReads(follower).counts("AAPL", PART.start_ns, PART.end_ns) == {"1d": 1}
        # what it avoids: a pooled connection keeps reading the deleted file
        assert BarReads(pooled).counts("AAPL", PART.start_ns, PART.end_ns) == {"1h": 8}
        for f in tmp_path.glob("s.sqlite*"):
            f.unlink()
        with pytest.raises(StoreError, match="cannot open database"):
            BarReads(follower).counts("AAPL", PART.start_ns, PART.end_ns)
        assert not db.exists()
    finally:
        follower.dispose()
        pooled.dispose()
