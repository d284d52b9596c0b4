"""``phase1 replay``: deterministic replay of tick files into the canonical bar CSV."""

from __future__ import annotations

import argparse

from ..app.replay import persist, replay
from ..core.calendar import DEFAULT_CALENDAR
from ..core.export import CanonicalExporter
from ._args import add_command, add_database_url, add_timeframes, parse_symbols


def add_parser(sub) -> None:
    p = add_command(
        sub, "replay", run,
        help="replay tick files into canonical bars",
        description="Replay tick files (DESIGN tick CSV or LEAN tick zip) through the "
        "normalizer and the bar engine; write the canonical bar CSV; print counts and, "
        "last, sha256:<hex> of the output.",
    )
    p.add_argument("--csv", action="append", required=True, metavar="FILE",
                   help="tick file (repeatable): DESIGN tick CSV or LEAN tick zip")
    p.add_argument("--symbols", help="comma-separated symbols to keep (others quarantined)")
    add_timeframes(p)
    p.add_argument("--output", required=True, metavar="OUT.csv")
    p.add_argument("--rules", default="default", help="trade-eligibility rule set")
    p.add_argument("--calendar", default=DEFAULT_CALENDAR, help="exchange calendar for 1d bars")
    add_database_url(p, help="also persist ticks, quarantine and bars into this database "
                     "(SQLAlchemy URL, e.g. sqlite:///phase1.sqlite or "
                     "postgresql+psycopg://user:pass@host:5432/db); without it nothing is stored")


def run(args: argparse.Namespace) -> int:
    symbols = parse_symbols([args.symbols]) if args.symbols else None
    store = None
    if getattr(args, "database_url", None):
        from ..storage import Store

        store = Store.from_url(args.database_url)  # a bad URL fails before any work
    try:
        result = replay(args.csv, args.timeframes, symbols=symbols, rules=args.rules,
                        calendar=args.calendar)
        stored = persist(result, store, calendar=args.calendar) if store is not None else None
    finally:
        if store is not None:
            store.dispose()
    digest = CanonicalExporter(result.bars).write(args.output)
    for line in result.summary_lines():
        print(line)
    if stored is not None:
        for line in stored.summary_lines():
            print(line)
    print(f"output: {args.output}")
    print(digest)
    return 0
