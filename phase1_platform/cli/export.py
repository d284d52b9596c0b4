"""``phase1 export``: canonical bar CSV of bars stored in the database."""

from __future__ import annotations

import argparse

import pandas as pd

from ..core import CanonicalExporter
from ..core.calendar import DEFAULT_CALENDAR, trading_day_window
from ..core.timeframes import parse_timeframes
from ..pipeline import bars_line
from . import UserError
from ._args import add_database_url, add_timeframes


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write the canonical CSV of stored bars",
        description="Read bars from the store and write the canonical bar CSV of the "
        "symbols and timeframes over trading dates START..END (inclusive, exchange time); "
        "print counts and, last, sha256:<hex> of the output.",
    )
    add_database_url(p)
    p.add_argument("--symbols", required=True, help="comma-separated symbols")
    add_timeframes(p)
    p.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="first trading date")
    p.add_argument("--end", required=True, metavar="YYYY-MM-DD",
                   help="last trading date (inclusive)")
    p.add_argument("--output", required=True, metavar="OUT.csv")
    p.add_argument("--calendar", default=DEFAULT_CALENDAR, help="exchange calendar")
    p.set_defaults(func=run)


def _date(text: str, flag: str) -> str:
    try:
        return pd.Timestamp(pd.to_datetime(text, format="%Y-%m-%d")).strftime("%Y-%m-%d")
    except (ValueError, TypeError):
        raise UserError(f"{flag} {text!r} is not a date YYYY-MM-DD") from None


def run(args: argparse.Namespace) -> int:
    from ..storage import BarRepository, Store

    symbols = sorted({s.strip().upper() for s in args.symbols.split(",") if s.strip()})
    if not symbols:
        raise UserError("--symbols names no symbol")
    timeframes = [t.name for t in parse_timeframes(args.timeframes)]
    start_day, end_day = _date(args.start, "--start"), _date(args.end, "--end")
    if end_day < start_day:
        raise UserError(f"--end {end_day} is before --start {start_day}")
    start_ns = trading_day_window(start_day, args.calendar)[0]
    end_ns = trading_day_window(end_day, args.calendar)[1]
    store = Store.from_url(args.database_url)
    bars = BarRepository(store).read(symbols, timeframes, start_ns, end_ns)
    store.dispose()
    digest = CanonicalExporter(bars).write(args.output)
    print(f"database: {store.masked_url}")
    print(bars_line(bars))
    print(f"output: {args.output}")
    print(digest)
    return 0
