"""Options and parsing shared by several ``phase1`` subcommands (not a subcommand)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

from ..core.partition import validate_symbol
from ..core.timeframes import DEFAULT_TIMEFRAMES

Command = Callable[[argparse.Namespace], int]

DATABASE_URL_HELP = "SQLAlchemy URL (default: DATABASE_URL or sqlite:///phase1.sqlite)"


def add_command(sub: argparse._SubParsersAction, name: str, run: Command, *, help: str,
                description: str) -> argparse.ArgumentParser:
    """Register subcommand ``name`` (one line of ``help`` in ``phase1 --help``, the
    ``description`` in ``phase1 NAME --help``) that ``phase1`` runs as ``run(args)``.

    Returns the subcommand's parser for its options. Every ``cli`` module registers
    through here so the ``func`` wiring ``phase1.main`` relies on is never forgotten.
    """
    p = sub.add_parser(name, help=help, description=description)
    p.set_defaults(func=run)
    return p


def add_database_url(p: argparse.ArgumentParser, help: str = DATABASE_URL_HELP) -> None:
    p.add_argument("--database-url", metavar="URL", help=help)


def add_timeframes(p: argparse.ArgumentParser) -> None:
    default = ",".join(DEFAULT_TIMEFRAMES)
    p.add_argument("--timeframes", default=default,
                   help=f"comma-separated timeframes (default {default})")


def parse_symbols(values: Iterable[str]) -> list[str]:
    """Upper-cased, validated symbols of comma-separated ``values``, first occurrence
    order, duplicates dropped; ``InvalidSymbolError`` names an invalid one."""
    out: dict[str, None] = {}
    for raw in values:
        for part in raw.split(","):
            sym = part.strip().upper()
            if sym:
                out[validate_symbol(sym)] = None
    return list(out)
