"""The live service's streaming bars: one ``StreamingBarAggregator`` per rule set.

Each symbol's bars are built with its own rule set (the per-symbol setting of
``app.sources``, or the service's override), so symbols are routed to the aggregator
of their rule set. Every aggregator keeps only ``RETAIN_TRADING_DATES`` trading dates
per symbol: the current one and the previous one, whose bars a late tick may still
restate; ticks of older dates land in the store (the batch rebuild of their partition
has them) but are not streamed (``expired``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from ..core.calendar import DEFAULT_CALENDAR
from ..core.engine import sort_bars
from ..core.rules import EligibilityRules
from ..core.schema import empty_bars
from ..core.streaming import StreamingBarAggregator
from ..core.streaming.emission import Changes

RETAIN_TRADING_DATES = 2  # the current trading date and the previous one


class LiveBars:
    """Streaming bars of several symbols, each with the rule set given for it."""

    def __init__(self, rules_of: Mapping[str, EligibilityRules], timeframes,
                 calendar: str = DEFAULT_CALENDAR,
                 retain_dates: int | None = RETAIN_TRADING_DATES) -> None:
        if not rules_of:
            raise ValueError("LiveBars needs at least one symbol")
        self.rules_of = dict(rules_of)
        self._by_rules: dict[str, StreamingBarAggregator] = {}
        self._of_symbol: dict[str, StreamingBarAggregator] = {}
        for symbol, rules in sorted(self.rules_of.items()):
            agg = self._by_rules.get(rules.name)
            if agg is None:
                agg = self._by_rules[rules.name] = StreamingBarAggregator(
                    timeframes, rules=rules, calendar=calendar, retain_dates=retain_dates)
            self._of_symbol[symbol] = agg

    @property
    def aggregators(self) -> dict[str, StreamingBarAggregator]:
        """Rule set name -> its aggregator."""
        return dict(self._by_rules)

    def rule_set(self, symbol: str) -> str:
        return self.rules_of[symbol].name

    def on_batch(self, ticks: pd.DataFrame) -> int:
        """Add normalized ticks of the service's symbols; returns the ticks accepted."""
        if len(ticks) == 0:
            return 0
        if len(self._by_rules) == 1:
            return next(iter(self._by_rules.values())).on_batch(ticks)
        sym = ticks["symbol"].to_numpy(object)
        accepted = 0
        for agg in self._by_rules.values():
            mine = [s for s, a in self._of_symbol.items() if a is agg]
            part = ticks[pd.Series(sym).isin(mine).to_numpy(bool)]
            accepted += agg.on_batch(part)
        return accepted

    def retains(self, symbol: str, ts_ns: int) -> bool:
        return self._of_symbol[symbol].retains(symbol, ts_ns)

    def restate(self, symbol: str, minutes, ticks: pd.DataFrame):
        """Restate ``symbol``'s ``minutes`` from ``ticks`` (``StreamingBarAggregator.restate``)."""
        return self._of_symbol[symbol].restate(symbol, minutes, ticks)

    @property
    def timeframes(self):
        return next(iter(self._by_rules.values())).timeframes

    def drain_updates(self) -> pd.DataFrame:
        return _merge(agg.drain_updates() for agg in self._by_rules.values())

    def drain_changes(self) -> Changes:
        """The bars changed since the last drain with the base intervals they touched and
        the volume-only rows among those (``StreamingBarAggregator.drain_changes``)."""
        drained = [agg.drain_changes() for agg in self._by_rules.values()]
        if len(drained) == 1:
            return drained[0]
        return Changes(
            _merge(c.bars for c in drained),
            pd.concat([c.touched for c in drained], ignore_index=True),
            pd.concat([c.volume_only for c in drained], ignore_index=True),
            drained[0].base)

    def bars(self) -> pd.DataFrame:
        return _merge(agg.bars() for agg in self._by_rules.values())

    def floors(self) -> dict[str, int]:
        """Symbol -> oldest tick time still streamed (symbols that evicted state)."""
        out: dict[str, int] = {}
        for agg in self._by_rules.values():
            out.update(agg.floors())
        return out

    @property
    def expired(self) -> int:
        return sum(agg.expired for agg in self._by_rules.values())

    def state_size(self) -> dict[str, int]:
        out = {"symbols": 0, "minutes": 0, "trade_ids": 0}
        for agg in self._by_rules.values():
            for k, v in agg.state_size().items():
                out[k] += v
        return out


def _merge(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_bars()
    if len(frames) == 1:
        return frames[0]
    return sort_bars(pd.concat(frames, ignore_index=True)).reset_index(drop=True)


__all__ = ["RETAIN_TRADING_DATES", "LiveBars"]
