"""``phase1 parity``: compare generated canonical bars with reference bars (DESIGN section 8).

Exit 0 on parity, 1 on a mismatch, 2 on a user error (one line, no traceback).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..core import TickNormalizer, get_rules, read_canonical_csv
from ..core.calendar import DEFAULT_CALENDAR, exchange_tz
from ..core.parity import BarComparator
from ..core.timeframes import parse_timeframes
from ..readers import read_lean_bars, read_ticks
from . import UserError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "parity",
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
    p.set_defaults(func=run)


def _read_reference(path: str, contract: str | None, gen: pd.DataFrame,
                    calendar: str) -> pd.DataFrame:
    if Path(path).suffix.lower() != ".zip":
        return read_canonical_csv(path)
    daily = gen[gen["timeframe"] == "1d"]
    start = end = None
    if len(daily):  # a LEAN daily zip holds years: keep the generated dates only
        days = pd.to_datetime(daily["ts"].to_numpy("int64"), utc=True).tz_convert(
            exchange_tz(calendar))
        start, end = days.min().strftime("%Y-%m-%d"), days.max().strftime("%Y-%m-%d")
    return read_lean_bars(path, contract=contract, start=start, end=end)


def run(args: argparse.Namespace) -> int:
    rules = get_rules(args.rules)
    comparator = BarComparator(args.price_tolerance, args.volume_tolerance,
                               calendar=args.calendar)
    gen = read_canonical_csv(args.csv)
    ref = _read_reference(args.reference, args.contract, gen, args.calendar)
    if args.timeframes:
        keep = [t.name for t in parse_timeframes(args.timeframes)]
    else:
        keep = list(dict.fromkeys(ref["timeframe"])) or list(dict.fromkeys(gen["timeframe"]))
    skipped = sorted(set(gen["timeframe"]) - set(keep))
    gen = gen[gen["timeframe"].isin(keep)]
    ref = ref[ref["timeframe"].isin(keep)]
    ticks = None
    if args.ticks:
        kwargs = {"contract": args.contract} if args.contract else {}
        frames = [read_ticks(p, **kwargs) if p.lower().endswith(".zip") else read_ticks(p)
                  for p in args.ticks]
        raw = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        ticks = TickNormalizer().normalize(raw).ticks
        if len(ticks) == 0:
            raise UserError(f"no valid ticks in {', '.join(args.ticks)}")
    report = comparator.compare(gen, ref, ticks=ticks, rules=rules if ticks is not None else None)
    print(f"reference: {args.reference}")
    print(f"generated: {args.csv}")
    print(f"timeframes compared: {','.join(keep)}"
          + (f" (generated also has {','.join(skipped)}, not compared)" if skipped else ""))
    print(report.to_text())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return 0 if report.is_parity else 1
