"""Replay: tick files -> normalizer -> bar engine, optionally persisted into the store.

``replay(paths, ...)`` is the deterministic path of ``phase1 replay`` (and of tests and
benchmarks): the bars of exactly the files given. ``persist(result, store)`` lands the
replay's ticks (``app.land``) and then rebuilds every partition they touch from ALL the
ticks the store holds for it (``app.build.build_bars``, a full build): replaying the two
halves of a day into one store leaves the bars of the whole day, equal to a replay of
both halves at once (DESIGN section 6).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.calendar import DEFAULT_CALENDAR, trading_dates
from ..core.engine import BarEngine
from ..core.normalizer import NormalizeResult, TickNormalizer
from ..core.partition import Partition
from ..core.rules import get_rules
from ..core.schema import ts_ns
from ..core.timeframes import DEFAULT_TIMEFRAMES, parse_timeframes
from ..readers import read_ticks
from .land import Landed, land_ticks, quarantine_partitions

REPLAY_QUARANTINE_PARTITION = "replay"


@dataclass
class ReplayResult:
    normalized: NormalizeResult
    bars: pd.DataFrame  # internal bar frame, canonical order
    rules_name: str
    timeframes: tuple[str, ...] = DEFAULT_TIMEFRAMES
    raw: pd.DataFrame | None = None  # the rows read: where each reject's partition comes from

    def summary_lines(self) -> list[str]:
        n = self.normalized
        lines = [f"ticks read: {n.rows_in}", f"ticks accepted: {len(n.ticks)}",
                 f"ticks rejected: {n.rejected}"]
        lines += [f"  rejected ({reason}): {count}" for reason, count in
                  n.rejected_by_reason.items()]
        lines.append(bars_line(self.bars))
        lines.append(f"rule set: {self.rules_name}")
        return lines


def bars_line(bars: pd.DataFrame) -> str:
    """``bars: N (1m=a, 5m=b, ...)``: the bar count per timeframe, in the frame's order."""
    counts = bars["timeframe"].value_counts()
    per_tf = ", ".join(f"{tf}={int(counts[tf])}" for tf in dict.fromkeys(bars["timeframe"]))
    return f"bars: {len(bars)}" + (f" ({per_tf})" if per_tf else "")


def load_raw(paths: Sequence[str | Path]) -> pd.DataFrame:
    frames = [read_ticks(p) for p in paths]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def replay(
    paths: Sequence[str | Path],
    timeframes: str | Iterable[str] = DEFAULT_TIMEFRAMES,
    symbols: Iterable[str] | None = None,
    rules: str = "default",
    calendar: str = DEFAULT_CALENDAR,
    window: tuple[int, int] | None = None,
) -> ReplayResult:
    names = tuple(t.name for t in parse_timeframes(
        timeframes if isinstance(timeframes, str) else list(timeframes)))
    rule_set = get_rules(rules)
    raw = load_raw(paths)
    normalized = TickNormalizer(symbols=symbols, window=window).normalize(raw)
    bars = BarEngine(rules=rule_set, calendar=calendar).build(normalized.ticks, list(names))
    return ReplayResult(normalized, bars, rule_set.name, names, raw)


@dataclass
class PersistResult:
    landed: Landed
    bars: int  # bars stored in the touched partitions (rebuilt from all their ticks)
    partitions: list[Partition]
    database: str  # masked URL

    def summary_lines(self) -> list[str]:
        return [f"stored in {self.database}: {self.landed.summary()}, bars={self.bars} in "
                f"{len(self.partitions)} partition(s) (rebuilt from all their stored ticks)"]


def touched_partitions(ticks: pd.DataFrame, calendar: str = DEFAULT_CALENDAR
                       ) -> list[Partition]:
    """The (trading date, symbol) partitions of ``ticks``, sorted by date then symbol."""
    if len(ticks) == 0:
        return []
    keys = pd.DataFrame({"date": trading_dates(ts_ns(ticks["ts"]), calendar),
                         "symbol": ticks["symbol"].astype("str").to_numpy(object)})
    keys = keys.drop_duplicates().sort_values(["date", "symbol"])
    return [Partition(str(d), str(s), calendar)
            for d, s in zip(keys["date"], keys["symbol"], strict=True)]


def persist(result: ReplayResult, store, calendar: str = DEFAULT_CALENDAR) -> PersistResult:
    """Store a replay: land its ticks and quarantine (each reject under the partition of
    its raw row, ``replay`` when it has none), then rebuild each partition it touched
    from every tick stored for it, with the replay's rule set and timeframes.

    Bars stored with other timeframes than the default set leave the partition marked
    for a full rebuild by the next (incremental) build, which uses the default set."""
    from ..storage import LandingRepository
    from .run_build import build_all, hand_over_by_partition, prepare_builds

    keys = quarantine_partitions(result.normalized.quarantine, result.raw,
                                 REPLAY_QUARANTINE_PARTITION, calendar=calendar)
    landed = land_ticks(store, result.normalized, keys, calendar)
    parts = touched_partitions(result.normalized.ticks, calendar)
    rule_sets = dict.fromkeys(parts, result.rules_name)
    scope = f"replay-{uuid.uuid4().hex}"
    if not landed.conflicting:  # each partition's replayed ticks, used when they are all
        hand_over_by_partition(scope, store, result.normalized.ticks, calendar)  # it holds
    inputs = prepare_builds(store, parts, rule_sets, False, result.timeframes, scope=scope)
    built = build_all(store, inputs, rule_sets, result.timeframes)  # one engine pass
    written = sum(len(b.bars) for b in built)
    if tuple(result.timeframes) != tuple(DEFAULT_TIMEFRAMES):
        for part in parts:
            LandingRepository(store).mark(part)
    return PersistResult(landed, written, parts, store.masked_url)


__all__ = ["REPLAY_QUARANTINE_PARTITION", "PersistResult", "ReplayResult", "bars_line",
           "load_raw", "persist", "replay", "touched_partitions"]
