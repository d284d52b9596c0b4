"""Export: the canonical bar CSV (DESIGN section 5) of bars stored in the store of record.

``export_window(store, symbols, timeframes, start_ns, end_ns)`` reads the bars of the
symbols and timeframes opening in ``[start_ns, end_ns)`` (UTC ns) and renders them once;
``Exported`` carries the bytes, their ``sha256:`` and the bar count per timeframe, and
``path`` when they were written (atomically, ``core.export``). It is the one export of
stored bars: ``export_bars`` (``phase1 export``: trading dates ``start..end`` inclusive,
exchange time) and the read API's ``format=csv`` both call it, so their bytes are equal
for the same selection.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..core.calendar import DEFAULT_CALENDAR, trading_day_window
from ..core.errors import ConfigError
from ..core.export import CanonicalExporter
from ..core.partition import validate_symbol
from ..core.timeframes import DEFAULT_TIMEFRAMES, parse_timeframes
from ..storage import BarRepository, Store

FIRST_DATE, LAST_DATE = "1970-01-01", "2262-04-10"  # DESIGN section 3's timestamp range
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Exported:
    data: bytes  # the canonical CSV
    sha256: str  # "sha256:<hex>" of data
    counts: dict[str, int]  # bars per timeframe, in duration order
    path: Path | None = None  # where it was written (None: not written)
    # the bars rendered (internal bar frame, canonical order)
    frame: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def bars(self) -> int:
        return sum(self.counts.values())

    def bars_line(self) -> str:
        """``bars: N (1m=a, 5m=b, ...)``, as ``phase1 replay`` prints it."""
        per_tf = ", ".join(f"{tf}={n}" for tf, n in self.counts.items() if n)
        return f"bars: {self.bars}" + (f" ({per_tf})" if per_tf else "")


def parse_date(text: str, what: str = "date") -> str:
    """``text`` as ``YYYY-MM-DD`` when it is a real date in 1970-01-01..2262-04-10; else a
    ``ConfigError`` naming ``what`` (e.g. ``--end``) and the fix."""
    value = str(text).strip()
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        iso = dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not a date YYYY-MM-DD: give e.g. "
                          "2013-10-07") from None
    if not FIRST_DATE <= iso <= LAST_DATE:
        raise ConfigError(f"{what} {iso} is outside {FIRST_DATE}..{LAST_DATE}: give a date "
                          "in that range")
    return iso


def parse_symbols(symbols: str | Iterable[str]) -> list[str]:
    """Upper-cased, validated, sorted unique symbols (comma-separated text or a list)."""
    items = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    chosen = sorted({validate_symbol(s.strip().upper()) for s in items if s.strip()})
    if not chosen:
        raise ConfigError("no symbol given: name at least one, e.g. SPY")
    return chosen


def dates_window(start: str, end: str, calendar: str = DEFAULT_CALENDAR) -> tuple[int, int]:
    """``[start_ns, end_ns)`` of trading dates ``start..end`` (inclusive): from the start of
    ``start``'s partition window to the end of ``end``'s."""
    start_day, end_day = parse_date(start, "start date"), parse_date(end, "end date")
    if end_day < start_day:
        raise ConfigError(f"end date {end_day} is before start date {start_day}: swap them")
    return (trading_day_window(start_day, calendar)[0],
            trading_day_window(end_day, calendar)[1])


def export_bars(store: Store, symbols: str | Iterable[str],
                timeframes: str | Iterable[str] = DEFAULT_TIMEFRAMES,
                start: str = FIRST_DATE, end: str = LAST_DATE,
                calendar: str = DEFAULT_CALENDAR,
                path: str | os.PathLike | None = None) -> Exported:
    """The canonical CSV of the stored bars of ``symbols`` and ``timeframes`` over trading
    dates ``start..end`` (inclusive); written atomically to ``path`` when given."""
    names = parse_symbols(symbols)
    start_ns, end_ns = dates_window(start, end, calendar)
    return export_window(store, names, timeframes, start_ns, end_ns, path=path)


def export_window(store: Store, symbols: str | Iterable[str],
                  timeframes: str | Iterable[str], start_ns: int, end_ns: int,
                  path: str | os.PathLike | None = None) -> Exported:
    """The canonical CSV of the stored bars of ``symbols`` and ``timeframes`` opening in
    ``[start_ns, end_ns)`` (UTC ns); written atomically to ``path`` when given."""
    names = parse_symbols(symbols)
    tfs = [t.name for t in parse_timeframes(
        timeframes if isinstance(timeframes, str) else list(timeframes))]
    bars = BarRepository(store).read(names, tfs, int(start_ns), int(end_ns))
    exporter = CanonicalExporter(bars)
    data = exporter.to_bytes()
    counts = bars["timeframe"].value_counts()
    per_tf = {tf: int(counts.get(tf, 0)) for tf in tfs}
    written = None
    if path is not None:
        exporter.write(path)
        written = Path(path)
    return Exported(data, exporter.compute_hash(), per_tf, written, exporter.bars)


__all__ = ["FIRST_DATE", "LAST_DATE", "Exported", "dates_window", "export_bars",
           "export_window", "parse_date", "parse_symbols"]
