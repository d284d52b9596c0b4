"""Trading sessions from the exchange-calendars library (XNYS by default).

Daily bars cover one regular session; sessions come from the maintained calendar, so
DST changes and half days (early closes) are right without code of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

DEFAULT_CALENDAR = "XNYS"


@dataclass(frozen=True)
class Sessions:
    """Sessions in a range as int64 ns arrays: regular open, close, and the bar label."""

    opens: np.ndarray
    closes: np.ndarray
    labels: np.ndarray  # session date's midnight in the exchange time zone, as UTC ns

    def locate(self, ts: np.ndarray) -> np.ndarray:
        """Index of the session each timestamp falls in ([open, close)), -1 outside."""
        idx = np.searchsorted(self.opens, ts, side="right") - 1
        inside = (idx >= 0) & (ts < self.closes[np.clip(idx, 0, None)]) if len(self.opens) else (
            np.zeros(len(ts), dtype=bool)
        )
        return np.where(inside, idx, -1)


class CalendarError(ValueError):
    pass


@lru_cache(maxsize=16)
def _calendar(name: str) -> xcals.ExchangeCalendar:
    try:
        return xcals.get_calendar(name, start="1990-01-01")
    except xcals.errors.InvalidCalendarName as exc:
        raise CalendarError(f"unknown exchange calendar {name!r}") from exc


@lru_cache(maxsize=256)
def _sessions_cached(name: str, first_day: str, last_day: str) -> Sessions:
    cal = _calendar(name)
    first = max(pd.Timestamp(first_day), cal.first_session)
    last = min(pd.Timestamp(last_day), cal.last_session)
    if first > last:
        empty = np.empty(0, dtype="int64")
        return Sessions(empty, empty, empty)
    sched = cal.schedule.loc[first:last]
    opens = sched["open"].to_numpy(dtype="datetime64[ns]").view("int64")
    closes = sched["close"].to_numpy(dtype="datetime64[ns]").view("int64")
    labels = (
        pd.DatetimeIndex(sched.index).tz_localize(cal.tz).tz_convert("UTC").as_unit("ns").asi8
    )
    return Sessions(opens, closes, labels)


def sessions_between(start_ns: int, end_ns: int, calendar: str = DEFAULT_CALENDAR) -> Sessions:
    """All sessions whose dates touch [start_ns, end_ns] (UTC ns)."""
    first = (pd.Timestamp(start_ns, tz="UTC") - pd.Timedelta(days=2)).strftime("%Y-%m-%d")
    last = (pd.Timestamp(end_ns, tz="UTC") + pd.Timedelta(days=2)).strftime("%Y-%m-%d")
    return _sessions_cached(calendar, first, last)


def session_bounds(day: str, calendar: str = DEFAULT_CALENDAR) -> tuple[int, int, int]:
    """(open_ns, close_ns, label_ns) of the session on ``day``; CalendarError if not one."""
    cal = _calendar(calendar)
    ts = pd.Timestamp(day)
    if not cal.is_session(ts):
        raise CalendarError(f"{day} is not a {calendar} trading session")
    s = _sessions_cached(calendar, day, day)
    return int(s.opens[0]), int(s.closes[0]), int(s.labels[0])


def trading_day_window(day: str, calendar: str = DEFAULT_CALENDAR) -> tuple[int, int]:
    """[start, end) in UTC ns of a trading date's whole calendar day in exchange time."""
    cal = _calendar(calendar)
    date = pd.Timestamp(day)
    start = date.tz_localize(cal.tz)
    end = (date + pd.Timedelta(days=1)).tz_localize(cal.tz)  # 23 or 25 hours on DST days
    return int(start.tz_convert("UTC").value), int(end.tz_convert("UTC").value)


def exchange_tz(calendar: str = DEFAULT_CALENDAR) -> str:
    return str(_calendar(calendar).tz)
