"""Partitions: trading date (XNYS sessions, America/New_York) x symbol (dynamic).

Keys read ``"2013-10-07|SPY"`` (dimension names in alphabetical order: date, symbol).
The date dimension is a daily time window whose non-sessions (weekends and exchange
holidays from the maintained calendar) are excluded, so a non-trading day is simply not
a partition: ``dagster asset materialize --partition 2013-10-05|SPY`` fails with
``DagsterUnknownPartitionError``. The symbol dimension is the dynamic partition set
``symbols`` of the Dagster instance (``phase1 symbols add SPY``, or the UI).
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache

import dagster as dg
import exchange_calendars as xcals
import pandas as pd

from ..core.calendar import DEFAULT_CALENDAR, exchange_tz

FIRST_DATE = os.environ.get("PHASE1_FIRST_DATE", "2013-01-01")
SYMBOLS_PARTITION = "symbols"


@lru_cache(maxsize=4)
def non_sessions(calendar: str = DEFAULT_CALENDAR, first: str = FIRST_DATE) -> list[datetime]:
    """Weekdays from ``first`` to the calendar's last session that are not sessions."""
    cal = xcals.get_calendar(calendar, start=first)
    days = pd.bdate_range(first, cal.last_session.tz_localize(None))
    sessions = pd.DatetimeIndex(cal.sessions).tz_localize(None)
    return [d.to_pydatetime() for d in days.difference(sessions)]


def trading_date_partitions(calendar: str = DEFAULT_CALENDAR,
                            first: str = FIRST_DATE) -> dg.TimeWindowPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=first,
        timezone=exchange_tz(calendar),
        end_offset=1,  # today's session is a partition too (live micro-batches)
        exclusions=["0 0 * * 6,0", *non_sessions(calendar, first)],
    )


symbol_partitions = dg.DynamicPartitionsDefinition(name=SYMBOLS_PARTITION)
date_partitions = trading_date_partitions()
partitions_def = dg.MultiPartitionsDefinition(
    {"date": date_partitions, "symbol": symbol_partitions}
)

# A backfill processes several partitions per run: Dagster splits the requested keys into
# one range per trading date (all symbols of the date), then chunks of at most this many.
# PHASE1_BACKFILL_PARTITIONS_PER_RUN (read where the code location loads) overrides it.
MAX_PARTITIONS_PER_RUN = int(os.environ.get("PHASE1_BACKFILL_PARTITIONS_PER_RUN", "20"))
backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN)


def split_key(key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(date, symbol) of a partition key like ``2013-10-07|SPY``."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["date"], dims["symbol"]
    date, sep, symbol = str(key).partition("|")
    if not sep or not date or not symbol:
        raise ValueError(f"partition key {key!r} is not <YYYY-MM-DD>|<SYMBOL>")
    return date, symbol


def partition_key(date: str, symbol: str) -> str:
    return f"{date}|{symbol}"
