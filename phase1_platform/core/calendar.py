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

from .errors import ConfigError

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


class CalendarError(ConfigError):
    pass


# pandas' nanosecond range, in which every timestamp of the platform lies (DESIGN section 3)
MIN_TS_NS = 0  # 1970-01-01T00:00:00Z
MAX_TS_NS = int(pd.Timestamp("2262-04-11T00:00:00Z").value)  # exclusive: up to 2262-04-10


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
    """All sessions whose dates touch [start_ns, end_ns] (UTC ns).

    Any int64 ns is accepted: the two-day margin is clamped to pandas' range (a tick near
    2262-04-10 must not overflow here), and a range beyond the calendar has no session."""
    lo = max(int(start_ns) - _MARGIN_NS, _PD_MIN_NS)
    hi = min(int(end_ns) + _MARGIN_NS, _PD_MAX_NS)
    first = pd.Timestamp(lo, tz="UTC").strftime("%Y-%m-%d")
    last = pd.Timestamp(hi, tz="UTC").strftime("%Y-%m-%d")
    return _sessions_cached(calendar, first, last)


_MARGIN_NS = 2 * 86_400 * 10**9
_PD_MIN_NS = int(pd.Timestamp.min.value)
_PD_MAX_NS = int(pd.Timestamp.max.value)


def session_dates(first: str, calendar: str = DEFAULT_CALENDAR) -> tuple[pd.DatetimeIndex, str]:
    """(every session date from ``first`` to the calendar's last, naive; that last date)."""
    cal = _calendar(calendar)
    sessions = pd.DatetimeIndex(cal.sessions).tz_localize(None)
    return sessions[sessions >= pd.Timestamp(first)], cal.last_session.strftime("%Y-%m-%d")


def session_bounds(day: str, calendar: str = DEFAULT_CALENDAR) -> tuple[int, int, int]:
    """(open_ns, close_ns, label_ns) of the session on ``day``; CalendarError if not one."""
    cal = _calendar(calendar)
    ts = pd.Timestamp(day)
    if not cal.is_session(ts):
        raise CalendarError(f"{day} is not a {calendar} trading session")
    s = _sessions_cached(calendar, day, day)
    return int(s.opens[0]), int(s.closes[0]), int(s.labels[0])


@lru_cache(maxsize=4096)
def trading_day_window(day: str, calendar: str = DEFAULT_CALENDAR) -> tuple[int, int]:
    """[start, end) in UTC ns of a trading date's whole calendar day in exchange time."""
    cal = _calendar(calendar)
    date = pd.Timestamp(day)
    start = date.tz_localize(cal.tz)
    end = (date + pd.Timedelta(days=1)).tz_localize(cal.tz)  # 23 or 25 hours on DST days
    return int(start.tz_convert("UTC").value), int(end.tz_convert("UTC").value)


def exchange_tz(calendar: str = DEFAULT_CALENDAR) -> str:
    return str(_calendar(calendar).tz)


def is_session(day: str, calendar: str = DEFAULT_CALENDAR) -> bool:
    """Whether ``day`` (``YYYY-MM-DD``) is a session; False outside the calendar's range."""
    cal = _calendar(calendar)
    try:
        ts = pd.Timestamp(day)
    except (ValueError, OverflowError):
        return False
    if ts < cal.first_session or ts > cal.last_session:
        return False
    return bool(cal.is_session(ts))


def trading_dates(ts: np.ndarray, calendar: str = DEFAULT_CALENDAR) -> np.ndarray:
    """``YYYY-MM-DD`` exchange-time date of each UTC ns timestamp (object array).

    The one home of "the trading date of a timestamp": the calendar date in the exchange's
    time zone (a partition covers that whole day; its session is part of it). Timestamps
    must lie in [MIN_TS_NS, MAX_TS_NS) (the normalizer quarantines the rest)."""
    ts = np.asarray(ts, dtype="int64")
    if len(ts) == 0:
        return np.empty(0, dtype=object)
    codes, uniq = pd.factorize(ts // _STEP_NS)  # zone offsets are multiples of 15 min
    local = pd.DatetimeIndex(pd.to_datetime(uniq * _STEP_NS, utc=True)).tz_convert(
        exchange_tz(calendar))
    return np.asarray(local.strftime("%Y-%m-%d"), dtype=object)[codes]


def trading_date_of(ts_ns: int, calendar: str = DEFAULT_CALENDAR) -> str:
    """The trading date (exchange-time calendar date) of one UTC ns timestamp."""
    return str(trading_dates(np.array([ts_ns], dtype="int64"), calendar)[0])


def session_labels(ts_ns: np.ndarray, calendar: str = DEFAULT_CALENDAR) -> np.ndarray:
    """Daily-bar label (midnight of the exchange-time date, as UTC ns) of each timestamp:
    how a vendor's daily bar stamped at any time of its session is labelled here."""
    dates = trading_dates(ts_ns, calendar)
    if len(dates) == 0:
        return np.empty(0, dtype="int64")
    codes, uniq = pd.factorize(dates)
    labels = pd.DatetimeIndex(pd.to_datetime(uniq)).tz_localize(exchange_tz(calendar))
    return labels.tz_convert("UTC").as_unit("ns").asi8[codes]


_STEP_NS = 15 * 60 * 10**9
