"""``phase1 parity``: compare generated canonical bars with reference bars (DESIGN section 8).

Exit 0 on parity, 1 on a mismatch, 2 on a user error (one line, no traceback).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.calendar import DEFAULT_CALENDAR
from ._args import add_command


def add_parser(sub) -> None:
    p = add_command(
        sub, "parity", run,
        help="compare generated bars with reference bars",
        description="Compare a generated canonical bar CSV with reference bars (a canonical "
        "CSV or a LEAN bar zip) and print a parity report: matched, mismatched by field, "
        "missing on each side, largest differences and, with --ticks, a category for each "
        "mismatch. Exit 0 on parity, 1 on mismatch, 2 on a usage error.",
    )
    p.add_argument("--reference", required=True, metavar="REF",
                   help="reference bars: canonical CSV or LEAN minute/second/daily zip")
    p.add_argument("--csv", required=True, metavar="GEN.csv", help="generated canonical CSV")
    p.add_argument("--price-tolerance", type=float, default=1e-9, metavar="X",
                   help="absolute price tolerance in price units (default 1e-9)")
    p.add_argument("--volume-tolerance", type=float, default=0.0, metavar="Y",
                   help="relative volume tolerance, 0.01 = 1%% (default 0: exact)")
    p.add_argument("--ticks", action="append", metavar="FILE",
                   help="tick file the bars came from (DESIGN tick CSV or LEAN tick zip; "
                   "repeatable): enables mismatch categories")
    p.add_argument("--rules", default="default",
                   help="rule set the generated bars were built with (default: default)")
    p.add_argument("--timeframes", help="compare only these timeframes (default: the "
                   "reference's timeframes)")
    p.add_argument("--contract", metavar="YYYYMM",
                   help="futures contract month inside LEAN zips (e.g. 201312)")
    p.add_argument("--calendar", default=DEFAULT_CALENDAR,
                   help="exchange calendar of the daily bars (default XNYS)")
    p.add_argument("--json", metavar="OUT.json", help="also write the report as JSON")


def run(args: argparse.Namespace) -> int:
    from ..app.parity import compare_files

    result = compare_files(
        args.reference, args.csv, price_tolerance=args.price_tolerance,
        volume_tolerance=args.volume_tolerance, ticks=args.ticks, rules=args.rules,
        timeframes=args.timeframes, contract=args.contract, calendar=args.calendar)
    print(f"reference: {args.reference}")
    print(f"generated: {args.csv}")
    print(f"timeframes compared: {','.join(result.timeframes)}"
          + (f" (generated also has {','.join(result.skipped)}, not compared)"
             if result.skipped else ""))
    print(result.report.to_text())
    if args.json:
        Path(args.json).write_text(json.dumps(result.report.to_dict(), indent=2) + "\n")
    return 0 if result.is_parity else 1
