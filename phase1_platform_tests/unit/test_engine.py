"""BarEngine semantics (DESIGN section 4); every expected value is worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phase1_platform.core import BarEngine, TickNormalizer, get_rules
from phase1_platform.core.engine import rollup
from phase1_platform.core.rules import EligibilityRules
from phase1_platform.core.schema import NOTIONAL_SCALE, QTY_SCALE, bar_vwap


def ticks_of(*rows) -> pd.DataFrame:
    """Normalized ticks from (timestamp, price, size[, symbol[, conditions]]) tuples."""
    recs = []
    for r in rows:
        ts, price, size, *rest = r
        recs.append({"timestamp": ts, "price": str(price), "size": str(size),
                     "symbol": rest[0] if rest else "AAPL",
                     "conditions": rest[1] if len(rest) > 1 else ""})
    result = TickNormalizer().normalize(pd.DataFrame(recs, dtype="str"), source="t")
    assert result.rejected == 0, result.quarantine
    return result.ticks


def build(ticks, timeframes="1m", **kwargs) -> list[dict]:
    bars = BarEngine(**kwargs).build(ticks, timeframes)
    out = []
    for b in bars.to_dict("records"):
        b["time"] = pd.Timestamp(b.pop("ts"), tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        b["volume"] = b.pop("qty") / QTY_SCALE
        out.append(b)
    return out


def by_tf(bars: list[dict], tf: str) -> list[dict]:
    return [b for b in bars if b["timeframe"] == tf]


def times(bars: list[dict], tf: str | None = None) -> list[str]:
    return [b["time"] for b in bars if tf is None or b["timeframe"] == tf]


def ohlc(b: dict) -> tuple:
    return (b["open"], b["high"], b["low"], b["close"])


# ---------------------------------------------------------------- boundaries and labels


def test_tick_exactly_on_boundary_goes_to_later_bar():
    ticks = ticks_of(
        ("2013-10-07T13:59:59.999999999Z", 485.00, 100),
        ("2013-10-07T14:00:00.000000000Z", 486.00, 200),
    )
    bars = build(ticks, "1m,5m,15m,30m,1h,4h")
    for tf, before, after in [
        ("1m", "2013-10-07T13:59:00Z", "2013-10-07T14:00:00Z"),
        ("5m", "2013-10-07T13:55:00Z", "2013-10-07T14:00:00Z"),
        ("15m", "2013-10-07T13:45:00Z", "2013-10-07T14:00:00Z"),
        ("30m", "2013-10-07T13:30:00Z", "2013-10-07T14:00:00Z"),
        ("1h", "2013-10-07T13:00:00Z", "2013-10-07T14:00:00Z"),
    ]:
        got = by_tf(bars, tf)
        assert times(got) == [before, after], tf
        assert [b["open"] for b in got] == [485.0, 486.0]
        assert [b["volume"] for b in got] == [100, 200]
    # 4h: 12:00-16:00 UTC holds both
    (four,) = by_tf(bars, "4h")
    assert four["time"] == "2013-10-07T12:00:00Z" and four["trade_count"] == 2


def test_bars_are_labelled_by_open_time():
    ticks = ticks_of(("2013-10-07T13:47:31.5Z", 485.5, 10))
    bars = build(ticks, "1m,5m,15m,30m,1h,4h,1d")
    assert [(b["timeframe"], b["time"]) for b in bars] == [
        ("1m", "2013-10-07T13:47:00Z"),
        ("5m", "2013-10-07T13:45:00Z"),
        ("15m", "2013-10-07T13:45:00Z"),
        ("30m", "2013-10-07T13:30:00Z"),
        ("1h", "2013-10-07T13:00:00Z"),
        ("4h", "2013-10-07T12:00:00Z"),
        ("1d", "2013-10-07T04:00:00Z"),  # session date midnight New York (EDT) in UTC
    ]


def test_no_empty_bars_and_gaps_stay_gaps():
    ticks = ticks_of(
        ("2013-10-07T13:30:10Z", 485.0, 100),
        ("2013-10-07T13:34:59Z", 485.1, 100),
        ("2013-10-07T15:02:00Z", 485.2, 100),
    )
    bars = build(ticks, "1m,5m,1h")
    assert times(bars, "1m") == ["2013-10-07T13:30:00Z", "2013-10-07T13:34:00Z",
                                 "2013-10-07T15:02:00Z"]
    assert times(bars, "5m") == ["2013-10-07T13:30:00Z", "2013-10-07T15:00:00Z"]
    assert times(bars, "1h") == ["2013-10-07T13:00:00Z", "2013-10-07T15:00:00Z"]
    assert all(b["trade_count"] > 0 for b in bars)


def test_ohlcv_trade_count_and_vwap_by_hand():
    ticks = ticks_of(
        ("2013-10-07T13:30:01Z", 485.10, 100),
        ("2013-10-07T13:30:02Z", 485.50, 50),
        ("2013-10-07T13:30:03Z", 484.90, 0.5),
        ("2013-10-07T13:30:04Z", 485.20, 200),
    )
    (bar,) = build(ticks, "1m")
    assert ohlc(bar) == (485.10, 485.50, 484.90, 485.20)
    assert bar["volume"] == 350.5
    assert bar["trade_count"] == 4
    # notional = 48510 + 24275 + 242.45 + 97040 = 170067.45
    assert bar["notional"] == 170_067_450_000 == round(170067.45 * NOTIONAL_SCALE)
    vwap = bar_vwap([bar["notional"]], [int(bar["volume"] * QTY_SCALE)])[0]
    assert vwap == pytest.approx(170067.45 / 350.5, abs=1e-9)


def test_open_close_follow_canonical_order_not_arrival():
    ticks = ticks_of(
        ("2013-10-07T13:30:30Z", 2.0, 1),
        ("2013-10-07T13:30:10Z", 1.0, 1),
        ("2013-10-07T13:30:50Z", 3.0, 1),
    )
    (bar,) = build(ticks.sample(frac=1.0, random_state=3), "1m")
    assert (bar["open"], bar["close"]) == (1.0, 3.0)


def test_same_timestamp_open_close_by_sequence():
    raw = pd.DataFrame(
        {"timestamp": ["2013-10-07T13:30:00.5Z"] * 3, "symbol": "AAPL",
         "price": ["3", "1", "2"], "size": "1", "sequence": ["30", "10", "20"]}
    )
    ticks = TickNormalizer().normalize(raw).ticks
    (bar,) = build(ticks, "1m")
    assert (bar["open"], bar["close"]) == (1.0, 3.0)


def test_interleaved_symbols():
    ticks = ticks_of(
        ("2013-10-07T13:30:01Z", 485.0, 100, "AAPL"),
        ("2013-10-07T13:30:02Z", 33.0, 500, "MSFT"),
        ("2013-10-07T13:30:03Z", 486.0, 100, "AAPL"),
        ("2013-10-07T13:30:04Z", 33.5, 100, "MSFT"),
        ("2013-10-07T13:31:05Z", 487.0, 100, "AAPL"),
        ("2013-10-07T13:31:06Z", 34.0, 100, "MSFT"),
    )
    bars = build(ticks, "1m,5m")
    assert [(b["symbol"], b["timeframe"], b["time"][11:16]) for b in bars] == [
        ("AAPL", "1m", "13:30"), ("AAPL", "1m", "13:31"), ("AAPL", "5m", "13:30"),
        ("MSFT", "1m", "13:30"), ("MSFT", "1m", "13:31"), ("MSFT", "5m", "13:30"),
    ]
    aapl5, msft5 = bars[2], bars[5]
    assert ohlc(aapl5) == (485.0, 487.0, 485.0, 487.0) and aapl5["volume"] == 300
    assert ohlc(msft5) == (33.0, 34.0, 33.0, 34.0) and msft5["volume"] == 700


# ---------------------------------------------------------------- zero-size prints and rules


def test_zero_size_prints_excluded_by_default():
    ticks = ticks_of(
        ("2013-10-07T13:30:01Z", 485.0, 100),
        ("2013-10-07T13:30:02Z", 490.0, 0),  # would be the high and the close
        ("2013-10-07T13:31:00Z", 480.0, 0),  # alone in its minute: no bar
    )
    bars = build(ticks, "1m,1d")
    assert times(bars, "1m") == ["2013-10-07T13:30:00Z"]
    (bar,) = by_tf(bars, "1m")
    assert ohlc(bar) == (485.0, 485.0, 485.0, 485.0)
    assert bar["trade_count"] == 1 and bar["volume"] == 100
    (day,) = by_tf(bars, "1d")
    assert ohlc(day) == (485.0, 485.0, 485.0, 485.0)


def test_zero_size_prints_set_prices_with_lean_future_rules():
    ticks = ticks_of(
        ("2013-10-07T13:30:01Z", 485.0, 100),
        ("2013-10-07T13:30:02Z", 490.0, 0),
        ("2013-10-07T13:31:00Z", 480.0, 0),
    )
    bars = build(ticks, "1m,5m", rules=get_rules("lean-future"))
    one = by_tf(bars, "1m")
    assert times(one) == ["2013-10-07T13:30:00Z", "2013-10-07T13:31:00Z"]
    assert ohlc(one[0]) == (485.0, 490.0, 485.0, 490.0)
    assert one[0]["trade_count"] == 1 and one[0]["volume"] == 100  # prices only
    assert ohlc(one[1]) == (480.0,) * 4
    assert one[1]["trade_count"] == 0 and one[1]["volume"] == 0 and one[1]["notional"] == 0
    (five,) = by_tf(bars, "5m")
    assert ohlc(five) == (485.0, 490.0, 480.0, 480.0) and five["volume"] == 100


def test_rule_excluding_condition_from_price_only():
    rules = EligibilityRules(name="t-odd", exclude_from_price=frozenset({"I"}))
    ticks = ticks_of(
        ("2013-10-07T13:30:01Z", 485.0, 100, "AAPL", "@"),
        ("2013-10-07T13:30:02Z", 499.0, 10, "AAPL", "@ I"),  # odd lot: volume, not price
        ("2013-10-07T13:30:03Z", 485.5, 100, "AAPL", "@ F"),
    )
    (bar,) = build(ticks, "1m", rules=rules)
    assert ohlc(bar) == (485.0, 485.5, 485.0, 485.5)
    assert bar["volume"] == 210 and bar["trade_count"] == 3


def test_rollup_equals_build_when_a_minute_has_only_volume_ticks():
    """A minute holding only price-ineligible trades has no 1m bar; its volume still
    belongs to the 5m bar built from ticks, so the 5m bar must not be a roll-up."""
    rules = EligibilityRules(name="t-odd", exclude_from_price=frozenset({"I"}))
    ticks = ticks_of(
        ("2013-10-07T13:30:01Z", 485.0, 100, "AAPL", "@"),
        ("2013-10-07T13:31:02Z", 499.0, 10, "AAPL", "@ I"),
    )
    rolled = BarEngine(rules=rules).build(ticks, "1m,5m,1h,1d")
    direct = BarEngine(rules=rules, rollup=False).build(ticks, "1m,5m,1h,1d")
    pd.testing.assert_frame_equal(rolled, direct)
    five = direct[direct["timeframe"] == "5m"].iloc[0]
    assert five["qty"] == 110 * QTY_SCALE and five["trade_count"] == 2


# ---------------------------------------------------------------- daily bars and the calendar


def test_daily_bar_is_the_regular_session():
    ticks = ticks_of(
        ("2013-10-07T12:15:00Z", 480.0, 100),  # 08:15 New York: pre-market
        ("2013-10-07T13:29:59.999999999Z", 481.0, 100),
        ("2013-10-07T13:30:00Z", 485.0, 100),  # 09:30: open, inside
        ("2013-10-07T16:00:00Z", 487.0, 300),
        ("2013-10-07T19:59:59.999999999Z", 486.0, 100),
        ("2013-10-07T20:00:00Z", 490.0, 1000),  # 16:00: close, outside
        ("2013-10-07T22:00:00Z", 491.0, 100),  # after hours
    )
    bars = build(ticks, "1m,1h,1d")
    (day,) = by_tf(bars, "1d")
    assert day["time"] == "2013-10-07T04:00:00Z"
    assert ohlc(day) == (485.0, 487.0, 485.0, 486.0)
    assert day["volume"] == 500 and day["trade_count"] == 3
    # the out-of-session ticks are still in the intraday bars
    assert times(bars, "1h") == [f"2013-10-07T{h}:00:00Z" for h in
                                 ("12", "13", "16", "19", "20", "22")]
    assert len(by_tf(bars, "1m")) == 7


def test_weekend_and_holiday_have_no_daily_bar():
    ticks = ticks_of(
        ("2013-10-12T15:00:00Z", 490.0, 100),  # Saturday
        ("2013-10-13T15:00:00Z", 491.0, 100),  # Sunday
        ("2013-11-28T15:00:00Z", 520.0, 100),  # Thanksgiving
    )
    bars = build(ticks, "1h,1d")
    assert by_tf(bars, "1d") == []
    assert times(bars, "1h") == ["2013-10-12T15:00:00Z", "2013-10-13T15:00:00Z",
                                 "2013-11-28T15:00:00Z"]


def test_dst_end_2013_11_03_hourly():
    """New York falls back at 02:00 EDT = 06:00Z: 01:30 happens twice, UTC hours do not."""
    ticks = ticks_of(
        ("2013-11-03T05:30:00Z", 520.0, 100),  # 01:30 EDT
        ("2013-11-03T06:30:00Z", 521.0, 100),  # 01:30 EST
        ("2013-11-03T01:30:00-04:00", 522.0, 100),  # = 05:30Z
        ("2013-11-03T01:30:00-05:00", 523.0, 100),  # = 06:30Z
    )
    bars = build(ticks, "1h,1d")
    hours = by_tf(bars, "1h")
    assert times(hours) == ["2013-11-03T05:00:00Z", "2013-11-03T06:00:00Z"]
    assert [b["trade_count"] for b in hours] == [2, 2]
    assert by_tf(bars, "1d") == []  # a Sunday


def test_dst_end_2013_11_03_daily_sessions_around_it():
    ticks = ticks_of(
        # Friday 2013-11-01, EDT: session 13:30-20:00Z
        ("2013-11-01T13:30:00Z", 520.0, 100),
        ("2013-11-01T19:59:00Z", 521.0, 100),
        ("2013-11-01T20:30:00Z", 522.0, 100),  # 16:30 EDT: after the close
        # Monday 2013-11-04, EST: session 14:30-21:00Z
        ("2013-11-04T14:00:00Z", 523.0, 100),  # 09:00 EST: pre-market
        ("2013-11-04T14:30:00Z", 524.0, 100),
        ("2013-11-04T20:30:00Z", 525.0, 100),  # 15:30 EST: inside
        ("2013-11-04T21:00:00Z", 526.0, 100),  # 16:00 EST: outside
    )
    days = by_tf(build(ticks, "1m,1h,1d"), "1d")
    assert times(days) == ["2013-11-01T04:00:00Z", "2013-11-04T05:00:00Z"]
    assert ohlc(days[0]) == (520.0, 521.0, 520.0, 521.0) and days[0]["trade_count"] == 2
    assert ohlc(days[1]) == (524.0, 525.0, 524.0, 525.0) and days[1]["trade_count"] == 2


def test_dst_start_2014_03_09_hourly():
    """New York springs forward at 02:00 EST = 07:00Z: 02:xx local does not exist."""
    ticks = ticks_of(
        ("2014-03-09T01:59:00-05:00", 530.0, 100),  # 06:59Z
        ("2014-03-09T03:00:00-04:00", 531.0, 100),  # 07:00Z
        ("2014-03-09T07:30:00Z", 532.0, 100),
    )
    bars = build(ticks, "1h,1d")
    hours = by_tf(bars, "1h")
    assert times(hours) == ["2014-03-09T06:00:00Z", "2014-03-09T07:00:00Z"]
    assert [b["trade_count"] for b in hours] == [1, 2]
    assert by_tf(bars, "1d") == []  # a Sunday


def test_dst_start_2014_03_09_daily_sessions_around_it():
    ticks = ticks_of(
        # Friday 2014-03-07, EST: session 14:30-21:00Z
        ("2014-03-07T14:29:59Z", 530.0, 100),
        ("2014-03-07T14:30:00Z", 531.0, 100),
        ("2014-03-07T20:59:59Z", 532.0, 100),
        # Monday 2014-03-10, EDT: session 13:30-20:00Z
        ("2014-03-10T13:30:00Z", 533.0, 100),
        ("2014-03-10T20:00:00Z", 534.0, 100),  # 16:00 EDT: outside
        ("2014-03-10T20:30:00Z", 535.0, 100),
    )
    bars = build(ticks, "1m,30m,1h,4h,1d")
    days = by_tf(bars, "1d")
    assert times(days) == ["2014-03-07T05:00:00Z", "2014-03-10T04:00:00Z"]
    assert ohlc(days[0]) == (531.0, 532.0, 531.0, 532.0)
    assert ohlc(days[1]) == (533.0,) * 4 and days[1]["trade_count"] == 1
    assert times(bars, "4h") == ["2014-03-07T12:00:00Z", "2014-03-07T20:00:00Z",
                                 "2014-03-10T12:00:00Z", "2014-03-10T20:00:00Z"]


def test_half_day_2013_11_29_closes_at_13_00_new_york():
    ticks = ticks_of(
        ("2013-11-29T14:30:00Z", 550.0, 100),  # 09:30 EST
        ("2013-11-29T17:59:59.999999999Z", 551.0, 100),  # 12:59:59 EST: inside
        ("2013-11-29T18:00:00Z", 552.0, 100),  # 13:00 EST: the close, outside
        ("2013-11-29T18:30:00Z", 553.0, 100),
    )
    bars = build(ticks, "1m,1h,1d")
    (day,) = by_tf(bars, "1d")
    assert day["time"] == "2013-11-29T05:00:00Z"
    assert ohlc(day) == (550.0, 551.0, 550.0, 551.0) and day["trade_count"] == 2
    assert times(bars, "1h") == ["2013-11-29T14:00:00Z", "2013-11-29T17:00:00Z",
                                 "2013-11-29T18:00:00Z"]
    assert [b["trade_count"] for b in by_tf(bars, "1h")] == [1, 1, 2]


def test_trades_across_midnight_utc():
    ticks = ticks_of(
        ("2013-10-07T23:59:59.999999999Z", 485.0, 100),  # 19:59 New York, Oct 7
        ("2013-10-08T00:00:00Z", 486.0, 100),
        ("2013-10-08T00:00:01Z", 487.0, 100),
    )
    bars = build(ticks, "1m,1h,4h,1d")
    assert times(bars, "1m") == ["2013-10-07T23:59:00Z", "2013-10-08T00:00:00Z"]
    assert times(bars, "1h") == ["2013-10-07T23:00:00Z", "2013-10-08T00:00:00Z"]
    assert times(bars, "4h") == ["2013-10-07T20:00:00Z", "2013-10-08T00:00:00Z"]
    assert ohlc(by_tf(bars, "1h")[1]) == (486.0, 487.0, 486.0, 487.0)
    assert by_tf(bars, "1d") == []  # all outside the regular session


def test_30m_and_4h_alignment():
    ticks = ticks_of(
        ("2013-10-07T13:29:00Z", 1.0, 1),
        ("2013-10-07T13:30:00Z", 2.0, 1),
        ("2013-10-07T15:59:59Z", 3.0, 1),
        ("2013-10-07T16:00:00Z", 4.0, 1),
        ("2013-10-07T19:45:00Z", 5.0, 1),
    )
    bars = build(ticks, "30m,4h")
    assert times(bars, "30m") == ["2013-10-07T13:00:00Z", "2013-10-07T13:30:00Z",
                                  "2013-10-07T15:30:00Z", "2013-10-07T16:00:00Z",
                                  "2013-10-07T19:30:00Z"]
    four = by_tf(bars, "4h")
    assert times(four) == ["2013-10-07T12:00:00Z", "2013-10-07T16:00:00Z"]
    assert [ohlc(b) for b in four] == [(1.0, 3.0, 1.0, 3.0), (4.0, 5.0, 4.0, 5.0)]


# ---------------------------------------------------------------- build paths


@pytest.mark.parametrize("rules", ["default", "lean-future"])
def test_rollup_equals_build_from_ticks(rules):
    start = pd.Timestamp("2013-10-07T13:00:00Z")
    ticks = ticks_of(
        *[((start + pd.Timedelta(seconds=157 * i, milliseconds=i)).isoformat(),
           480 + (i * 37 % 11) / 10, (i * 13) % 5 * 100 + (i % 3) * 0.25, "AAPL")
          for i in range(150)],
        ("2013-10-07T13:31:00Z", 484.0, 0, "MSFT"),
        ("2013-10-07T14:31:00Z", 33.0, 100, "MSFT"),
    )
    tfs = "1m,5m,15m,30m,1h,4h,1d"
    rolled = BarEngine(rules=get_rules(rules)).build(ticks, tfs)
    direct = BarEngine(rules=get_rules(rules), rollup=False).build(ticks, tfs)
    pd.testing.assert_frame_equal(rolled, direct)
    one = direct[direct["timeframe"] == "1m"].reset_index(drop=True)
    for tf in ["5m", "15m", "1h", "1d"]:
        want = direct[direct["timeframe"] == tf].reset_index(drop=True)
        pd.testing.assert_frame_equal(rollup(one, tf), want)


def test_build_order_and_empty_input():
    assert len(BarEngine().build(ticks_of(("2013-10-07T13:30:00Z", 1, 1)).iloc[0:0])) == 0
    ticks = ticks_of(("2013-10-07T13:30:00Z", 1, 1, "MSFT"), ("2013-10-07T13:30:00Z", 1, 1))
    bars = BarEngine().build(ticks, "1d,1h,15m,1m,5m")
    assert list(zip(bars["symbol"], bars["timeframe"], strict=True)) == [
        (s, tf) for s in ("AAPL", "MSFT") for tf in ("1m", "5m", "15m", "1h", "1d")
    ]


def test_unknown_timeframe_is_a_clear_error():
    ticks = ticks_of(("2013-10-07T13:30:00Z", 1, 1))
    with pytest.raises(ValueError, match="unknown timeframe 2m"):
        BarEngine().build(ticks, "1m,2m")


def test_bar_sums_beyond_int64_are_refused_not_wrapped():
    from phase1_platform.core.engine import BarOverflowError

    raw = pd.DataFrame({"timestamp": ["2013-10-07T14:00:00Z"] * 12, "symbol": "X",
                        "price": [1e6] * 12, "size": [9.9e5] * 12})
    ticks = TickNormalizer().normalize(raw).ticks
    assert len(ticks) == 12  # each tick is in range; only their sum is not
    with pytest.raises(BarOverflowError, match="exact integer range"):
        BarEngine().build(ticks, "1m")


# ten 9,999,999,999-share prints in one hour (6 minutes apart): every 1m, 5m and 15m bar
# fits int64 units, the 1h, 4h and 1d totals (~1e19 units) do not (defect 2)
BIG_PRINTS = [(f"2013-10-07T14:{m:02d}:00Z", 1, 9_999_999_999) for m in range(0, 60, 6)]


def test_rolled_up_totals_beyond_int64_are_refused_at_every_timeframe():
    from phase1_platform.core.engine import BarOverflowError
    from phase1_platform.core.errors import InputError

    ticks = ticks_of(*BIG_PRINTS)
    small = BarEngine().build(ticks, "1m,5m,15m")
    assert (small["qty"] > 0).all() and len(small) == 10 + 10 + 4
    for tf in ("1h", "4h", "1d", "1m,1h", "1m,5m,15m,30m,1h,4h,1d"):
        with pytest.raises(BarOverflowError, match="volume total does not fit") as err:
            BarEngine().build(ticks, tf)
        assert isinstance(err.value, InputError) and "\n" not in str(err.value)
    with pytest.raises(BarOverflowError, match="1h bar opening 2013-10-07T14:00:00Z"):
        rollup(small[small["timeframe"] == "1m"], "1h")
    with pytest.raises(BarOverflowError):  # the session bar, rolled up or built
        BarEngine(rollup=False).build(ticks, "1d")


def test_totals_that_just_fit_are_exact():
    # two prints summing to exactly int64's largest unit count: kept, not refused
    from phase1_platform.core.engine import checked_sums

    top = 2**63 - 1
    values = np.array([top - 5, 5, 1, 2], dtype="int64")
    starts = np.array([0, 2])
    assert checked_sums(values, starts, "volume", "1h", np.array([0, 60])).tolist() == [top, 3]
    from phase1_platform.core.engine import BarOverflowError

    with pytest.raises(BarOverflowError, match="1h bar opening 1970-01-01T00:00:00Z"):
        checked_sums(np.array([top, 1], dtype="int64"), np.array([0]), "volume", "1h",
                     np.array([0]))


def test_incremental_and_streaming_roll_ups_refuse_overflow():
    from phase1_platform.core.engine import BarOverflowError
    from phase1_platform.core.incremental import rebuild_since
    from phase1_platform.core.streaming import StreamingBarAggregator

    ticks = ticks_of(*BIG_PRINTS)
    since = int(ticks["ts"].iloc[5].value)
    prior = BarEngine().build(ticks.iloc[:5], "1m")
    with pytest.raises(BarOverflowError):
        rebuild_since(ticks.iloc[5:], prior, since, "1m,1d", get_rules("default"))
    agg = StreamingBarAggregator(timeframes="1m,1h")
    agg.on_batch(ticks)
    with pytest.raises(BarOverflowError):
        agg.bars()


# ---------------------------------------------------------------- fast path == masked path
# A rule set whose only exclusion never matches judges every tick eligible, like the
# default, but through per-tick flags and the masked aggregation: the oracle for the
# blocked segmented reduction (bar_blocks) that eligible canonical ticks take.
NO_OP_RULES = EligibilityRules(name="no-op", exclude_from_volume=frozenset({"NeverSeen"}))


def synthetic(n: int, symbols: list[str], seed: int, spread_s: int = 3 * 86_400,
              burst: int = 0) -> pd.DataFrame:
    """Canonical ticks from 2013-10-07; ``burst`` ticks share one minute (a bar longer
    than a reduction block)."""
    from phase1_platform.core.normalizer import canonical_sort
    from phase1_platform.core.schema import TICK_COLUMNS

    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2013-10-07T13:30:00Z").value
    ts = start + rng.integers(0, spread_s * 10**9, n)
    ts[:burst] = start + 60 * 10**9 + rng.integers(0, 60 * 10**9, burst)
    ticks = pd.DataFrame({
        "ts": pd.to_datetime(ts, utc=True).as_unit("ns"),
        "symbol": np.array(symbols)[rng.integers(0, len(symbols), n)],
        "price": rng.integers(100, 50_000, n) / 100, "size": rng.integers(1, 900, n) / 3,
        "exchange": "Q", "conditions": "", "trade_id": "", "sequence": -1, "source": "t",
        "source_row": np.arange(n),
    }).astype(TICK_COLUMNS)
    return canonical_sort(ticks).reset_index(drop=True)


@pytest.mark.parametrize(("n", "symbols", "spread_s", "burst"), [
    (3, ["AAPL"], 120, 0),
    (200_000, ["SPY"], 3 * 86_400, 0),  # many blocks, bars searched per edge
    (150_000, ["SPY"], 86_400, 100_000),  # one 1m bar longer than a block
    (60_000, ["AAPL", "MSFT", "SPY"], 2 * 86_400, 0),  # a search per symbol
    (30_000, [f"S{i:03d}" for i in range(80)], 86_400, 0),  # many symbols: ts // ns
    (2_000, ["AAPL", "MSFT"], 40 * 86_400, 0),  # more bar edges than ticks: ts // ns
])
def test_blocked_reduction_equals_masked_aggregation(n, symbols, spread_s, burst, monkeypatch):
    from phase1_platform.core import engine

    calls = []
    blocked = engine.eligible_bars
    monkeypatch.setattr(engine, "eligible_bars", lambda *a: calls.append(a[-1]) or blocked(*a))
    ticks = synthetic(n, symbols, seed=n, spread_s=spread_s, burst=burst)
    tfs = "1m,5m,15m,30m,1h,4h,1d"
    for rollup_on in (True, False):
        fast = BarEngine(rollup=rollup_on).build(ticks, tfs)
        masked = BarEngine(rules=NO_OP_RULES, rollup=rollup_on).build(ticks, tfs)
        pd.testing.assert_frame_equal(fast, masked)
    # the blocked path built 1m (then roll-ups), and every intraday timeframe without them
    assert len(calls) == 1 + 6 and calls[0] == 60 * 10**9
    assert (fast.groupby("timeframe")["trade_count"].sum().drop("1d") == n).all()


def test_fast_path_falls_back_for_prices_at_or_below_zero():
    ticks = synthetic(5_000, ["AAPL"], seed=3)
    ticks.loc[17, "price"] = -2.5
    ticks.loc[4000, "price"] = 0.0
    fast = BarEngine().build(ticks, "1m,1h")
    pd.testing.assert_frame_equal(fast, BarEngine(rules=NO_OP_RULES).build(ticks, "1m,1h"))
    assert fast["low"].min() == -2.5


def test_single_symbol_check_reads_every_value():
    import pyarrow as pa

    from phase1_platform.core.tick_order import symbol_codes

    def col(*chunks):
        arr = pa.chunked_array([pa.array(c, type=pa.large_string()) for c in chunks])
        return pd.Series(pd.arrays.ArrowStringArray(arr), dtype="str")

    codes, names = symbol_codes(col(["SPY"] * 5, ["SPY"] * 3))
    assert codes is None and names.tolist() == ["SPY"]
    for chunks in ((["SPY"] * 5, ["SPY", "SPX"]), (["SPY", "SPYSPY", ""],),
                   (["AB", "AB", "BA"],), (["SPY"] * 3, ["QQQ"])):
        codes, names = symbol_codes(col(*chunks))
        assert codes is not None and names.tolist() == sorted(set(sum(chunks, [])))
    codes, names = symbol_codes(col(["SPY"] * 4)[1:])  # a sliced array (offset > 0)
    assert codes is None and names.tolist() == ["SPY"]
