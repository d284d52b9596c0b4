"""Plan and build a partition's bars from the store: in full, or only what new ticks touch.

``plan_build`` decides, from the store's pending tick landings and the bars stored, one
``BuildPlan``:

- ``Full(reason)``: every landed tick of the partition, normalized, one
  ``BarEngine.build`` (no bars yet, a changed rule set, a replay's bars, ticks reaching
  back to the start of the partition, or a full rebuild asked for);
- ``Incremental(since_ns, reason)``: only the ticks from ``since`` (plus earlier copies
  of their trade ids, so deduplication matches a full read), and only the bars they
  touch are rewritten (``core.incremental.rebuild_since``; the 1d bar is rolled up from
  the stored 1m bars and volume-only rows before the cut and the rebuilt ones after);
- ``UpToDate``: no landing is pending: nothing to read or write.

``prepare_build`` plans and reads (``BuildInput``), in one read snapshot: the landings, the
ticks and the stored bars the build will replace (``StoredSpan``); ``build_bars`` builds and
stores the bars, consuming the landings read before the ticks in the transaction that
writes them, and reads again when a concurrent build consumed them first.

Verification of the live path (``app.verify_live``): an incremental build (a ``live_bars``
run) compares its rebuilt bars with the stored span first. Equal: it only consumes the
landings (the live path's bars stay; a bar it wrote after the snapshot is never
overwritten with an older one). Different: the batch result is written (batch wins),
refused (``ConcurrentBuildError``, read again) when ticks landed after the snapshot.
``BuildResult.verdict`` says which. Either way the stored bars
equal a full recompute of the landed ticks; ``bars_after_build`` returns them (the bars
written by a full build, else ``read_built_bars`` of the partition).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..core.engine import BarEngine
from ..core.incremental import (
    base_timeframe,
    empty_volume_only,
    incremental_blocker,
    rebuild_since,
    recompute_since,
    volume_only_bars,
)
from ..core.normalizer import NormalizeResult, TickNormalizer
from ..core.partition import Partition
from ..core.rules import get_rules
from ..core.schema import empty_bars, empty_quarantine, empty_ticks, ts_ns
from ..core.timeframes import DEFAULT_TIMEFRAMES
from ..storage import (
    BarRepository,
    ConcurrentBuildError,
    LandingRepository,
    Landings,
    Store,
)
from . import tick_log
from .verify_live import VERIFIED, LiveVerdict, StoredSpan, judge

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Full:
    reason: str

    def describe(self) -> str:
        return f"full: {self.reason}"


@dataclass(frozen=True)
class Incremental:
    since_ns: int
    reason: str

    def describe(self) -> str:
        since = pd.Timestamp(self.since_ns, tz="UTC").strftime("%H:%M UTC")
        return f"incremental from {since}: {self.reason}"


@dataclass(frozen=True)
class UpToDate:
    reason: str = "no ticks landed since the last build"

    def describe(self) -> str:
        return f"up to date: {self.reason}"


BuildPlan = Full | Incremental | UpToDate


@dataclass
class BuildInput:
    """What one build of a partition reads: the plan, the pending landings seen before
    reading the ticks, and the normalized ticks (all of them, or those from ``since``)."""

    partition: Partition
    plan: BuildPlan
    landings: Landings
    normalized: NormalizeResult
    stored: StoredSpan | None = None  # the stored bars the build replaces (read with ticks)
    incremental: bool = False  # a live_bars run: verify the live path's stored bars
    stored_ticks: int | None = None  # the store's canonical tick count, when the read counted

    @property
    def ticks(self) -> pd.DataFrame:
        return self.normalized.ticks


@dataclass
class BuildResult:
    input: BuildInput
    bars: pd.DataFrame  # the bars built (all of the partition's for a full build)
    rule_set: str
    verdict: LiveVerdict | None = None  # the stored bars against the rebuild

    @property
    def plan(self) -> BuildPlan:
        return self.input.plan


def _full_reason(store: Store, part: Partition, rule_set: str, timeframes) -> str | None:
    """Why an incremental build is not possible (None: it is)."""
    blocker = incremental_blocker(timeframes, part.start_ns, part.end_ns, part.calendar)
    if blocker:
        return blocker
    stored = BarRepository(store).rule_sets(part)
    if not stored:
        return "no bars stored for the partition yet"
    if stored != {rule_set}:
        return f"stored bars were built with rule set {', '.join(sorted(stored))}, not {rule_set}"
    return None


def plan_build(store: Store, part: Partition, rule_set: str, incremental: bool,
               landings: Landings, timeframes=DEFAULT_TIMEFRAMES) -> BuildPlan:
    """The plan for building ``part`` given the landings pending (read before ticks)."""
    if not incremental:
        return Full("full recompute requested")
    reason = _full_reason(store, part, rule_set, timeframes)
    if reason is not None:
        return Full(reason)
    if landings.first_ns is None:
        return UpToDate()
    since = recompute_since(landings.first_ns, part.start_ns, timeframes)
    if since <= part.start_ns:
        return Full("the landed ticks reach back to the start of the partition")
    return Incremental(since, f"{len(landings)} landing(s) since the last build")


def normalize_partition(frame: pd.DataFrame, part: Partition) -> NormalizeResult:
    """The partition's canonical ticks from landed rows (one symbol, its window)."""
    return TickNormalizer(symbols=[part.symbol], window=part.window).normalize(
        frame.rename(columns={"ts": "timestamp"}))


