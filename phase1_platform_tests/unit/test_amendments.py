"""Trade amendments in the core: ``apply_amendments`` and the streaming restatement.

- ``apply_amendments`` takes cancelled trades out and gives corrected ones their new
  price, size and conditions (the last amendment of a trade decides), by the tick
  identity, leaving everything else as it was;
- property: ticks streamed in any micro-batches, then any set of them cancelled or
  corrected and their minutes restated from the amended ticks (with more ticks streamed
  after), give the very bars ``BarEngine.build`` makes of the amended ticks, and the bars
  left without ticks are named by ``restated_buckets`` (a store deletes them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from phase1_platform.core.amendments import (
    BAD_ACTION,
    BAD_CORRECTION,
    CANCEL,
    CORRECT,
    LOG_COLUMNS,
    NO_TRADE_ID,
    apply_amendments,
    check,
)
from phase1_platform.core.engine import BarEngine
from phase1_platform.core.rules import DEFAULT_RULES
from phase1_platform.core.schema import ts_ns
from phase1_platform.core.streaming import StreamingBarAggregator
from phase1_platform.core.streaming.restate import restated_buckets
from phase1_platform.core.timeframes import NS_PER_MINUTE, parse_timeframes
from phase1_platform_tests.support.hypothesis_ci import bounded

from .test_streaming import VOLUME_ONLY_RULES, make_ticks

TFS = "1m,5m,15m,1h,1d"


def log_of(ticks: pd.DataFrame, rows, action: str, price=None, size=None, conditions=""):
    sub = ticks.iloc[list(rows)]
    n = len(sub)
    return pd.DataFrame({
        "symbol": sub["symbol"].to_numpy(object), "ts": ts_ns(sub["ts"]),
        "trade_id": sub["trade_id"].to_numpy(object), "action": action,
        "price": np.full(n, np.nan) if price is None else price,
        "size": np.full(n, np.nan) if size is None else size,
        "conditions": conditions}).astype(LOG_COLUMNS)


def test_cancel_removes_and_correction_replaces_by_identity():
    ticks = make_ticks(1, n=200, trade_ids=True)
    log = pd.concat([
        log_of(ticks, [3, 4], CANCEL),
        log_of(ticks, [10], CORRECT, [55.5], [12.0], "X"),
        log_of(ticks, [10], CORRECT, [66.5], [13.0], ""),  # the last one decides
    ], ignore_index=True)
    stranger = log_of(ticks, [20], CANCEL).assign(trade_id="nope")
    out = apply_amendments(ticks, pd.concat([log, stranger], ignore_index=True))
    assert len(out) == len(ticks) - 2
    assert not out["trade_id"].isin(ticks["trade_id"].iloc[[3, 4]]).any()
    row = out[out["trade_id"] == ticks["trade_id"].iloc[10]].iloc[0]
    assert (row["price"], row["size"], row["conditions"]) == (66.5, 13.0, "")
    rest = ~ticks["trade_id"].isin(ticks["trade_id"].iloc[[3, 4, 10]])
    pd.testing.assert_frame_equal(out[out["trade_id"] != row["trade_id"]].reset_index(
        drop=True), ticks[rest].reset_index(drop=True))
    assert list(out.columns) == list(ticks.columns) and out.dtypes.equals(ticks.dtypes)


def test_amendments_without_a_matching_identity_change_nothing():
    ticks = make_ticks(2, n=50, trade_ids=True)
    log = log_of(ticks, [1], CANCEL).assign(ts=lambda f: f["ts"] + 1)  # another time
    pd.testing.assert_frame_equal(apply_amendments(ticks, log), ticks)
    plain = make_ticks(2, n=50)  # no trade ids at all
    pd.testing.assert_frame_equal(apply_amendments(plain, log), plain)


def test_check_names_what_cannot_be_used():
    frame = pd.DataFrame({"action": [CANCEL, CORRECT, CORRECT, "undo", CANCEL],
                          "trade_id": ["a", "b", "c", "d", ""],
                          "price": [np.nan, 1.0, 0.0, 1.0, 1.0],
                          "size": [np.nan, 5.0, 5.0, 1.0, 1.0]})
    assert list(check(frame)) == [None, None, BAD_CORRECTION, BAD_ACTION, NO_TRADE_ID]


def random_log(rng, ticks: pd.DataFrame, share: float, conditions: list[str]):
    """(rows hit, their amendments): about ``share`` x 0.3 of ``ticks``, half cancelled,
    half corrected to a random price, size (zero included) and one of ``conditions``."""
    hit = np.flatnonzero(rng.random(len(ticks)) < share * 0.3)
    fixes = rng.random(len(hit)) < 0.5
    n = int(fixes.sum())
    return hit, pd.concat([
        log_of(ticks, hit[~fixes], CANCEL),
        log_of(ticks, hit[fixes], CORRECT, np.round(90 + rng.random(n) * 20, 2),
               rng.choice([0.0, 3.0, 500.0], n), rng.choice(conditions, n))],
        ignore_index=True)


@bounded(25)
@given(seed=st.integers(0, 10_000), n_cut=st.integers(0, 6), share=st.floats(0.0, 0.9),
       volume_only=st.booleans())
def test_restated_minutes_equal_a_build_of_the_amended_ticks(seed, n_cut, share,
                                                             volume_only):
    rng = np.random.default_rng(seed)
    rules = VOLUME_ONLY_RULES if volume_only else DEFAULT_RULES
    ticks = make_ticks(seed, n=600, days=2, trade_ids=True)
    later = rng.random(len(ticks)) < 0.2  # streamed after the amendments
    first = ticks[~later]
    agg = StreamingBarAggregator(TFS, rules=rules)
    cuts = np.sort(rng.choice(np.arange(1, len(first)), n_cut, replace=False))
    for a, b in zip([0, *cuts], [*cuts, len(first)], strict=True):
        agg.on_batch(first.iloc[a:b])
    agg.drain_changes()
    hit, log = random_log(rng, first, share, ["", "X", "F"])
    amended = apply_amendments(ticks, log)
    amended_first = apply_amendments(first, log)
    restated = []
    hit_ts = ts_ns(first["ts"].iloc[hit])
    for symbol in sorted(set(first["symbol"].iloc[hit])):
        mine = first["symbol"].iloc[hit].to_numpy(object) == symbol
        minutes = np.unique(hit_ts[mine] // NS_PER_MINUTE * NS_PER_MINUTE)
        done = agg.restate(symbol, minutes, amended_first)
        restated.append(restated_buckets(symbol, done, parse_timeframes(TFS), "XNYS"))
    drained = agg.drain_changes().bars
    agg.on_batch(ticks[later])
    expected = BarEngine(rules).build(amended, TFS)
    pd.testing.assert_frame_equal(agg.bars(), expected)
    if restated:  # every bar rebuilt is drained or gone from the build
        keys = pd.concat(restated, ignore_index=True)
        now = BarEngine(rules).build(amended_first, TFS)
        have = pd.MultiIndex.from_frame(now[["symbol", "timeframe", "ts"]].astype(
            {"symbol": "str", "timeframe": "str", "ts": "int64"}))
        got = pd.MultiIndex.from_frame(drained[["symbol", "timeframe", "ts"]].astype(
            {"symbol": "str", "timeframe": "str", "ts": "int64"}))
        wanted = pd.MultiIndex.from_frame(keys)
        assert wanted[wanted.isin(have)].isin(got).all()


@bounded(15)
@given(seed=st.integers(0, 10_000), share=st.floats(0.05, 0.9), volume_only=st.booleans())
def test_amendments_restate_information_driven_bars_like_a_build(seed, share, volume_only):
    """A cancel or correction restates every later tick, volume and value bar of its
    session: the streamed bars equal a build of the amended ticks (time bars too)."""
    tfs = "1m,1d,t7,v900,d60000"
    rng = np.random.default_rng(seed)
    rules = VOLUME_ONLY_RULES if volume_only else DEFAULT_RULES
    ticks = make_ticks(seed, n=400, days=2, trade_ids=True)
    later = rng.random(len(ticks)) < 0.2
    first = ticks[~later]
    agg = StreamingBarAggregator(tfs, rules=rules)
    agg.on_batch(first)
    agg.drain_changes()
    hit, log = random_log(rng, first, share, [""])
    amended_first = apply_amendments(first, log)
    hit_ts = ts_ns(first["ts"].iloc[hit])
    for symbol in sorted(set(first["symbol"].iloc[hit])):
        mine = first["symbol"].iloc[hit].to_numpy(object) == symbol
        agg.restate(symbol, np.unique(hit_ts[mine] // NS_PER_MINUTE * NS_PER_MINUTE),
                    amended_first)
    agg.drain_changes()
    agg.on_batch(ticks[later])
    expected = BarEngine(rules).build(apply_amendments(ticks, log), tfs)
    pd.testing.assert_frame_equal(agg.bars(), expected)
