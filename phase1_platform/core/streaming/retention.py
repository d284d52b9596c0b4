"""Retention (``retain_dates``): per symbol, only the newest N trading dates that had
ticks, and what lies between them, stay in the minute book.

When a tick of a newer trading date arrives (``core.calendar.trading_dates``,
exchange-time dates), minutes, pending updates and trade ids before the oldest retained
date are dropped, and that date's start becomes the symbol's floor: a later tick older
than the floor is ignored and counted in ``expired`` (its partition's batch rebuild from
the store has it). Without retention a symbol's day end is never reached, so nothing
here runs.
"""

from __future__ import annotations

import numpy as np

from ..calendar import trading_dates, trading_day_window
from .book import (
    BARS,
    DAY_END,
    DAYS,
    DIRTY,
    FLOOR,
    LAST_BAR,
    LAST_MIN,
    NO_MINUTE,
    SEEN,
    MinuteBook,
)


class Retention:
    """Rolls each symbol's retained trading dates and evicts what falls before them."""

    def __init__(self, book: MinuteBook, calendar: str, retain_dates: int | None) -> None:
        self.counts = book.counts
        self.calendar = calendar
        self.retain_dates = retain_dates

    def roll(self, st: list, day: str) -> None:
        """A tick of trading date ``day``, newer than every date seen for the symbol:
        make it the newest retained date, evicting state before the oldest one kept."""
        start, end = trading_day_window(day, self.calendar)
        days = st[DAYS]
        days.append(start)
        st[DAY_END] = end
        if len(days) <= self.retain_dates:
            return
        del days[: len(days) - self.retain_dates]
        floor = st[FLOOR] = days[0]
        bars = st[BARS]
        for m in [m for m in bars if m < floor]:
            del bars[m]
        st[DIRTY] = {m for m in st[DIRTY] if m >= floor}
        st[SEEN] = {k for k in st[SEEN] if k[0] >= floor}
        st[LAST_MIN], st[LAST_BAR] = NO_MINUTE, None

    def roll_tick(self, st: list, ts: int) -> None:
        """``roll`` to the trading date of one tick at ``ts`` (int ns)."""
        self.roll(st, str(trading_dates(np.array([ts], dtype="int64"), self.calendar)[0]))

    def retain(self, ts: np.ndarray, sym_codes, states: list) -> np.ndarray | None:
        """Roll each symbol's trading dates for a batch; the mask of the rows that are
        not expired (None: all are kept)."""
        keep = None
        for code, st in enumerate(states):
            rows = None if sym_codes is None else np.flatnonzero(sym_codes == code)
            t = ts if rows is None else ts[rows]
            if len(t) == 0:
                continue
            if int(t.max()) >= st[DAY_END]:
                for day in np.unique(trading_dates(t[t >= st[DAY_END]], self.calendar)):
                    if trading_day_window(str(day), self.calendar)[0] >= st[DAY_END]:
                        self.roll(st, str(day))
            old = t < st[FLOOR]
            if old.any():
                if keep is None:
                    keep = np.ones(len(ts), dtype=bool)
                keep[np.flatnonzero(old) if rows is None else rows[old]] = False
        if keep is not None:
            self.counts[2] += int(np.count_nonzero(~keep))
        return keep
