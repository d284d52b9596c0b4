"""Tick files -> normalizer -> bar engine: the replay path shared by the CLI and Dagster."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .core import BarEngine, TickNormalizer, get_rules
from .core.calendar import DEFAULT_CALENDAR
from .core.normalizer import NormalizeResult
from .core.schema import QUARANTINE_COLUMNS
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
        counts = self.bars["timeframe"].value_counts()
        per_tf = ", ".join(f"{tf}={int(counts[tf])}" for tf in dict.fromkeys(self.bars["timeframe"]))
        lines.append(f"bars: {len(self.bars)}" + (f" ({per_tf})" if per_tf else ""))
        lines.append(f"rule set: {self.rules_name}")
        return lines


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
    bars = BarEngine(rules=rule_set, calendar=calendar).build(normalized.ticks, [t.name for t in tfs])
    if normalized.quarantine.empty:
        normalized.quarantine = normalized.quarantine.astype(QUARANTINE_COLUMNS)
    return ReplayResult(normalized, bars, rule_set.name)
