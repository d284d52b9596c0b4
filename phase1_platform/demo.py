"""`make run`: replay the shipped SPY fixture slice and check it against LEAN's bars.

Interim main job until the Dagster pipeline takes over (issue 5).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPY = ROOT / "fixtures" / "lean" / "equity" / "usa" / "spy"


def main() -> int:
    from .cli import main as phase1

    out = Path("exports") / "2013-10-07" / "SPY.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    rc = phase1(["replay", "--csv", str(SPY / "tick" / "20131007_trade.zip"),
                 "--timeframes", "1m,5m,15m,1h", "--output", str(out)])
    if rc:
        return rc
    print()
    return phase1(["parity", "--reference", str(SPY / "minute" / "20131007_trade.zip"),
                   "--csv", str(out), "--ticks", str(SPY / "tick" / "20131007_trade.zip"),
                   "--timeframes", "1m"])


if __name__ == "__main__":
    sys.exit(main())
