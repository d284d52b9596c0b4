"""Per-symbol parity table against LEAN's own minute bars (not a timing benchmark).

    python -m benchmarks.lean_parity [--data ../shared/data/lean] [--dates 20131007,...]
        [--symbols spy,aig,bac,ibm] [--rules default,lean-equity] [--gc 201312]

For each symbol and date whose tick and minute zips exist in the LEAN ``Data/`` folder
(LEAN's layout), prints the 1m bars identical in all five fields per rule set and the
mismatch categories; the totals line sums the dates. Use it to check a rule set on other
days than the shipped ones (for instance LEAN's own repository's ``Data/`` folder).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from phase1_platform.core import BarComparator, BarEngine, TickNormalizer, get_rules
from phase1_platform.readers import read_lean_bars, read_lean_ticks


def one(ticks, ref, rules: str):
    rs = get_rules(rules)
    gen = BarEngine(rules=rs).build(ticks, "1m")
    return BarComparator().compare(gen, ref, ticks=ticks, rules=rs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"
                                         / "lean"))
    p.add_argument("--dates", default="20131007")
    p.add_argument("--symbols", default="spy,aig,bac,ibm")
    p.add_argument("--rules", default="lean-equity")
    p.add_argument("--gc", default="201312", help="GC contract month ('' to skip)")
    a = p.parse_args(argv)
    root = Path(a.data)
    series = [(s.upper(), "equity/usa", s, None, "lean-equity") for s in a.symbols.split(",") if s]
    if a.gc:
        series.append((f"GC {a.gc}", "future/comex", "gc", a.gc, "lean-future"))
    rules = a.rules.split(",")
    print(f"{'series':<10} {'rules':<12} {'matched':>16} {'pct':>7}  categories")
    for name, asset, sym, contract, own in series:
        for r in (rules if own == "lean-equity" else [own]):
            matched = total = 0
            cats: Counter[str] = Counter()
            for d in a.dates.split(","):
                tick = root / asset / "tick" / sym / f"{d}_trade.zip"
                minute = root / asset / "minute" / sym / f"{d}_trade.zip"
                if not (tick.exists() and minute.exists()):
                    continue
                ticks = TickNormalizer().normalize(read_lean_ticks(tick, contract=contract)).ticks
                ref = read_lean_bars(minute, contract=contract)
                rep = one(ticks, ref, r)
                matched += rep.matched
                total += len(ref)
                cats.update(rep.category_counts)
            if total:
                text = "; ".join(f"{n} {c[:60]}" for c, n in cats.most_common())
                print(f"{name:<10} {r:<12} {matched:>7}/{total:<8} {100 * matched / total:6.2f}%  "
                      f"{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
