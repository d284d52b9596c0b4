"""The parameters of the read use cases, parsed once for every reader (the read API, tests).

Each parser returns a checked value or raises ``InvalidParameterError`` (a ``ConfigError``)
whose ``parameter`` names the parameter and whose message is one line naming it, the value
and the fix. Nothing unchecked reaches SQL: symbols match DESIGN section 3's pattern, a
timeframe is one of section 5's, times lie in the platform's range.

Times (``parse_instant``) are RFC 3339 (``2013-10-07T13:30:00Z``, an offset, up to
nanoseconds; a time without a zone is refused, as for ticks) or a date ``YYYY-MM-DD``,
which means the start of that date's partition window (its midnight in exchange time,
``core.calendar.trading_day_window``): ``start=D&end=D+1`` selects trading date D.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from ..core.calendar import DEFAULT_CALENDAR, MAX_TS_NS, MIN_TS_NS, trading_day_window
from ..core.errors import ConfigError, InputError, UserError
from ..core.partition import SYMBOL_HINT, InvalidPartitionError, is_valid_symbol, validate_date
from ..core.timeframes import TimeframeError
from ..core.timeframes import parse_timeframe as parse_core_timeframe
from .export import FIRST_DATE, LAST_DATE

MAX_SYMBOLS = 100
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WHOLE = re.compile(r"[+-]?\d{1,12}")
_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})"
    r"(?:\.(?P<frac>\d{1,9}))?(?P<zone>[Zz]|[+-]\d{2}:\d{2})?")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class InvalidParameterError(ConfigError):
    """A read parameter that cannot be used as given; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


class NotFoundError(InputError):
    """What a reader asked for is not in the store (e.g. a partition nothing was stored
    for); ``parameter`` names the parameter that cannot exist, if one is at fault."""

    def __init__(self, parameter: str | None, message: str):
        super().__init__(message)
        self.parameter = parameter


def _shown(value: object, width: int = 40) -> str:
    """``value`` quoted for a message, cut to ``width`` characters (hostile input is long)."""
    text = repr(str(value))
    return text if len(text) <= width else text[:width - 4] + "...'"


def parse_symbol_list(text: str | Iterable[str] | None, parameter: str = "symbols",
                      required: bool = True) -> tuple[str, ...]:
    """Sorted unique upper-cased symbols of comma-separated ``text`` (at most
    ``MAX_SYMBOLS``); empty (only when not ``required``) means every symbol."""
    if text is None:
        items: list[str] = []
    else:
        items = str(text).split(",") if isinstance(text, str) else [str(t) for t in text]
    chosen = sorted({s.strip().upper() for s in items if s.strip()})
    if not chosen:
        if required:
            raise InvalidParameterError(parameter, f"{parameter} names no symbol: give one "
                                        "or more, comma-separated, e.g. SPY,AAPL")
        return ()
    bad = [s for s in chosen if not is_valid_symbol(s)]
    if bad:
        raise InvalidParameterError(parameter, f"{parameter}: invalid symbol {_shown(bad[0])}: "
                                    f"expected {SYMBOL_HINT}")
    if len(chosen) > MAX_SYMBOLS:
        raise InvalidParameterError(parameter, f"{parameter} names {len(chosen)} symbols: at "
                                    f"most {MAX_SYMBOLS} per request")
    return tuple(chosen)


def parse_timeframe(text: str | None, parameter: str = "timeframe") -> str:
    """One timeframe name: DESIGN section 5's or an information-driven one (``t<N>``,
    ``v<V>``, ``d<X>``, ``core.timeframes``)."""
    value = "" if text is None else str(text).strip()
    try:
        return parse_core_timeframe(value).name
    except TimeframeError as exc:
        raise InvalidParameterError(parameter, f"{parameter}: {exc.one_line()}") from None


def parse_limit(value: int | str | None, parameter: str = "limit",
                default: int = DEFAULT_LIMIT) -> int:
    """A page size in 1..``MAX_LIMIT`` (``default`` when not given)."""
    if value is None or value == "":
        return default
    text = str(value).strip()
    if not _WHOLE.fullmatch(text):
        raise InvalidParameterError(parameter, f"{parameter} {_shown(value)} is not a whole "
                                    f"number: give 1..{MAX_LIMIT}")
    n = int(text)
    if not 1 <= n <= MAX_LIMIT:
        raise InvalidParameterError(parameter, f"{parameter} {_shown(value)} is outside "
                                    f"1..{MAX_LIMIT}: give a page size in that range")
    return n


