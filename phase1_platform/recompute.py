"""Recompute a partition's bars from the store: in full, or only what new ticks touch.

A partition is (symbol, window [start, end)). ``read_partition_ticks`` decides what a
build must read and reads it; ``write_partition_bars`` builds and stores the bars;
``recompute_partition`` does both, again when a concurrent build got there first.

- Full: every landed tick of the window, normalized, one ``BarEngine.build``.
- Incremental (``incremental=True``): the store's ``tick_landings`` say which ticks
  landed since the partition's bars were last built; only the ticks from
  ``since = core.incremental.recompute_since(first landed)`` are read (plus earlier
  copies of their trade ids, so deduplication matches a full read), and only the bars
  they touch are rewritten (``core.incremental.rebuild_since``; the 1d bar is rolled
  up from the stored 1m bars and volume-only rows before the cut and the rebuilt ones
  after). No pending landing: nothing to read or write. An incremental request falls
  back to a full build, with the reason, when the bars stored are not a build of the
  same rule set (none yet, or a changed rule set).

Either way the stored bars equal a full recompute of the landed ticks, and the landings
read before the ticks are consumed in the transaction that writes the bars.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .core.engine import BarEngine
from .core.incremental import (
    base_timeframe,
    incremental_blocker,
    rebuild_since,
    recompute_since,
    volume_only_bars,
)
from .core.normalizer import NormalizeResult, TickNormalizer
from .core.rules import get_rules
from .core.schema import empty_bars, empty_quarantine, empty_ticks, ts_ns
from .storage import (
    BarRepository,
    ConcurrentBuildError,
    LandingRepository,
    Landings,
    Store,
    TickRepository,
)

BAR_TIMEFRAMES = ("1m", "5m", "15m", "1h", "1d")
MAX_ATTEMPTS = 3


@dataclass
class PartitionTicks:
    """What one build of a partition reads: its normalized ticks (all, or those from
    ``since_ns``), the pending landings seen before reading them, and why."""

    normalized: NormalizeResult
    landings: Landings  # also names the partition: symbol, [start_ns, end_ns)
    since_ns: int | None  # None: the whole window (full build)
    mode: str  # "full", "incremental" or "up to date"
    reason: str

    @property
    def symbol(self) -> str:
        return self.landings.symbol

    @property
    def start_ns(self) -> int:
        return self.landings.start_ns

    @property
    def end_ns(self) -> int:
        return self.landings.end_ns

    @property
    def ticks(self) -> pd.DataFrame:
        return self.normalized.ticks

    def describe(self) -> str:
        if self.since_ns is None or self.mode == "up to date":
            return f"{self.mode}: {self.reason}"
        since = pd.Timestamp(self.since_ns, tz="UTC").strftime("%H:%M UTC")
        return f"{self.mode} from {since}: {self.reason}"


def _normalize(frame: pd.DataFrame, symbol: str, start_ns: int, end_ns: int) -> NormalizeResult:
    return TickNormalizer(symbols=[symbol], window=(start_ns, end_ns)).normalize(
        frame.rename(columns={"ts": "timestamp"}))


def _full_reason(store: Store, symbol: str, start_ns: int, end_ns: int, rule_set: str,
                 timeframes) -> str | None:
    """Why an incremental build is not possible (None: it is)."""
    blocker = incremental_blocker(timeframes, start_ns, end_ns)
    if blocker:
        return blocker
    stored = BarRepository(store).rule_sets(symbol, start_ns, end_ns)
    if not stored:
        return "no bars stored for the partition yet"
    if stored != {rule_set}:
        return f"stored bars were built with rule set {', '.join(sorted(stored))}, not {rule_set}"
    return None


def read_partition_ticks(store: Store, symbol: str, start_ns: int, end_ns: int,
                         rule_set: str | None, incremental: bool = False,
                         timeframes=BAR_TIMEFRAMES) -> PartitionTicks:
    """The ticks a build of the partition needs (see the module doc). ``rule_set``, the
    one the build uses, decides whether an incremental build is possible (a full read
    needs none)."""
    if incremental and rule_set is None:
        raise ValueError("an incremental read needs the rule set of the build")
    landings = LandingRepository(store).pending(symbol, start_ns, end_ns)
    ticks_repo = TickRepository(store)
    reason = "full recompute requested"
    if incremental:
        reason = _full_reason(store, symbol, start_ns, end_ns, rule_set, timeframes)
        if reason is None and landings.first_ns is None:
            nothing = NormalizeResult(empty_ticks(), empty_quarantine(), 0)
            return PartitionTicks(nothing, landings, end_ns, "up to date",
                                  "no ticks landed since the last build")
        if reason is None:
            since = recompute_since(landings.first_ns, start_ns, timeframes)
            if since > start_ns:
                res = _normalize(ticks_repo.read_since(symbol, start_ns, since, end_ns),
                                 symbol, start_ns, end_ns)
                later = ts_ns(res.ticks["ts"]) >= since
                res.ticks = res.ticks[later].reset_index(drop=True)
                return PartitionTicks(res, landings, since, "incremental",
                                      f"{len(landings)} landing(s) since the last build")
            reason = "the landed ticks reach back to the start of the partition"
    res = _normalize(ticks_repo.read(symbol, start_ns, end_ns), symbol, start_ns, end_ns)
    return PartitionTicks(res, landings, None, "full", reason)


def bars_source(ticks: pd.DataFrame) -> str:
    """The sources the bars come from (the part of each tick source before ':')."""
    names = sorted(set(ticks["source"].astype(str).str.split(":").str[0])) if len(ticks) else []
    text = ",".join(names) or "none"
    return text if len(text) <= 200 else text[:197] + "..."


def write_partition_bars(store: Store, part: PartitionTicks, rule_set: str,
                         timeframes=BAR_TIMEFRAMES) -> pd.DataFrame:
    """Build the bars ``part`` calls for and store them, consuming its landings; returns
    the bars written (raises ``ConcurrentBuildError`` when another build came first)."""
    if part.mode == "up to date":
        return empty_bars()
    rules = get_rules(rule_set)
    repo = BarRepository(store)
    tf = ",".join(timeframes)
    base = base_timeframe(timeframes)
    if part.since_ns is None:
        bars = BarEngine(rules=rules).build(part.ticks, tf)
        volume_only = volume_only_bars(part.ticks, rules, base) if base else None
    else:
        prior = repo.read(part.symbol, [base], part.start_ns, part.since_ns)
        prior_vo = repo.read_volume_only(part.symbol, base, part.start_ns, part.since_ns)
        bars, volume_only = rebuild_since(part.ticks, prior, part.since_ns, tf, rules, prior_vo)
    repo.write_partition(bars, part.symbol, part.start_ns, part.end_ns, rule_set=rule_set,
                         source=bars_source(part.ticks), since_ns=part.since_ns,
                         landings=part.landings, volume_only=volume_only)
    return bars


def recompute_partition(store: Store, symbol: str, start_ns: int, end_ns: int, rule_set: str,
                        incremental: bool = False, timeframes=BAR_TIMEFRAMES,
                        ticks: PartitionTicks | None = None
                        ) -> tuple[PartitionTicks, pd.DataFrame]:
    """Read and build the partition (``ticks``: already read); when a concurrent build
    consumed the same landings first, read again (at most ``MAX_ATTEMPTS`` times)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if ticks is None:
            ticks = read_partition_ticks(store, symbol, start_ns, end_ns, rule_set,
                                         incremental, timeframes)
        try:
            return ticks, write_partition_bars(store, ticks, rule_set, timeframes)
        except ConcurrentBuildError:
            if attempt == MAX_ATTEMPTS:
                raise
            ticks = None
    raise AssertionError("unreachable")
