"""``phase1 symbols add|list|remove SYMBOL...``: the symbol partitions of the Dagster instance.

Symbols are the dynamic partition set ``symbols`` of the instance in ``DAGSTER_HOME``
(default ``./.dagster_home``, created on first use); the Dagster UI manages the same set.

``add`` refuses an invalid symbol (DESIGN section 3) with one line (exit 2). The UI and
Dagster's API do not validate keys, so ``list`` marks invalid ones and ``remove`` takes a
key exactly as stored (e.g. ``phase1 symbols remove '../../x'``) to delete it.
"""

from __future__ import annotations

import argparse

from ..core.errors import ConfigError
from ..core.partition import is_valid_symbol, validate_symbol
from ._args import add_command, parse_symbols


def add_parser(sub) -> None:
    p = add_command(
        sub, "symbols", run,
        help="manage the symbol partitions of the Dagster instance",
        description="Add, list or remove the symbols (dynamic partitions 'symbols') of the "
        "Dagster instance in DAGSTER_HOME (default ./.dagster_home).",
    )
    p.add_argument("action", choices=["add", "list", "remove"])
    p.add_argument("symbols", nargs="*", metavar="SYMBOL")


def _raw_keys(values: list[str]) -> list[str]:
    """The keys named by ``values`` (comma-separated, stripped), first occurrence order."""
    out: dict[str, None] = {}
    for raw in values:
        for part in raw.split(","):
            if part.strip():
                out[part.strip()] = None
    return list(out)


def _show(key: str) -> str:
    """A key for output: as is when valid, else quoted (an invalid key may hold anything)."""
    return key if is_valid_symbol(key) else repr(key)


def _to_remove(keys: list[str], existing: list[str]) -> list[str]:
    """The stored keys that ``keys`` name: exactly as stored (any key, also an invalid
    one someone added through the UI or API), else upper-cased."""
    stored = set(existing)
    found = {k: k if k in stored else k.upper() for k in keys}
    unknown = [k for k, v in found.items() if v not in stored]
    if unknown:
        raise ConfigError(f"not a symbol partition: {', '.join(map(_show, unknown))} "
                          f"(known: {', '.join(map(_show, sorted(existing))) or 'none'})")
    return list(dict.fromkeys(found.values()))


def run(args: argparse.Namespace) -> int:
    from ..defs.instance import get_instance
    from ..defs.partitions import SYMBOLS_PARTITION

    # keys to remove are matched as stored, not validated (an invalid key must be
    # removable); symbols to add or list are validated (one line, exit 2)
    if args.action == "remove":
        symbols = _raw_keys(args.symbols)
    else:
        symbols = [validate_symbol(s) for s in parse_symbols(args.symbols)]
    if args.action != "list" and not symbols:
        raise ConfigError(f"symbols {args.action}: give at least one SYMBOL")
    instance = get_instance()
    existing = list(instance.get_dynamic_partitions(SYMBOLS_PARTITION))
    if args.action == "add":
        new = [s for s in symbols if s not in existing]
        if new:
            instance.add_dynamic_partitions(SYMBOLS_PARTITION, new)
        print(f"added: {', '.join(new) or '(none new)'}")
    elif args.action == "remove":
        keys = _to_remove(symbols, existing)
        for key in keys:
            instance.delete_dynamic_partition(SYMBOLS_PARTITION, key)
        print(f"removed: {', '.join(map(_show, keys))}")
    current = sorted(instance.get_dynamic_partitions(SYMBOLS_PARTITION))
    if args.action == "list":
        for s in current:
            print(s if is_valid_symbol(s) else
                  f"{_show(s)} (invalid symbol: remove it with phase1 symbols remove {_show(s)})")
        if not current:
            print("(no symbols; add some with: phase1 symbols add SPY AAPL)")
    else:
        print(f"symbols: {', '.join(map(_show, current)) or '(none)'}")
    print(f"instance: {instance.root_directory}")
    return 0
