"""The ``phase1`` command (also ``python -m phase1_platform``).

Each subcommand lives in its own module of this package with ``add_parser(subparsers)``
that registers it and sets ``func(args) -> int``. Errors the user can fix are
``core.errors.UserError`` (``UserError`` here is that class) and are printed as one
line, exit 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from contextlib import nullcontext

from ..core.errors import UserError, one_line
from ..heap import loading

SUBCOMMANDS = ["replay", "symbols", "simulate", "parity", "db", "export", "ingest",
               "materialize", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phase1", description="Deterministic tick-to-bar market-data platform."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # this process's own command (not a caller's list): importing every subcommand module
    # is its startup (phase1_platform.heap)
    with loading() if argv is None else nullcontext():
        parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("phase1: interrupted", file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"phase1 {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2


__all__ = ["SUBCOMMANDS", "UserError", "build_parser", "main"]