def read_ticks(store: Store, part: Partition, plan: BuildPlan) -> NormalizeResult:
    """The normalized ticks a build with ``plan`` needs (amended: ``app.tick_log``)."""
    if isinstance(plan, UpToDate):
        return NormalizeResult(empty_ticks(), empty_quarantine(), 0)
    if isinstance(plan, Incremental):
        res = normalize_partition(tick_log.read_since(store, part, plan.since_ns), part)
        later = ts_ns(res.ticks["ts"]) >= plan.since_ns
        res.ticks = res.ticks[later].reset_index(drop=True)
        return res
    return normalize_partition(tick_log.read_partition(store, part), part)


def read_stored_span(store: Store, part: Partition, plan: BuildPlan,
                     timeframes=DEFAULT_TIMEFRAMES) -> StoredSpan | None:
    """The stored bars and volume-only rows a build with ``plan`` replaces (None: it
    replaces nothing)."""
    if isinstance(plan, UpToDate):
        return None
    since = plan.since_ns if isinstance(plan, Incremental) else None
    repo = BarRepository(store)
    bars = repo.read_partition(part)
    base = base_timeframe(timeframes)
    vo = repo.read_volume_only(part, base) if base else None
    return StoredSpan(bars, empty_volume_only() if vo is None else vo, since)


def prepare_build(store: Store, part: Partition, rule_set: str, incremental: bool = False,
                  timeframes=DEFAULT_TIMEFRAMES) -> BuildInput:
    """Plan the build of ``part`` and read what it needs (landings first, then ticks, then
    the stored bars it replaces), all in one read snapshot."""
    with store.read_snapshot():
        landings = LandingRepository(store).pending(part)
        plan = plan_build(store, part, rule_set, incremental, landings, timeframes)
        ticks = read_ticks(store, part, plan)
        stored = read_stored_span(store, part, plan, timeframes)
    return BuildInput(part, plan, landings, ticks, stored, incremental)


def source_names(sources, empty: str = "none") -> str:
    """The ``source`` column of bars made from ticks of these sources: the part of each
    before ':', sorted, joined (``empty`` when there are none), at most 200 characters."""
    names = sorted({str(s).split(":")[0] for s in sources})
    text = ",".join(names) or empty
    return text if len(text) <= 200 else text[:197] + "..."


def bars_source(ticks: pd.DataFrame) -> str:
    """The sources the bars of ``ticks`` come from (``source_names``)."""
    return source_names(pd.unique(ticks["source"].astype(str).to_numpy(object))
                        if len(ticks) else [])


