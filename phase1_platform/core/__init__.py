"""Pure domain of the platform: imports no Dagster, database or network code."""

from .calendar import DEFAULT_CALENDAR, CalendarError, session_bounds, trading_day_window
from .engine import BarEngine, rollup, sort_bars
from .export import (
    CanonicalExporter,
    CanonicalFormatError,
    compute_hash,
    read_canonical_csv,
    to_canonical,
)
from .normalizer import NormalizeResult, Reason, TickNormalizer
from .parity import BarComparator, ParityInputError, ParityReport
from .rules import DEFAULT_RULES, EligibilityRules, get_rules
from .streaming import StreamingBarAggregator, StreamingError
from .timeframes import TIMEFRAMES, Timeframe, parse_timeframes

__all__ = [
    "DEFAULT_CALENDAR",
    "DEFAULT_RULES",
    "TIMEFRAMES",
    "BarComparator",
    "BarEngine",
    "CalendarError",
    "CanonicalExporter",
    "CanonicalFormatError",
    "EligibilityRules",
    "NormalizeResult",
    "ParityInputError",
    "ParityReport",
    "Reason",
    "StreamingBarAggregator",
    "StreamingError",
    "TickNormalizer",
    "Timeframe",
    "compute_hash",
    "get_rules",
    "parse_timeframes",
    "read_canonical_csv",
    "rollup",
    "session_bounds",
    "sort_bars",
    "to_canonical",
    "trading_day_window",
]
