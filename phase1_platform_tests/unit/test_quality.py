"""core.quality: the pure data-quality rules on bar frames."""

from __future__ import annotations

import pandas as pd
import pytest

from phase1_platform.core.calendar import session_bounds
from phase1_platform.core.engine import BarEngine
from phase1_platform.core.export import to_canonical
from phase1_platform.core.normalizer import TickNormalizer
from phase1_platform.core.quality import evaluate_bars, quality_frame, rejected_ratio

MIN = 60 * 10**9


def _bars() -> pd.DataFrame:
    raw = pd.DataFrame({
        "timestamp": ["2013-10-07T13:30:01Z", "2013-10-07T13:30:30Z", "2013-10-07T13:31:05Z",
                      "2013-10-07T14:02:00Z"],
        "symbol": "SPY", "price": ["167.4", "167.6", "167.5", "167.3"],
        "size": ["100", "200", "50", "10"],
    })
    ticks = TickNormalizer().normalize(raw).ticks
    return BarEngine().build(ticks, "1m,5m,1h,1d")


def test_bars_from_the_engine_pass_every_rule():
    report = evaluate_bars(_bars())
    assert report.passed and report.rows == 8
    assert set(report.violations) == {"ohlc", "volume", "unique_key", "aligned", "in_session"}
    # the canonical frame (volume, vwap as floats) is judged the same
    assert evaluate_bars(to_canonical(_bars())).passed


def test_each_rule_catches_its_fault():
    bars = _bars()
    bad = bars.copy()
    bad.loc[0, "low"] = bad.loc[0, "high"] + 1  # low above high
    bad.loc[1, "qty"] = -5  # negative volume
    bad.loc[2, "ts"] += 7 * 10**9  # a 1m bar not on a minute
    bad = pd.concat([bad, bad.iloc[[3]]], ignore_index=True)  # duplicate key
    report = evaluate_bars(bad)
    assert not report.passed
    assert report.violations["ohlc"] == 1
    assert report.violations["volume"] == 1
    assert report.violations["aligned"] == 1
    assert report.violations["unique_key"] == 2
    assert report.violations["in_session"] == 0
    assert report.examples["ohlc"][0]["timestamp"].startswith("2013-10-07")
    assert set(report.failed_rules()) == {"ohlc", "volume", "aligned", "unique_key"}


def test_daily_bar_must_be_a_session():
    bars = _bars()
    daily = bars["timeframe"] == "1d"
    _, _, label = session_bounds("2013-10-07")
    assert int(bars.loc[daily, "ts"].iloc[0]) == label
    moved = bars.copy()
    moved.loc[daily, "ts"] = label - 2 * 86400 * 10**9  # Saturday 2013-10-05
    report = evaluate_bars(moved)
    assert report.violations["in_session"] == 1 and report.violations["aligned"] == 1
    frame = quality_frame(moved)
    assert not frame.loc[daily.to_numpy(), "in_session"].iloc[0]


def test_nan_or_zero_prices_break_ohlc():
    bars = _bars()
    bars.loc[0, "open"] = float("nan")
    bars.loc[1, ["open", "high", "low", "close"]] = 0.0
    assert evaluate_bars(bars).violations["ohlc"] == 2


def test_rejected_ratio():
    assert rejected_ratio(304, 6, 0.05).passed
    assert rejected_ratio(304, 6, 0.05).ratio == pytest.approx(6 / 304)
    assert not rejected_ratio(100, 10, 0.05).passed
    assert rejected_ratio(0, 0, 0.0).passed
    with pytest.raises(ValueError, match="threshold"):
        rejected_ratio(1, 0, 1.5)