def build_full(ticks: pd.DataFrame, rule_set: str, calendar: str, timeframes=DEFAULT_TIMEFRAMES
               ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A full build: every bar of ``timeframes`` and the volume-only rows of the base
    timeframe (None without an intraday one) of canonical ``ticks``."""
    rules = get_rules(rule_set)
    bars = BarEngine(rules=rules, calendar=calendar).build(ticks, ",".join(timeframes))
    base = base_timeframe(timeframes)
    return bars, (volume_only_bars(ticks, rules, base) if base else None)


def write_bars(store: Store, inp: BuildInput, rule_set: str,
               timeframes=DEFAULT_TIMEFRAMES) -> pd.DataFrame:
    """Build the bars ``inp`` calls for and store them, consuming its landings; returns
    the bars built (raises ``ConcurrentBuildError`` when another build came first)."""
    return _write(store, inp, rule_set, timeframes)[0]


def _write(store: Store, inp: BuildInput, rule_set: str, timeframes
           ) -> tuple[pd.DataFrame, LiveVerdict]:
    """``write_bars`` and the verdict on the stored bars it replaced: an incremental
    (live) build whose rebuild equals them writes no bar, only consumes the landings."""
    plan, part = inp.plan, inp.partition
    if isinstance(plan, UpToDate):
        return empty_bars(), judge(part, None, empty_bars(), None, timeframes,
                                   inp.incremental)
    rules = get_rules(rule_set)
    repo = BarRepository(store)
    tf = ",".join(timeframes)
    base = base_timeframe(timeframes)
    since_ns = plan.since_ns if isinstance(plan, Incremental) else None
    if since_ns is None:
        bars, volume_only = build_full(inp.ticks, rule_set, part.calendar, timeframes)
    else:
        if inp.stored is not None:  # the snapshot the ticks were read in
            stored = inp.stored.bars
            prior = stored[(stored["timeframe"].astype(str).to_numpy(object) == base)
                           & (stored["ts"].to_numpy("int64") < since_ns)]
            prior_vo = inp.stored.volume_only
            prior_vo = prior_vo[prior_vo["ts"].to_numpy("int64") < since_ns]
        else:
            prior = repo.read_partition(part, [base], until_ns=since_ns)
            prior_vo = repo.read_volume_only(part, base, until_ns=since_ns)
        bars, volume_only = rebuild_since(inp.ticks, prior, since_ns, tf, rules, prior_vo)
    verdict = judge(part, inp.stored, bars, volume_only, timeframes, inp.incremental)
    if inp.incremental and verdict.mode == VERIFIED and verdict.equal:
        LandingRepository(store).consume(inp.landings)  # the live path's bars stay
        return bars, verdict
    repo.write_partition(bars, part, rule_set=rule_set, source=bars_source(inp.ticks),
                         since_ns=since_ns, landings=inp.landings, volume_only=volume_only,
                         refuse_newer=inp.incremental,
                         newer_cut=lambda first: recompute_since(first, part.start_ns,
                                                                 timeframes))
    verdict.written = True
    return bars, verdict


def build_bars(store: Store, part: Partition, rule_set: str, incremental: bool = False,
               timeframes=DEFAULT_TIMEFRAMES, prepared: BuildInput | None = None
               ) -> BuildResult:
    """Read (unless ``prepared``) and build the partition's bars; when a concurrent build
    consumed the same landings first, read again (at most ``MAX_ATTEMPTS`` times)."""
    inp = prepared
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if inp is None:
            inp = prepare_build(store, part, rule_set, incremental, timeframes)
        try:
            bars, verdict = _write(store, inp, rule_set, timeframes)
            return BuildResult(inp, bars, rule_set, verdict)
        except ConcurrentBuildError:
            if attempt == MAX_ATTEMPTS:
                raise
            inp = None
    raise AssertionError("unreachable")



def read_built_bars(store: Store, part: Partition, timeframes=None) -> pd.DataFrame:
    """The partition's stored bars (of ``timeframes``; None: every timeframe)."""
    return BarRepository(store).read_partition(part, timeframes)


def bars_after_build(store: Store, built: BuildResult) -> pd.DataFrame:
    """The partition's bars as stored once ``built`` is written: a full build's bars
    replaced the whole partition, so they are returned as they are; an incremental build
    rewrote only the bars its ticks touch (and an up-to-date one none), so the stored bars
    are read again."""
    if isinstance(built.plan, Full):
        return built.bars
    return read_built_bars(store, built.input.partition)
