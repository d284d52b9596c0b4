"""``drain_changes``: what a store of the streamed bars needs equals a batch build.

Applying each drain to a key-value "store" (bars upserted by key; the touched base
intervals' volume-only rows replaced) gives exactly ``BarEngine.build`` and
``core.incremental.volume_only_bars`` of all the ticks, in any micro-batch split and
arrival order (late ticks restate, a volume-only minute that later gets a price-setting
tick stops being volume-only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phase1_platform.core.engine import BarEngine, sort_bars
from phase1_platform.core.incremental import VOLUME_ONLY_COLUMNS, volume_only_bars
from phase1_platform.core.rules import DEFAULT_RULES, LEAN_EQUITY_RULES
from phase1_platform.core.schema import BAR_COLUMNS
from phase1_platform.core.streaming import StreamingBarAggregator

from .test_streaming import TFS, VOLUME_ONLY_RULES, make_ticks


class KeyStore:
    """Bars by (symbol, timeframe, ts) and volume-only rows by (symbol, timeframe, ts)."""

    def __init__(self) -> None:
        self.bars: dict[tuple, tuple] = {}
        self.vo: dict[tuple, tuple] = {}

    def apply(self, changes) -> None:
        for r in changes.bars.itertuples(index=False):
            self.bars[(r.symbol, r.timeframe, r.ts)] = tuple(r)
        for r in changes.touched.itertuples(index=False):
            self.vo.pop((r.symbol, r.timeframe, r.ts), None)
        for r in changes.volume_only.itertuples(index=False):
            self.vo[(r.symbol, r.timeframe, r.ts)] = tuple(r)

    def bar_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(list(self.bars.values()), columns=list(BAR_COLUMNS))
        return sort_bars(frame.astype(BAR_COLUMNS)).reset_index(drop=True)

    def vo_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(list(self.vo.values()), columns=list(VOLUME_ONLY_COLUMNS))
        return frame.astype(VOLUME_ONLY_COLUMNS).sort_values(
            ["symbol", "ts"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("rules", [DEFAULT_RULES, LEAN_EQUITY_RULES, VOLUME_ONLY_RULES],
                         ids=lambda r: r.name)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_drains_applied_to_a_store_equal_the_batch_build(rules, seed):
    ticks = make_ticks(seed, n=2500, trade_ids=seed == 2)
    rng = np.random.default_rng(seed)
    shuffled = ticks.iloc[rng.permutation(len(ticks))].reset_index(drop=True)
    agg = StreamingBarAggregator(TFS, rules=rules)
    store = KeyStore()
    cuts = np.sort(rng.choice(np.arange(1, len(ticks)), 40, replace=False))
    bounds = [0, *cuts.tolist(), len(ticks)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        agg.on_batch(shuffled.iloc[a:b])
        changes = agg.drain_changes()
        assert changes.base == "1m"
        store.apply(changes)
    expected = BarEngine(rules).build(ticks, TFS)
    pd.testing.assert_frame_equal(store.bar_frame(), expected.reset_index(drop=True))
    vo = volume_only_bars(ticks, rules, "1m").sort_values(["symbol", "ts"], kind="stable")
    pd.testing.assert_frame_equal(store.vo_frame(), vo.reset_index(drop=True))
    assert agg.drain_changes().bars.empty


def test_volume_only_minute_that_gets_a_price_leaves_the_volume_only_rows():
    agg = StreamingBarAggregator("1m,1d", rules=VOLUME_ONLY_RULES)
    t0 = pd.Timestamp("2013-11-01 14:00:10", tz="UTC").value
    agg.on_arrays("AAA", [t0], [10.0], [5.0], conditions=["X"])
    first = agg.drain_changes()
    assert first.bars.empty  # volume only: no bar of any timeframe
    assert first.volume_only[["symbol", "ts", "trade_count"]].values.tolist() == [
        ["AAA", t0 // 60_000_000_000 * 60_000_000_000, 1]]
    agg.on_arrays("AAA", [t0 + 1], [11.0], [1.0], conditions=[""])
    second = agg.drain_changes()
    assert len(second.touched) == 1 and second.volume_only.empty
    assert sorted(second.bars["timeframe"]) == ["1d", "1m"]
