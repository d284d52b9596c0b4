"""`make bench`: every benchmark of the project; the last line is one JSON object.

Usage: python -m benchmarks [--quick] [--only engine|store|api|dagster|backfill|live]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

SUITES = {"engine": "benchmarks.bench_engine", "store": "benchmarks.bench_store",
          "api": "benchmarks.bench_api", "dagster": "benchmarks.bench_dagster",
          "backfill": "benchmarks.bench_backfill", "live": "benchmarks.bench_live_path"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", choices=sorted(SUITES), action="append")
    args = parser.parse_args(argv)
    figures: dict[str, float] = {}
    for name in args.only or list(SUITES):
        print(f"== {name} benchmark", flush=True)
        figures.update(importlib.import_module(SUITES[name]).run(quick=args.quick))
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