def parse_instant(text: str, parameter: str, calendar: str = DEFAULT_CALENDAR) -> int:
    """UTC ns of an RFC 3339 time or of the start of a date's partition window."""
    value = str(text).strip()
    hint = "give a date YYYY-MM-DD or an RFC 3339 time such as 2013-10-07T13:30:00Z"
    if _DATE.fullmatch(value):
        try:
            day = dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise InvalidParameterError(parameter, f"{parameter} {_shown(value)} is not a "
                                        f"real date: {hint}") from None
        if not FIRST_DATE <= day <= LAST_DATE:
            raise InvalidParameterError(parameter, f"{parameter} {day} is outside "
                                        f"{FIRST_DATE}..{LAST_DATE}: give a date in range")
        return trading_day_window(day, calendar)[0]
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise InvalidParameterError(parameter, f"{parameter} {_shown(value)} is not a "
                                    f"date or time: {hint}")
    if match["zone"] is None:
        raise InvalidParameterError(parameter, f"{parameter} {_shown(value)} has no time "
                                    "zone: end it with Z or an offset such as -04:00")
    try:
        zone = dt.UTC if match["zone"] in "Zz" else dt.timezone(_offset(match["zone"]))
        wall = dt.datetime.fromisoformat(
            f"{match['date']}T{match['h']}:{match['m']}:{match['s']}").replace(tzinfo=zone)
    except ValueError:
        raise InvalidParameterError(parameter, f"{parameter} {_shown(value)} is not a real "
                                    f"date and time: {hint}") from None
    delta = wall - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 10**9 + int((match["frac"] or "").ljust(9, "0"))
    if not MIN_TS_NS <= ns <= MAX_TS_NS:
        raise InvalidParameterError(parameter, f"{parameter} {_shown(value)} is outside "
                                    "1970-01-01T00:00:00Z..2262-04-11T00:00:00Z")
    return ns


def _offset(zone: str) -> dt.timedelta:
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(zone)
    sign = -1 if zone[0] == "-" else 1
    return sign * dt.timedelta(hours=hours, minutes=minutes)


def parse_window(start: str | None, end: str | None,
                 calendar: str = DEFAULT_CALENDAR) -> tuple[int, int]:
    """``[start_ns, end_ns)`` of optional ``start`` (None: the first instant) and ``end``
    (None: the last); ``end`` must be after ``start``. Given but empty is an error."""
    lo = MIN_TS_NS if start is None else parse_instant(start, "start", calendar)
    hi = MAX_TS_NS if end is None else parse_instant(end, "end", calendar)
    if hi <= lo:
        raise InvalidParameterError("end", f"end {_shown(end or '2262-04-11T00:00:00Z')} is "
                                    "not after start "
                                    f"{_shown(start or '1970-01-01T00:00:00Z')}: end is "
                                    "exclusive, give a later end (e.g. start=2013-10-07&"
                                    "end=2013-10-08)")
    return lo, hi


def parse_trading_date(text: str, parameter: str = "date",
                       calendar: str = DEFAULT_CALENDAR) -> str:
    """A real ``YYYY-MM-DD`` date; a date that is not a session of ``calendar`` is a
    ``NotFoundError`` (no partition can exist for it)."""
    value = str(text).strip()
    try:
        day = dt.date.fromisoformat(value).isoformat() if _DATE.fullmatch(value) else None
    except ValueError:
        day = None
    if day is None:
        raise InvalidParameterError(parameter, f"{parameter} {_shown(value)} is not a real "
                                    "date YYYY-MM-DD: give e.g. 2013-10-07")
    if not FIRST_DATE <= day <= LAST_DATE:
        raise InvalidParameterError(parameter, f"{parameter} {day} is outside "
                                    f"{FIRST_DATE}..{LAST_DATE}")
    try:
        return validate_date(day, calendar)
    except InvalidPartitionError:
        raise NotFoundError(parameter, f"{parameter} {day} is not a {calendar} trading "
                            "session (weekend, holiday or outside the calendar): no "
                            "partition exists for it; choose a trading day") from None


def parameter_of(exc: UserError) -> str | None:
    """The parameter a user error names, when it names one."""
    return getattr(exc, "parameter", None)


__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "MAX_SYMBOLS", "InvalidParameterError",
           "NotFoundError", "parameter_of", "parse_instant", "parse_limit",
           "parse_symbol_list", "parse_timeframe", "parse_trading_date", "parse_window"]
