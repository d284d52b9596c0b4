"""Schedules: the daily backfill after the close, the weekly reconciliation.

``daily_backfill`` (16:30 America/New_York, Monday to Friday): on an XNYS session, one
``bars_pipeline`` run per registered symbol for that day's partition ``<date>|<SYMBOL>``
(run key ``daily|<date>|<SYMBOL>``): ``raw_ticks`` lands the day from the symbol's
configured historical source (``sources`` resource: the file drop by default, Alpaca in
live mode), then bars, checks and the export follow. A holiday is skipped with the reason.

``weekly_reconciliation`` (Saturday 09:00 America/New_York): per registered symbol, one
``reconcile_vendor_bars`` run over the week's sessions (the seven days before the tick):
the vendor's bars are fetched again (``reference_bars``) and the stored bars of every
timeframe are compared against them by the parity checks; the outcome is the checks'
results (Assets -> bars_1m -> Checks in the UI), one row per partition in their metadata.

A registered symbol key that is not a valid symbol (added through the UI or the API,
which do not validate it) gets no run: it is named in the schedule's log with the fix
(``phase1 symbols remove``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

from ...core.calendar import DEFAULT_CALENDAR, exchange_tz, trading_date_of
from ...core.partition import Partition
from ..jobs import bars_pipeline, reconcile_vendor_bars
from ..partitions import date_partitions, is_trading_date, registered_symbols

TZ = exchange_tz(DEFAULT_CALENDAR)
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
NO_SYMBOLS = "no symbols registered: add some with `phase1 symbols add SYMBOL`"


def _local_date(when: datetime) -> str:
    return trading_date_of(pd.Timestamp(when).value)


def _per_symbol(context: dg.ScheduleEvaluationContext, request):
    """``request(symbol)`` for each valid registered symbol, or why there is none; an
    invalid key is named in the log with the fix."""
    valid, invalid = registered_symbols(context.instance)
    if invalid:
        context.log.warning(
            f"skipping invalid symbol partition(s) {', '.join(map(repr, invalid))}: remove "
            "them with `phase1 symbols remove KEY`")
    if not valid:
        return dg.SkipReason(NO_SYMBOLS)
    return [request(s) for s in valid]


def _exchange_schedule(name: str, job, cron: str, description: str):
    """A schedule on the exchange's clock (America/New_York), running by default; its
    function gets the trading date of the tick."""
    def decorate(fn):
        @dg.schedule(name=name, job=job, cron_schedule=cron, execution_timezone=TZ,
                     default_status=dg.DefaultScheduleStatus.RUNNING, description=description)
        def schedule(context: dg.ScheduleEvaluationContext):
            return fn(context, _local_date(context.scheduled_execution_time))

        return schedule

    return decorate


@_exchange_schedule(
    "daily_backfill", bars_pipeline, "30 16 * * 1-5",
    "After the close on trading days: the day's partition of every registered symbol from "
    "its configured historical source (bars_pipeline); holidays are skipped.",
)
def daily_backfill(context: dg.ScheduleEvaluationContext, date: str):
    if not is_trading_date(date):
        return dg.SkipReason(f"{date} is not an XNYS trading session (weekend or holiday): "
                             "nothing to backfill")

    def request(symbol: str) -> dg.RunRequest:
        key = Partition(date, symbol).key
        return dg.RunRequest(run_key=f"daily|{key}", partition_key=key,
                             tags={"phase1/trigger": "daily_backfill"})

    return _per_symbol(context, request)


def week_sessions(end_exclusive: str, days: int = 7) -> list[str]:
    """The trading dates in [end - days, end)."""
    end = pd.Timestamp(end_exclusive)
    start = end - timedelta(days=days)
    window = dg.TimeWindow(start.tz_localize(TZ).to_pydatetime(),
                           end.tz_localize(TZ).to_pydatetime())
    keys = date_partitions.get_partition_keys_in_time_window(window)
    return [k for k in keys if is_trading_date(k)]


@_exchange_schedule(
    "weekly_reconciliation", reconcile_vendor_bars, "0 9 * * 6",
    "Every Saturday: the past week's stored bars of every registered symbol against the "
    "vendor's bars; the outcome shows as parity asset-check results.",
)
def weekly_reconciliation(context: dg.ScheduleEvaluationContext, today: str):
    dates = week_sessions(today)
    if not dates:
        return dg.SkipReason(f"no trading session in the week before {today}")
    first, last = dates[0], dates[-1]
    return _per_symbol(context, lambda s: dg.RunRequest(
        run_key=f"weekly|{first}..{last}|{s}",
        tags={RANGE_START: Partition(first, s).key, RANGE_END: Partition(last, s).key,
              "phase1/trigger": "weekly_reconciliation"}))


ALL_SCHEDULES = [daily_backfill, weekly_reconciliation]
