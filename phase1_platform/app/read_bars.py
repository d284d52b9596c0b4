"""Read stored bars: one selection (symbols, one timeframe, ``[start, end)``), by pages or whole.

- ``BarSelection.parse(symbols, timeframe, start, end)``: the checked selection
  (``app.read_params``: errors name the parameter).
- ``read_page(store, selection, limit, after)``: up to ``limit`` bars in canonical CSV order
  (symbol, then ts) after a keyset cursor, and the cursor of the next page (None: the
  selection is exhausted). Following the cursors returns every bar of the selection exactly
  once, whatever the page size (keyset pagination on the bars key). The page's fields are
  rendered once (``BarText``) for its JSON and its canonical sha256.
- ``read_all(store, selection)``: the whole selection as ``phase1 export`` writes it
  (``app.export.export_window``: the same function, so the same bytes), with its bars.

Each call reads in one read-only transaction (``Store.read_snapshot``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from ..core.calendar import DEFAULT_CALENDAR
from ..core.export import to_canonical
from ..storage import Store
from ..storage.reads import BarCursor, BarReads
from .bar_text import BarText
from .export import Exported, export_window
from .read_params import parse_symbol_list, parse_timeframe, parse_window


@dataclass(frozen=True)
class BarSelection:
    """Bars of ``symbols`` (sorted, validated) and ``timeframe`` opening in [start, end)."""

    symbols: tuple[str, ...]
    timeframe: str
    start_ns: int
    end_ns: int

    @classmethod
    def parse(cls, symbols: str | None, timeframe: str | None, start: str | None = None,
              end: str | None = None, calendar: str = DEFAULT_CALENDAR) -> BarSelection:
        names = parse_symbol_list(symbols, "symbols")
        tf = parse_timeframe(timeframe, "timeframe")
        lo, hi = parse_window(start, end, calendar)
        return cls(names, tf, lo, hi)

    def digest(self) -> str:
        """A stable hex digest of the selection (what a page cursor is bound to)."""
        text = f"{','.join(self.symbols)}|{self.timeframe}|{self.start_ns}|{self.end_ns}"
        return hashlib.sha256(text.encode("ascii")).hexdigest()

    def admits(self, cursor: BarCursor) -> bool:
        """Whether ``cursor`` can be a position inside this selection."""
        return cursor.symbol in self.symbols and self.start_ns <= cursor.ts < self.end_ns


@dataclass(frozen=True)
class BarPage:
    """One page of a selection: its bars, their text, and where the next page starts."""

    bars: pd.DataFrame  # internal bar frame, canonical order
    text: BarText
    next_cursor: BarCursor | None

    @property
    def sha256(self) -> str:
        """Canonical sha256 of the page's bars (the bytes ``phase1 export`` would write for
        them)."""
        return self.text.sha256()


def read_page(store: Store, selection: BarSelection, limit: int,
              after: BarCursor | None = None) -> BarPage:
    """Up to ``limit`` bars of ``selection`` after ``after`` (None: from the start)."""
    with store.read_snapshot():
        bars = BarReads(store).page(selection.symbols, selection.timeframe,
                                    selection.start_ns, selection.end_ns, limit + 1, after)
    following = None
    if len(bars) > limit:
        bars = bars.iloc[:limit]
        following = BarCursor(str(bars["symbol"].iat[-1]), int(bars["ts"].iat[-1]),
                              int(bars["nth"].iat[-1]))
    bars = bars.drop(columns="nth")
    return BarPage(bars, BarText.of(bars), following)


def read_all(store: Store, selection: BarSelection) -> Exported:
    """The whole selection as ``phase1 export`` writes it: ``export_window``'s result (the
    canonical CSV, its sha256 and the bars, in one read-only transaction)."""
    with store.read_snapshot():
        return export_window(store, selection.symbols, [selection.timeframe],
                             selection.start_ns, selection.end_ns)


def canonical_frame(exported: Exported) -> pd.DataFrame:
    """The canonical frame (``core.schema.CANONICAL_COLUMNS``) of an export's bars."""
    return to_canonical(exported.frame)


__all__ = ["BarCursor", "BarPage", "BarSelection", "canonical_frame", "read_all", "read_page"]
