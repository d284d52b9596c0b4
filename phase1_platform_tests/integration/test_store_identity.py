"""The tick identity in the store (DESIGN section 3), on SQLite, PostgreSQL and the Parquet
tick store: ``Store.ticks.land`` refuses conflicting duplicates (defect 3), ``stored_mask``
and ``count_at`` answer the live service's questions without it touching tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phase1_platform.core.partition import Partition
from phase1_platform.core.schema import TICK_COLUMNS
from phase1_platform.storage import LandResult

from .test_store import DAY, normalized, raw_ticks


def spy(n: int = 400, trade_ids: bool = False, source: str = "a.csv") -> pd.DataFrame:
    return normalized(raw_ticks(n=n, trade_ids=trade_ids, source=source)).ticks


@pytest.mark.parametrize("trade_ids", [False, True])
def test_conflicting_duplicate_is_refused_and_returned(store, trade_ids):
    repo = store.ticks
    first = spy(trade_ids=trade_ids)
    landed = repo.land(first)
    assert isinstance(landed, LandResult)
    assert (landed.new, landed.already, landed.refused) == (len(first), 0, 0)
    changed = first.copy()
    changed.loc[[3, 10], "price"] += 0.01
    changed.loc[20, "size"] += 1
    changed.loc[30, "exchange"] = "Z"
    changed.loc[40, "conditions"] = "X"
    changed.loc[50, "sequence"] = 7
    fresh = spy(n=30, trade_ids=trade_ids, source="b.csv")
    fresh["ts"] = fresh["ts"] + pd.Timedelta(days=1)  # other trades, same batch
    batch = pd.concat([changed, fresh], ignore_index=True)
    got = repo.land(batch)
    assert (got.new, got.already, got.refused) == (len(fresh), len(first) - 6, 6)
    refused = got.conflicting.sort_values("source_row").reset_index(drop=True)
    expected = changed.loc[[3, 10, 20, 30, 40, 50]].reset_index(drop=True)
    pd.testing.assert_frame_equal(refused, expected.astype(TICK_COLUMNS))
    # the first arrival stays: the stored partition is exactly the first landing
    pd.testing.assert_frame_equal(repo.read(Partition(DAY, "SPY")),
                                  first.reset_index(drop=True))


def test_conflict_on_the_fast_path_batch_itself(store):
    """Two rows of one identity with different content in one first landing: the first
    is stored, the second refused (nothing stored before: the COPY path)."""
    repo = store.ticks
    ticks = spy(n=100)
    twin = ticks.iloc[[7]].assign(price=ticks["price"].iloc[7] + 1)
    same = ticks.iloc[[8]]
    got = repo.land(pd.concat([ticks, twin, same], ignore_index=True))
    assert (got.new, got.already, got.refused) == (len(ticks), 1, 1)
    assert got.conflicting["price"].tolist() == [ticks["price"].iloc[7] + 1]
    assert repo.count("SPY") == len(ticks)


def test_same_trade_id_other_source_same_content_is_a_duplicate(store):
    repo = store.ticks
    first = spy(trade_ids=True)
    repo.land(first)
    got = repo.land(first.assign(source="other-feed"))
    assert (got.new, got.already, got.refused) == (0, len(first), 0)


def test_stored_mask_by_full_identity(store):
    repo = store.ticks
    for trade_ids in (False, True):
        ticks = spy(n=300, trade_ids=trade_ids, source=f"m{trade_ids}.csv")
        stored = ticks.iloc[::3]
        repo.land(stored)
        probe = ticks.sample(frac=1.0, random_state=1)  # any order
        expect = probe.index.isin(stored.index)
        np.testing.assert_array_equal(repo.stored_mask(probe), expect)
        # same trade id or source row at another time is another trade
        moved = stored.assign(ts=stored["ts"] + pd.Timedelta(microseconds=1))
        assert not repo.stored_mask(moved).any()
        # content does not matter for the mask
        assert repo.stored_mask(stored.assign(price=stored["price"] + 1)).all()
    assert repo.stored_mask(spy(n=10).iloc[0:0]).shape == (0,)


def test_stored_mask_of_a_partly_stored_batch_writes_nothing(store):
    repo = store.ticks
    ticks = spy(n=200)
    repo.land(ticks.iloc[50:120])
    mask = repo.stored_mask(ticks)
    np.testing.assert_array_equal(np.flatnonzero(mask), np.arange(50, 120))
    assert repo.count("SPY") == 70 and repo.stored_mask(ticks).sum() == 70


def test_count_at_counts_id_less_ticks_of_one_instant(store):
    repo = store.ticks
    ticks = spy(n=50, source="live")
    t = ticks["ts"].iloc[10]
    same_ms = ticks.iloc[10:14].assign(ts=t)
    same_ms = same_ms.assign(source_row=np.arange(100, 104))
    repo.land(pd.concat([ticks, same_ms], ignore_index=True))
    expected = int((pd.concat([ticks, same_ms])["ts"] == t).sum())
    assert repo.count_at("SPY", "live", t.value) == expected
    assert repo.count_at("SPY", "other", t.value) == 0
    assert repo.count_at("QQQ", "live", t.value) == 0
