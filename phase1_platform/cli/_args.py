"""Options and parsing shared by several ``phase1`` subcommands (not a subcommand)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from ..core.partition import validate_symbol
from ..core.timeframes import DEFAULT_TIMEFRAMES

DATABASE_URL_HELP = "SQLAlchemy URL (default: DATABASE_URL or sqlite:///phase1.sqlite)"


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
