"""The live service's trade cancels and corrections: record them, restate the bars.

A connector that serves them (``connectors.protocols.LiveAmendments``, e.g. Alpaca's data
stream) hands over frames of ``core.amendments.AMENDMENT_COLUMNS``. After the ticks
received before them have landed, ``AmendmentBatches.commit`` does, in ONE transaction
(``app.live_bars.flush_transaction``):

1. ``app.amendments.record_amendments``: each message resolved to its stored trade and
   recorded in the amendments log (duplicates counted, the rest quarantined with a
   reason); recording also adds a tick landing at each amended trade's time, so Dagster's
   ``live_bars`` sensor runs the partition's verification again;
2. for each amended trade the streaming bars still retain: the ticks of its minute are
   read back from the store as amended (``app.tick_log``) and the streaming bars restate
   that minute (``StreamingBarAggregator.restate``); the drain then rewrites every bar
   holding it, of every timeframe, and deletes those left without ticks
   (``app.live_bars.write_live_bars``).

So the live path's bars equal a batch build of the amended tick log, whatever order the
cancel and the build come in. Older trades are restated by that Dagster run only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..app import tick_log
from ..app.amendments import record_amendments
from ..app.live_bars import WrittenBars, flush_transaction, source_names, write_live_bars
from ..core.amendments import AMENDMENT_COLUMNS
from ..core.calendar import DEFAULT_CALENDAR, is_session, trading_date_of
from ..core.partition import Partition
from ..core.streaming.restate import restated_buckets
from ..core.timeframes import NS_PER_MINUTE
from ..storage import QuarantineRepository, Store
from .bars import LiveBars
from .logs import event, log


class AmendmentBatches:
    """Records a flush's amendments and restates the streaming bars they touch."""

    def __init__(self, store: Store, bars: LiveBars, *, stats,
                 calendar: str = DEFAULT_CALENDAR,
                 on_bars_written: Callable[[WrittenBars], None] | None = None) -> None:
        self.store = store
        self.bars = bars
        self.stats = stats
        self.calendar = calendar
        self.on_bars_written = on_bars_written

    def commit(self, frames: list[pd.DataFrame]) -> pd.DataFrame:
        """Record the amendments of ``frames`` (arrival order) and store the bars they
        restate; returns those bars (the broadcast's updates)."""
        amendments = pd.concat(frames, ignore_index=True).astype(AMENDMENT_COLUMNS)
        with flush_transaction(self.store):
            rec = record_amendments(self.store, amendments, calendar=self.calendar)
            QuarantineRepository(self.store).add(rec.quarantine, rec.partitions)
            restated, sources = self._restate(rec.applied)
            changes = self.bars.drain_changes()
            rule_set_of = {s: self.bars.rule_set(s) for s in self.bars.rules_of}
            written = write_live_bars(self.store, changes, rule_set_of, sources, self.calendar,
                                      restated=restated)
        self.stats.amendments += len(rec.applied)
        self.stats.amendment_duplicates += rec.duplicates
        self.stats.quarantined += len(rec.quarantine)
        self.stats.bars_written += sum(v["bars"] for tfs in written.values()
                                       for v in tfs.values())
        event("amendments", logging.INFO if len(rec.applied) else logging.DEBUG,
              received=len(amendments), applied=len(rec.applied), duplicates=rec.duplicates,
              quarantined=len(rec.quarantine), bars_restated=len(changes.bars),
              reasons=sorted(set(rec.quarantine["reason"])))
        if written and self.on_bars_written is not None:
            try:
                self.on_bars_written(written)
            except Exception:  # noqa: BLE001 - reporting never stops ingestion
                log.exception("bars_written report failed")
        return changes.bars

    def _restate(self, applied: pd.DataFrame) -> tuple[pd.DataFrame | None, dict[str, str]]:
        """Restate the retained minutes of the amended trades; (the bars that rebuilds,
        symbol -> the source text of the ticks read)."""
        keys, sources = [], {}
        timeframes = self.bars.timeframes
        for symbol, group in applied.groupby("symbol", sort=True):
            symbol = str(symbol)
            if symbol not in self.bars.rules_of:
                continue
            minutes = np.unique(group["ts"].to_numpy("int64") // NS_PER_MINUTE * NS_PER_MINUTE)
            minutes = minutes[[self.bars.retains(symbol, int(m)) and is_session(
                trading_date_of(int(m), self.calendar), self.calendar) for m in minutes.tolist()]]
            if len(minutes) == 0:
                continue
            ticks = pd.concat([self._minute_ticks(symbol, int(m)) for m in minutes.tolist()],
                              ignore_index=True)
            done = self.bars.restate(symbol, minutes, ticks)
            keys.append(restated_buckets(symbol, done, timeframes, self.calendar))
            if len(ticks):
                sources[symbol] = source_names(ticks["source"].astype(str).unique())
        return (pd.concat(keys, ignore_index=True) if keys else None), sources

    def _minute_ticks(self, symbol: str, minute: int) -> pd.DataFrame:
        """The stored ticks of ``symbol`` in the minute starting at ``minute``, amended."""
        part = Partition.of_timestamp(symbol, minute, self.calendar)
        return tick_log.read_since(self.store, part, minute, minute + NS_PER_MINUTE)


__all__ = ["AmendmentBatches"]
