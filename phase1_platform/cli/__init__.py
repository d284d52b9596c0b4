"""The ``phase1`` command (also ``python -m phase1_platform``).

Each subcommand lives in its own module of this package with ``add_parser(subparsers)``
that registers it and sets ``func(args) -> int``. Errors the user can fix are raised as
``UserError`` (or one of the domain's ValueErrors) and printed as one line, exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ["replay", "symbols", "simulate", "parity", "db", "export", "ingest"]


class UserError(Exception):
    """A problem the user can fix: printed as one line, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phase1", description="Deterministic tick-to-bar market-data platform."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("phase1: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, OSError) as exc:
        print(f"phase1 {args.command}: error: {exc}", file=sys.stderr)
        return 2
