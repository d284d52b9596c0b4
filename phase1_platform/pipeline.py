"""Tick files -> normalizer -> bar engine: the replay path shared by the CLI and Dagster."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .core import BarEngine, TickNormalizer, get_rules
from .core.calendar import DEFAULT_CALENDAR
from .core.normalizer import NormalizeResult
from .core.timeframes import parse_timeframes
from .readers import read_ticks


@dataclass
class ReplayResult:
    normalized: NormalizeResult
    bars: pd.DataFrame  # internal bar frame, canonical order
    rules_name: str

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
    timeframes: str | Iterable[str] = "1m,5m,15m,1h,1d",
    symbols: Iterable[str] | None = None,
    rules: str = "default",
    calendar: str = DEFAULT_CALENDAR,
    window: tuple[int, int] | None = None,
) -> ReplayResult:
    tfs = parse_timeframes(timeframes if isinstance(timeframes, str) else list(timeframes))
    rule_set = get_rules(rules)
    raw = load_raw(paths)
    normalized = TickNormalizer(symbols=symbols, window=window).normalize(raw)
    engine = BarEngine(rules=rule_set, calendar=calendar)
    bars = engine.build(normalized.ticks, [t.name for t in tfs])
    return ReplayResult(normalized, bars, rule_set.name)


REPLAY_QUARANTINE_PARTITION = "replay"


@dataclass
class PersistResult:
    ticks_new: int
    ticks_already: int
    quarantined: int
    bars: int
    partitions: list[tuple[str, str]]  # (trading date, symbol)
    database: str  # masked URL

    def summary_lines(self) -> list[str]:
        return [
            f"stored in {self.database}: ticks new={self.ticks_new} "
            f"(already stored={self.ticks_already}), quarantined rows={self.quarantined}, "
            f"bars={self.bars} in {len(self.partitions)} partition(s)"
        ]


def bar_partitions(
    result: ReplayResult, calendar: str = DEFAULT_CALENDAR
) -> dict[tuple[str, str], pd.DataFrame]:
    """The replay's bars per partition (trading date in exchange time, symbol).

    Every (date, symbol) that had accepted ticks is a partition even when none of its
    ticks made a bar, so a rewrite also clears bars the new ticks no longer produce.
    """
    from .core.calendar import exchange_tz
    from .core.schema import ts_ns

    tz = exchange_tz(calendar)
    bars = result.bars
    ticks = result.normalized.ticks
    bar_day = pd.to_datetime(bars["ts"].to_numpy("int64"), utc=True).tz_convert(tz).strftime(
        "%Y-%m-%d")
    tick_day = pd.to_datetime(ts_ns(ticks["ts"]), utc=True).tz_convert(tz).strftime("%Y-%m-%d")
    keys = set(zip(tick_day, ticks["symbol"].astype(str), strict=True))
    groups = dict(tuple(bars.groupby([bar_day, bars["symbol"].astype(str).to_numpy()],
                                     sort=False))) if len(bars) else {}
    keys |= set(groups)
    empty = bars.iloc[0:0]
    return {k: groups.get(k, empty).reset_index(drop=True) for k in sorted(keys)}


def persist(result: ReplayResult, store, calendar: str = DEFAULT_CALENDAR,
            source: str = "replay") -> PersistResult:
    """Store a replay: land its ticks, add its quarantine, rewrite its bar partitions.

    The bars written are the replay's (built from the file, whatever else the store holds
    for the partition), so each partition is marked for a full rebuild from the store's
    ticks by the next incremental (live) build.
    """
    from .core.partition import Partition
    from .storage import BarRepository, LandingRepository, QuarantineRepository, TickRepository

    ticks = result.normalized.ticks
    new = TickRepository(store).land(ticks)
    quarantined = QuarantineRepository(store).add(result.normalized.quarantine,
                                                  REPLAY_QUARANTINE_PARTITION)
    repo = BarRepository(store)
    parts = bar_partitions(result, calendar)
    written = 0
    for (day, symbol), bars in parts.items():
        part = Partition(day, symbol, calendar)
        written += repo.write_partition(bars, part, result.rules_name, source)
        LandingRepository(store).mark(part)
    return PersistResult(new, len(ticks) - new, quarantined, written, list(parts),
                         store.masked_url)
