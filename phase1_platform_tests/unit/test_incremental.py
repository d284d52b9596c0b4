"""Incremental recompute (core.incremental): rebuilding from a cut equals a full build."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phase1_platform.core import BarEngine, TickNormalizer, get_rules, trading_day_window
from phase1_platform.core.incremental import (
    incremental_blocker,
    rebuild_since,
    recompute_since,
    volume_only_bars,
)
from phase1_platform.core.schema import ts_ns

from .test_properties import ALL_TIMEFRAMES, ODD_LOTS_NO_PRICE, SETTINGS, tick_frames

DAY = "2013-10-07"
START, END = trading_day_window(DAY)
HOUR = 3600 * 10**9
STANDARD = "1m,5m,15m,1h,1d"


def day_ticks(frame: pd.DataFrame) -> pd.DataFrame:
    one = frame[frame["symbol"] == frame["symbol"].iloc[0]].reset_index(drop=True)
    return TickNormalizer(window=(START, END)).normalize(one, source="gen").ticks


def split_full(full: pd.DataFrame, since: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the bars an incremental rebuild from ``since`` must give, the 1m bars before it)."""
    tf = full["timeframe"].astype(str).to_numpy()
    ts = full["ts"].to_numpy("int64")
    touched = (tf == "1d") | (ts >= since)
    prior = full[(tf == "1m") & (ts < since)].reset_index(drop=True)
    return full[touched].reset_index(drop=True), prior


@SETTINGS
@given(frame=tick_frames(max_size=120),
       rules=st.sampled_from([get_rules("default"), get_rules("lean-future"),
                              get_rules("lean-equity"), ODD_LOTS_NO_PRICE]),
       timeframes=st.sampled_from([STANDARD, ALL_TIMEFRAMES]),
       cut=st.integers(START, END))
def test_rebuild_from_any_cut_equals_the_full_build(frame, rules, timeframes, cut):
    ticks = day_ticks(frame)
    full = BarEngine(rules=rules).build(ticks, timeframes)
    since = recompute_since(cut, START, timeframes)
    assert since <= cut and since >= START
    expected, prior = split_full(full, since)
    ts = ts_ns(ticks["ts"])
    later = ticks[ts >= since].reset_index(drop=True)
    prior_vo = volume_only_bars(ticks[ts < since], rules, "1m")
    got, new_vo = rebuild_since(later, prior, since, timeframes, rules, prior_vo)
    pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(new_vo, volume_only_bars(later, rules, "1m"))


def test_volume_only_minutes_carry_the_volume_no_bar_shows():
    hour = START + 14 * HOUR
    ticks = day_ticks(pd.DataFrame({
        "timestamp": np.array([hour, hour + 60 * 10**9, hour + 61 * 10**9], dtype="int64"),
        "symbol": "AAPL", "price": [10.0, 11.0, 12.0], "size": [1.0, 2.0, 3.0],
        "conditions": ["", "I", "I"],  # the second minute: odd lots only, no price
    }))
    vo = volume_only_bars(ticks, ODD_LOTS_NO_PRICE, "1m")
    assert vo[["ts", "qty", "trade_count"]].values.tolist() == [[hour + 60 * 10**9,
                                                                 5 * 10**8, 2]]
    assert volume_only_bars(ticks, get_rules("default"), "1m").empty
    full = BarEngine(rules=ODD_LOTS_NO_PRICE).build(ticks, STANDARD)
    daily = full[full["timeframe"] == "1d"]
    assert int(daily["qty"].iloc[0]) == 6 * 10**8  # 1 + 2 + 3 shares, one 1m bar only
    since = hour + HOUR  # nothing after: the 1d bar comes from stored rows alone
    _, prior = split_full(full, since)
    got, _ = rebuild_since(ticks.iloc[:0], prior, since, STANDARD, ODD_LOTS_NO_PRICE, vo)
    pd.testing.assert_frame_equal(got, daily.reset_index(drop=True))


def test_cut_floors_to_the_coarsest_intraday_bar_and_not_before_the_window():
    t = START + 14 * HOUR + 25 * 60 * 10**9 + 7  # 14:25 after the window start
    assert recompute_since(t, START, STANDARD) == START + 14 * HOUR
    assert recompute_since(t, START, "1m,5m") == t - t % (5 * 60 * 10**9)
    assert recompute_since(START - HOUR, START, STANDARD) == START


def test_session_bars_need_an_intraday_timeframe_on_session_boundaries():
    assert incremental_blocker(STANDARD, START, END) is None
    assert incremental_blocker("1m,5m", START, END) is None  # no session bars
    assert "boundaries" in incremental_blocker("1h,1d", START, END)  # 09:30 is no 1h open
    assert "no intraday" in incremental_blocker("1d", START, END)


def test_prior_bars_of_another_timeframe_are_refused():
    ticks = day_ticks(pd.DataFrame({
        "timestamp": np.array([START + 14 * HOUR, START + 15 * HOUR], dtype="int64"),
        "symbol": "AAPL", "price": [10.0, 11.0], "size": [1.0, 2.0],
    }))
    full = BarEngine().build(ticks, STANDARD)
    since = START + 15 * HOUR
    with pytest.raises(ValueError, match="1m bars"):
        rebuild_since(ticks.iloc[1:], full[full["ts"] < since], since, STANDARD,
                      get_rules("default"))
    with pytest.raises(ValueError, match="before the recompute start"):
        rebuild_since(ticks, full.iloc[:0], since, STANDARD, get_rules("default"))
