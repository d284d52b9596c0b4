"""Partitions: trading date (XNYS sessions, America/New_York) x symbol (dynamic).

Keys read ``"2013-10-07|SPY"`` (dimension names in alphabetical order: date, symbol).
The date dimension is a daily time window whose non-sessions (weekends and exchange
holidays from the maintained calendar) are excluded, so a non-trading day is simply not
a partition: ``dagster asset materialize --partition 2013-10-05|SPY`` fails with
``DagsterUnknownPartitionError``. The symbol dimension is the dynamic partition set
``symbols`` of the Dagster instance (``phase1 symbols add SPY``, or the UI).

Keys are made and split by ``core.partition.Partition`` only (the one home of the key
format and of the symbol rule): ``to_partition``/``split_key`` refuse a key whose symbol
is invalid, ``registered_symbols`` separates the invalid keys someone added to the
instance directly (the UI or the API do not validate them).
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache

import dagster as dg
import pandas as pd

from ..core.calendar import DEFAULT_CALENDAR, exchange_tz, session_dates
from ..core.partition import (
    KEY_SEPARATOR,
    InvalidPartitionError,
    Partition,
    is_valid_symbol,
    validate_date,
)

FIRST_DATE = os.environ.get("PHASE1_FIRST_DATE", "2013-01-01")
SYMBOLS_PARTITION = "symbols"


@lru_cache(maxsize=4)
def non_sessions(calendar: str = DEFAULT_CALENDAR, first: str = FIRST_DATE) -> list[datetime]:
    """Weekdays from ``first`` to the calendar's last session that are not sessions."""
    sessions, last = session_dates(first, calendar)  # the process's one calendar instance
    days = pd.bdate_range(first, last)
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

# A backfill processes many partitions per run, each run doing the work once for all of them
# (app.run_build). Dagster splits a two-dimensional selection into ranges that hold one
# dimension constant, grouping by the dimension with fewer keys (20 dates x 20 symbols: one
# range per date; 4 symbols x 5 dates: one per symbol), then chunks each range into runs of
# at most this many partitions. A selection that is not contiguous in the other dimension
# (symbols A, C without B) splits into one range per contiguous stretch: select whole
# symbol blocks or date ranges. PHASE1_BACKFILL_PARTITIONS_PER_RUN (read where the code
# location loads) bounds a run's memory: a day of the full tape is not one run.
MAX_PARTITIONS_PER_RUN = int(os.environ.get("PHASE1_BACKFILL_PARTITIONS_PER_RUN", "100"))
backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN)
# how every partitioned asset of the graph is partitioned and backfilled
PARTITIONED = {"partitions_def": partitions_def, "backfill_policy": backfill_policy}


def to_partition(key: str | dg.MultiPartitionKey) -> Partition:
    """The validated ``Partition`` of a Dagster partition key (``2013-10-07|SPY``);
    ``InvalidPartitionError`` (one line) for a malformed key, an invalid symbol (e.g. a
    dynamic partition ``../../x`` added through the UI) or a date that is no session."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return Partition.parse(f"{dims['date']}{KEY_SEPARATOR}{dims['symbol']}")
    return Partition.parse(key)


def split_key(key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(date, symbol) of a partition key like ``2013-10-07|SPY``, validated."""
    part = to_partition(key)
    return part.date, part.symbol


def partition_key(date: str, symbol: str) -> str:
    """The key of (date, symbol), validated (``core.partition.Partition.key``)."""
    return Partition(date, symbol).key


def is_trading_date(date: str) -> bool:
    """Whether ``date`` is a partition of the date dimension (an XNYS session from
    ``FIRST_DATE`` to the last partition)."""
    try:
        validate_date(date)
    except InvalidPartitionError:
        return False
    return date_partitions.has_partition_key(date)


def registered_symbols(instance: dg.DagsterInstance) -> tuple[list[str], list[str]]:
    """(valid, invalid) keys of the ``symbols`` dynamic partitions, each sorted. A key
    added through the UI or API is not validated by Dagster; only valid ones may become
    partition keys, run requests or paths."""
    keys = sorted(instance.get_dynamic_partitions(SYMBOLS_PARTITION))
    return ([k for k in keys if is_valid_symbol(k)], [k for k in keys if not is_valid_symbol(k)])
