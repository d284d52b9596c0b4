"""Information-driven bars on the real SPY day (2013-10-07, LEAN ticks): the bars account
for every counted trade and share of the regular session, and the streaming path in
micro-batches gives the batch's bytes."""

from __future__ import annotations

import numpy as np
import pytest

from phase1_platform.core import (
    BarEngine,
    CanonicalExporter,
    StreamingBarAggregator,
    TickNormalizer,
    get_rules,
)
from phase1_platform.core.calendar import session_bounds
from phase1_platform.core.schema import QTY_SCALE, qty_units, ts_ns
from phase1_platform.readers.lean import read_lean_ticks
from phase1_platform_tests.conftest import shared_file

SPY_TICKS = "lean/equity/usa/tick/spy/20131007_trade.zip"
TIMEFRAMES = "t1000,v100000,d10000000"


@pytest.fixture(scope="module")
def spy():
    ticks = TickNormalizer().normalize(read_lean_ticks(shared_file(SPY_TICKS))).ticks
    bars = BarEngine(rules=get_rules("default")).build(ticks, TIMEFRAMES)
    return ticks, bars


def test_spy_bars_hold_every_counted_trade_and_share_of_the_session(spy):
    ticks, bars = spy
    open_ns, close_ns, _ = session_bounds("2013-10-07")
    ts = ts_ns(ticks["ts"])
    size = ticks["size"].to_numpy("float64")
    counted = (ts >= open_ns) & (ts < close_ns) & (size > 0)
    trades, volume = int(counted.sum()), int(qty_units(size[counted]).sum())
    assert trades > 100_000
    for tf, threshold, column in (("t1000", 1000, "trade_count"),
                                  ("v100000", 100_000 * QTY_SCALE, "qty")):
        mine = bars[bars["timeframe"] == tf]
        assert int(mine["trade_count"].sum()) == trades
        assert int(mine["qty"].sum()) == volume
        totals = mine[column].to_numpy("int64")
        assert (totals[:-1] >= threshold).all() and totals[-1] < threshold  # last: open
        first = mine["ts"].to_numpy("int64")
        assert first.min() >= open_ns and first.max() < close_ns
        assert (np.diff(first) >= 0).all()
    t1000 = bars[bars["timeframe"] == "t1000"]["trade_count"].to_numpy()
    assert (t1000[:-1] == 1000).all() and len(t1000) == trades // 1000 + 1


def test_spy_streaming_micro_batches_equal_the_batch(spy):
    ticks, bars = spy
    agg = StreamingBarAggregator(TIMEFRAMES)
    for a in range(0, len(ticks), 20_000):
        agg.on_batch(ticks.iloc[a:a + 20_000])
    assert CanonicalExporter(agg.bars()).to_bytes() == CanonicalExporter(bars).to_bytes()
