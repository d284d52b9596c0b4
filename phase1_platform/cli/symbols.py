"""``phase1 symbols add|list|remove SYMBOL...``: the symbol partitions of the Dagster instance.

Symbols are the dynamic partition set ``symbols`` of the instance in ``DAGSTER_HOME``
(default ``./.dagster_home``, created on first use); the Dagster UI manages the same set.
"""

from __future__ import annotations

import argparse

from . import UserError
from ._args import parse_symbols


def add_parser(sub) -> None:
    p = sub.add_parser(
        "symbols",
        help="manage the symbol partitions of the Dagster instance",
        description="Add, list or remove the symbols (dynamic partitions 'symbols') of the "
        "Dagster instance in DAGSTER_HOME (default ./.dagster_home).",
    )
    p.add_argument("action", choices=["add", "list", "remove"])
    p.add_argument("symbols", nargs="*", metavar="SYMBOL")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..defs.instance import get_instance
    from ..defs.partitions import SYMBOLS_PARTITION

    symbols = parse_symbols(args.symbols)
    if args.action != "list" and not symbols:
        raise UserError(f"symbols {args.action}: give at least one SYMBOL")
    instance = get_instance()
    existing = list(instance.get_dynamic_partitions(SYMBOLS_PARTITION))
    if args.action == "add":
        new = [s for s in symbols if s not in existing]
        if new:
            instance.add_dynamic_partitions(SYMBOLS_PARTITION, new)
        print(f"added: {', '.join(new) or '(none new)'}")
    elif args.action == "remove":
        unknown = [s for s in symbols if s not in existing]
        if unknown:
            raise UserError(f"not a symbol partition: {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(existing)) or 'none'})")
        for s in symbols:
            instance.delete_dynamic_partition(SYMBOLS_PARTITION, s)
        print(f"removed: {', '.join(symbols)}")
    current = sorted(instance.get_dynamic_partitions(SYMBOLS_PARTITION))
    if args.action == "list":
        for s in current:
            print(s)
        if not current:
            print("(no symbols; add some with: phase1 symbols add SPY AAPL)")
    else:
        print(f"symbols: {', '.join(current) or '(none)'}")
    print(f"instance: {instance.root_directory}")
    return 0
