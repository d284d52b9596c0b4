"""Options and parsing shared by several ``phase1`` subcommands (not a subcommand)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable

from ..core.normalizer import SYMBOL_PATTERN
from . import UserError

DEFAULT_TIMEFRAMES = "1m,5m,15m,1h,1d"
DATABASE_URL_HELP = "SQLAlchemy URL (default: DATABASE_URL or sqlite:///phase1.sqlite)"

_SYMBOL = re.compile(SYMBOL_PATTERN)


def add_database_url(p: argparse.ArgumentParser, help: str = DATABASE_URL_HELP) -> None:
    p.add_argument("--database-url", metavar="URL", help=help)


def add_timeframes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeframes", default=DEFAULT_TIMEFRAMES,
                   help=f"comma-separated timeframes (default {DEFAULT_TIMEFRAMES})")


def parse_symbols(values: Iterable[str]) -> list[str]:
    """Upper-cased, validated symbols of comma-separated ``values``, first occurrence
    order, duplicates dropped; UserError names an invalid one."""
    out: dict[str, None] = {}
    for raw in values:
        for part in raw.split(","):
            sym = part.strip().upper()
            if not sym:
                continue
            if not _SYMBOL.match(sym):
                raise UserError(f"invalid symbol {part.strip()!r}: expected [A-Z0-9.-]{{1,16}}")
            out[sym] = None
    return list(out)
