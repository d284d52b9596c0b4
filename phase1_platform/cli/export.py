"""``phase1 export``: canonical bar CSV of bars stored in the database (``app.export``)."""

from __future__ import annotations

import argparse

from ..app.export import export_bars, parse_date, parse_symbols
from ..core.calendar import DEFAULT_CALENDAR
from ..core.errors import ConfigError
from ._args import add_command, add_database_url, add_timeframes


def add_parser(sub) -> None:
    p = add_command(
        sub, "export", run,
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


def run(args: argparse.Namespace) -> int:
    from ..storage import Store

    if not args.symbols.strip(",").strip():
        raise ConfigError("--symbols names no symbol: give e.g. --symbols SPY,AAPL")
    symbols = parse_symbols(args.symbols)
    start, end = parse_date(args.start, "--start"), parse_date(args.end, "--end")
    if end < start:
        raise ConfigError(f"--end {end} is before --start {start}: swap them")
    store = Store.from_url(args.database_url)
    try:
        exported = export_bars(store, symbols, args.timeframes, start, end, args.calendar,
                               path=args.output)
    finally:
        store.dispose()
    print(f"database: {store.masked_url}")
    print(exported.bars_line())
    print(f"output: {args.output}")
    print(exported.sha256)
    return 0
