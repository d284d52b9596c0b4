"""The builds of one run: every partition of the run read, normalized and built at once.

A Dagster run covers one partition, or a range of them (a backfill: one trading date x
many symbols, or one symbol x many dates). Its work is done once for all of them:

- ``prepare_builds``: plan each partition (``app.build.plan_build``: pending landings
  first), then the ticks of every partition built in full come from one source: the
  ticks the run's own landing step handed over in process (``hand_over_landed``), when
  the store holds exactly those (a count per partition proves it), else ONE query over
  the run's symbols and date span (``TickStore.read_many``); one ``TickNormalizer``
  pass over all of them, split per partition. Incremental plans read per partition
  (``app.build.prepare_build``: each from its own first pending landing).
- ``build_all``: one ``BarEngine.build`` per rule set over every full build's ticks, each
  partition its own group (its bars are exactly those of a build of that partition
  alone: no interval spans two partitions), then each partition written atomically with
  its landings consumed (``BarRepository.write_partition``); incremental builds and any
  partition whose landings a concurrent build consumed first go through
  ``app.build.build_bars``.

The result is byte-identical to building each partition alone (DESIGN section 6: "one
partition per run or many"), which the tests check on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..core.incremental import recompute_since
from ..core.normalizer import NormalizeResult, TickNormalizer
from ..core.partition import Partition
from ..core.schema import empty_quarantine
from ..core.timeframes import DEFAULT_TIMEFRAMES
from ..storage import (
    BarRepository,
    ConcurrentBuildError,
    LandingRepository,
    Store,
)
from . import tick_log
from .build import (
    BuildInput,
    BuildResult,
    Full,
    bars_source,
    build_bars,
    build_full,
    prepare_build,
)
from .land import quarantine_partitions, tick_partitions
from .run_memo import MEMO
from .stage_clock import NO_CLOCK, StageClock
from .verify_live import FULL_REBUILD, LiveVerdict


# ---------------------------------------------------------------- hand-over between steps
def hand_over_landed(scope: str, store: Store, part: Partition, ticks: pd.DataFrame) -> None:
    """Keep the canonical ticks (normalized: ``TickNormalizer`` output) a run's landing step
    stored for ``part``, every one new to the store, for its normalizing step
    (``prepare_builds`` of the same ``scope``)."""
    MEMO.put(scope, ("landed", store.masked_url, part), ticks)


def hand_over_by_partition(scope: str, store: Store, ticks: pd.DataFrame,
                           calendar: str) -> None:
    """``hand_over_landed`` of canonical ticks of several partitions, each its own part
    (canonical order is kept: a partition's rows keep their relative order)."""
    if len(ticks) == 0:
        return
    for key, rows in rows_by_key(tick_partitions(ticks, calendar)).items():
        part = Partition.parse(str(key), calendar)
        hand_over_landed(scope, store, part, ticks.iloc[rows].reset_index(drop=True))


def rows_by_key(keys: np.ndarray) -> dict[str, np.ndarray]:
    """The positions of each key's rows, ascending (one grouping pass: no scan per key)."""
    return pd.Series(np.arange(len(keys))).groupby(keys, sort=False).indices


def hand_over_prepared(scope: str, store: Store, inputs: Sequence[BuildInput],
                       rule_sets: Mapping[Partition, str], incremental: bool,
                       timeframes) -> None:
    """Keep the run's build inputs for its bars step (``take_prepared`` of ``scope``)."""
    for inp in inputs:
        key = _prepared_key(store, inp.partition, rule_sets[inp.partition], incremental,
                            timeframes)
        MEMO.put(scope, key, inp)


def take_prepared(scope: str, store: Store, part: Partition, rule_set: str,
                  incremental: bool, timeframes) -> BuildInput | None:
    return MEMO.take(scope, _prepared_key(store, part, rule_set, incremental, timeframes))


def hand_over_built(scope: str, store: Store, part: Partition, ticks: pd.DataFrame | None,
                    stored: pd.DataFrame, digests: Mapping[str, str]) -> None:
    """Keep what the run's bars step has in hand for its checks of the stored bars (the
    parity step): the partition's whole normalized tick set (None after an incremental
    build, which read only part of it), its stored bars after the build and their sha256
    per timeframe (``CanonicalExporter.timeframe_hashes``)."""
    MEMO.put(scope, ("built", store.masked_url, part), (ticks, stored, digests))


def take_built(scope: str, store: Store, part: Partition
               ) -> tuple[pd.DataFrame | None, pd.DataFrame | None, Mapping[str, str]]:
    """(ticks, stored bars, their sha256 per timeframe) ``hand_over_built`` kept, else
    (None, None, {}): read them."""
    return MEMO.take(scope, ("built", store.masked_url, part)) or (None, None, {})


def _prepared_key(store: Store, part: Partition, rule_set: str, incremental: bool,
                  timeframes) -> tuple:
    return ("prepared", store.masked_url, part, rule_set, bool(incremental), tuple(timeframes))


# ------------------------------------------------------------------------------ reading
def prepare_builds(store: Store, parts: Sequence[Partition], rule_sets: Mapping[Partition, str],
                   incremental: bool = False, timeframes=DEFAULT_TIMEFRAMES,
                   scope: str | None = None, clock: StageClock = NO_CLOCK
                   ) -> list[BuildInput]:
    """Each partition's ``BuildInput`` (plan, landings, normalized ticks), in ``parts``
    order. A full recompute (``incremental`` false: user runs, backfills, replay) reads
    (or takes over) the ticks of all partitions at once; an incremental build (a live
    run) plans and reads each partition in its own snapshot, with the stored bars it will
    verify (``app.build.prepare_build``). ``clock`` times the stages read and normalize."""
    if incremental:  # a live run: each partition verifies what the live path stored
        return [prepare_build(store, p, rule_sets[p], True, timeframes) for p in parts]
    landings = LandingRepository(store)
    pending = {p: landings.pending(p) for p in parts}  # before the ticks are read
    normalized, counted = _normalized_full(store, list(parts), scope, clock)
    return [BuildInput(p, Full("full recompute requested"), pending[p], normalized[p],
                       stored_ticks=counted.get(p)) for p in parts]


def _normalized_full(store: Store, parts: list[Partition], scope: str | None,
                     clock: StageClock = NO_CLOCK
                     ) -> tuple[dict[Partition, NormalizeResult], dict[Partition, int]]:
    """The whole tick set of each partition, normalized: the canonical ticks the landing
    step handed over when the store holds exactly those (equal counts: every one of them
    was new to the store), else read in one query and normalized in one pass; and the
    store's canonical tick count of each partition that was counted to decide."""
    repo = store.ticks
    out: dict[Partition, NormalizeResult] = {}
    counted: dict[Partition, int] = {}
    missing = []
    for part in parts:
        landed = MEMO.take(scope, ("landed", store.masked_url, part)) if scope else None
        if landed is not None:
            counted[part] = repo.count_canonical(part)
        if landed is not None and counted[part] == len(landed) \
                and not tick_log.is_amended(store, part):
            out[part] = NormalizeResult(landed, empty_quarantine(), len(landed))
        else:
            missing.append(part)
    if not missing:
        return out, counted
    with clock("read"):
        raw = tick_log.read_many(store, missing).rename(columns={"ts": "timestamp"})
    symbols = sorted({p.symbol for p in missing})
    with clock("normalize"):
        res = TickNormalizer(symbols=symbols).normalize(raw)
    calendar = missing[0].calendar
    rows = rows_by_key(tick_partitions(res.ticks, calendar)) if len(res.ticks) else {}
    q_rows = rows_by_key(quarantine_partitions(res.quarantine, raw, missing[0].key, symbols,
                                               calendar)) if len(res.quarantine) else {}
    none = np.empty(0, dtype="int64")
    for part in missing:
        ticks = res.ticks if len(missing) == 1 else \
            res.ticks.iloc[rows.get(part.key, none)].reset_index(drop=True)
        q = res.quarantine.iloc[q_rows[part.key]].reset_index(drop=True) \
            if part.key in q_rows else empty_quarantine()
        out[part] = NormalizeResult(ticks, q, len(ticks) + len(q))
    return out, counted


# ----------------------------------------------------------------------------- building
def build_all(store: Store, inputs: Sequence[BuildInput], rule_sets: Mapping[Partition, str],
              timeframes=DEFAULT_TIMEFRAMES, clock: StageClock = NO_CLOCK
              ) -> list[BuildResult]:
    """Build and store every input's bars; results in ``inputs`` order. ``clock`` times
    the stages build (the engine pass) and store (the bar writes)."""
    results: dict[Partition, BuildResult] = {}
    by_rules: dict[str, list[BuildInput]] = {}
    for inp in inputs:
        if isinstance(inp.plan, Full) and not inp.incremental:
            by_rules.setdefault(rule_sets[inp.partition], []).append(inp)
        else:  # a live run's build, verifying the live path's bars
            results[inp.partition] = build_bars(store, inp.partition, rule_sets[inp.partition],
                                                inp.incremental, timeframes, prepared=inp)
    for rule_set, group in by_rules.items():
        with clock("build"):
            built = _build_full(group, rule_set, timeframes)
        for inp, (bars, volume_only) in zip(group, built, strict=True):
            part = inp.partition
            try:
                with clock("store"):
                    store_full(store, inp, rule_set, bars, volume_only, timeframes)
                verdict = LiveVerdict(part, FULL_REBUILD, written=True)  # judges nothing
                results[part] = BuildResult(inp, bars, rule_set, verdict)
            except ConcurrentBuildError:  # another build consumed its landings: again
                results[part] = build_bars(store, part, rule_set, False, timeframes)
    return [results[inp.partition] for inp in inputs]


def store_full(store: Store, inp: BuildInput, rule_set: str, bars: pd.DataFrame,
               volume_only: pd.DataFrame | None, timeframes) -> None:
    """Replace the partition's bars with a full build's, consuming its landings; the bars
    that ticks landed since (by the live path, which stored their bars) may have changed
    are kept (``write_partition``'s ``newer_cut``)."""
    part = inp.partition
    BarRepository(store).write_partition(
        bars, part, rule_set=rule_set, source=bars_source(inp.ticks), landings=inp.landings,
        volume_only=volume_only,
        newer_cut=lambda first: recompute_since(first, part.start_ns, timeframes))


def _build_full(group: list[BuildInput], rule_set: str, timeframes
                ) -> list[tuple[pd.DataFrame, pd.DataFrame | None]]:
    """(bars, volume-only rows) of each full build of ``group``, from one engine pass in
    which each partition is its own group (its key stands in for the symbol)."""
    calendar = group[0].partition.calendar
    if len(group) == 1:
        return [build_full(group[0].ticks, rule_set, calendar, timeframes)]
    keyed = pd.concat([inp.ticks.assign(symbol=inp.partition.key) for inp in group],
                      ignore_index=True)
    bars, volume_only = build_full(keyed, rule_set, calendar, timeframes)
    bars_of = _split_by_key(bars)
    vo_of = _split_by_key(volume_only) if volume_only is not None else {}
    out = []
    for inp in group:
        key, symbol = inp.partition.key, inp.partition.symbol
        part_bars = bars_of.get(key, bars.iloc[:0]).assign(symbol=symbol)
        part_vo = None if volume_only is None else \
            vo_of.get(key, volume_only.iloc[:0]).assign(symbol=symbol)
        out.append((part_bars.astype({"symbol": "str"}),
                    None if part_vo is None else part_vo.astype({"symbol": "str"})))
    return out


def _split_by_key(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Rows of each value of ``symbol`` (a partition key here), in the frame's order."""
    if len(frame) == 0:
        return {}
    sym = frame["symbol"].astype("str").to_numpy(object)
    codes, uniq = pd.factorize(sym)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniq) + 1))
    return {str(k): frame.iloc[order[bounds[i]:bounds[i + 1]]].reset_index(drop=True)
            for i, k in enumerate(uniq)}


def build_run(store: Store, parts: Sequence[Partition], rule_sets: Mapping[Partition, str],
              incremental: bool = False, timeframes=DEFAULT_TIMEFRAMES,
              scope: str | None = None) -> list[BuildResult]:
    """Read (or take what the run's normalizing step prepared) and build every partition."""
    inputs = []
    for part in parts:
        inp = take_prepared(scope, store, part, rule_sets[part], incremental, timeframes) \
            if scope else None
        inputs.append(inp)
    todo = [p for p, inp in zip(parts, inputs, strict=True) if inp is None]
    if todo:
        fresh = iter(prepare_builds(store, todo, rule_sets, incremental, timeframes))
        inputs = [inp if inp is not None else next(fresh) for inp in inputs]
    return build_all(store, inputs, rule_sets, timeframes)


__all__ = ["build_all", "build_run", "hand_over_built", "hand_over_by_partition",
           "hand_over_landed",
           "hand_over_prepared", "prepare_builds", "take_built", "take_prepared"]
