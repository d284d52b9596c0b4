"""Partition: one symbol on one trading date, the unit every layer builds, stores and checks.

The one home of a partition's key (``"YYYY-MM-DD|SYMBOL"``, Dagster's multi-partition
order: date, symbol), of its window (the whole calendar day of the trading date in
exchange time, ``[start_ns, end_ns)``: 23 or 25 hours on DST days) and of the symbol
rule of DESIGN section 3. A ``Partition`` can only be built valid: the symbol matches
``SYMBOL_PATTERN`` and the date is a session of the calendar, so no path, SQL or file
name is ever made from an unchecked key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from .calendar import DEFAULT_CALENDAR, is_session, trading_date_of, trading_day_window
from .errors import ConfigError

# DESIGN section 3: starts with a letter or digit, then up to 15 of letters, digits, . and -
SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9.\-]{0,15}$"
SYMBOL_HINT = "1-16 of A-Z 0-9 . - starting with a letter or digit, e.g. SPY or BRK.B"
_SYMBOL = re.compile(SYMBOL_PATTERN)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
KEY_SEPARATOR = "|"


class InvalidSymbolError(ConfigError):
    pass


class InvalidPartitionError(ConfigError):
    pass


def is_valid_symbol(symbol: object) -> bool:
    return isinstance(symbol, str) and _SYMBOL.fullmatch(symbol) is not None


def validate_symbol(symbol: object) -> str:
    """``symbol`` itself when valid (DESIGN section 3); else ``InvalidSymbolError``."""
    if not is_valid_symbol(symbol):
        raise InvalidSymbolError(f"invalid symbol {symbol!r}: expected {SYMBOL_HINT}")
    return symbol  # type: ignore[return-value]


def validate_date(date: object, calendar: str = DEFAULT_CALENDAR) -> str:
    """``date`` itself when it is ``YYYY-MM-DD`` and a session of ``calendar``."""
    if not isinstance(date, str) or not _DATE.fullmatch(date):
        raise InvalidPartitionError(f"invalid trading date {date!r}: expected YYYY-MM-DD")
    if not is_session(date, calendar):
        raise InvalidPartitionError(
            f"{date} is not a {calendar} trading session (weekend, holiday or outside the "
            "calendar): choose a trading day")
    return date


@dataclass(frozen=True, order=True)
class Partition:
    """A valid (trading date, symbol) of one exchange calendar."""

    date: str
    symbol: str
    calendar: str = DEFAULT_CALENDAR

    def __post_init__(self) -> None:
        validate_symbol(self.symbol)
        validate_date(self.date, self.calendar)

    @classmethod
    def parse(cls, key: object, calendar: str = DEFAULT_CALENDAR) -> Partition:
        """The partition of a key like ``2013-10-07|SPY``; ``InvalidPartitionError`` else."""
        date, sep, symbol = str(key).partition(KEY_SEPARATOR)
        if not sep or not date or not symbol:
            raise InvalidPartitionError(
                f"partition key {key!r} is not <YYYY-MM-DD>|<SYMBOL>, e.g. 2013-10-07|SPY")
        try:
            return cls(date, symbol, calendar)
        except InvalidSymbolError as exc:
            raise InvalidPartitionError(f"partition key {key!r}: {exc}") from None

    @classmethod
    def of_timestamp(cls, symbol: str, ts_ns: int, calendar: str = DEFAULT_CALENDAR
                     ) -> Partition:
        """The partition a tick at ``ts_ns`` (UTC ns) of ``symbol`` belongs to."""
        return cls(trading_date_of(ts_ns, calendar), symbol, calendar)

    @property
    def key(self) -> str:
        return f"{self.date}{KEY_SEPARATOR}{self.symbol}"

    @cached_property
    def window(self) -> tuple[int, int]:
        return trading_day_window(self.date, self.calendar)

    @property
    def start_ns(self) -> int:
        return self.window[0]

    @property
    def end_ns(self) -> int:
        return self.window[1]

    def __str__(self) -> str:
        return self.key
