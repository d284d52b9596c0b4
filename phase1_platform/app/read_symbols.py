"""Read which symbols the store holds bars for: per symbol its first and last trading date
and its timeframes (``GET /v1/symbols``, the dashboard's pickers).

One index-driven query (``storage.reads.BarReads.spans``: a loose scan of the distinct
symbols, two index probes per timeframe), never a scan of the bars.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.calendar import DEFAULT_CALENDAR, trading_dates
from ..storage import Store
from ..storage.reads import BarReads


@dataclass(frozen=True)
class SymbolSpan:
    symbol: str
    first_date: str  # trading date (exchange time) of its first bar
    last_date: str  # trading date of its last bar
    timeframes: tuple[str, ...]  # those with bars, duration order


def stored_symbols(store: Store, calendar: str = DEFAULT_CALENDAR) -> list[SymbolSpan]:
    """Every symbol with stored bars, sorted."""
    with store.read_snapshot():
        spans = BarReads(store).spans()
    if len(spans) == 0:
        return []
    first = trading_dates(spans["first_ts"].to_numpy("int64"), calendar)
    last = trading_dates(spans["last_ts"].to_numpy("int64"), calendar)
    out: dict[str, tuple[str, str, list[str]]] = {}
    for sym, tf, lo, hi in zip(spans["symbol"].tolist(), spans["timeframe"].tolist(),
                               first.tolist(), last.tolist(), strict=True):
        seen = out.get(sym)
        if seen is None:
            out[sym] = (lo, hi, [tf])
        else:
            out[sym] = (min(seen[0], lo), max(seen[1], hi), [*seen[2], tf])
    return [SymbolSpan(sym, lo, hi, tuple(tfs)) for sym, (lo, hi, tfs) in out.items()]


__all__ = ["SymbolSpan", "stored_symbols"]
