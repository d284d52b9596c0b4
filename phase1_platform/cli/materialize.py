"""``phase1 materialize PARTITION``: ``dagster asset materialize`` with the partition key
checked first.

Dagster validates ``--partition`` itself before any of our code runs, and a key that is not
a partition (a weekend or holiday, a symbol not registered, a malformed key) ends in a long
traceback (``DagsterUnknownPartitionError`` wrapped in ``DagsterInvalidSubsetError``) that
names no fix; there is no hook to change that. This command checks the key the same way
(a session of the exchange calendar within the date partitions, a symbol of the
instance's ``symbols`` partitions) and refuses a bad one with one line naming the key and
the fix (exit 2); a good one runs exactly ``dagster asset materialize -m
phase1_platform.definitions --select SELECT --partition KEY`` and exits with its status.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ..core.errors import ConfigError
from ..core.partition import InvalidPartitionError, Partition
from ._args import add_command

MODULE = "phase1_platform.definitions"


def add_parser(sub) -> None:
    p = add_command(
        sub, "materialize", run,
        help="materialize a partition through Dagster (key checked first)",
        description="Check a partition key (YYYY-MM-DD|SYMBOL: a trading day, a symbol added "
        "with `phase1 symbols add`), then run `dagster asset materialize -m "
        f"{MODULE} --select SELECT --partition KEY` in the Dagster instance of DAGSTER_HOME.",
    )
    p.add_argument("partition", metavar="YYYY-MM-DD|SYMBOL")
    p.add_argument("--select", default="*", help="asset selection (default: '*', everything)")
    p.add_argument("--config-json", metavar="JSON", help="run config, as for dagster")


def parse_key(key: str) -> Partition:
    """``Partition.parse``, its one-line error always naming the whole key."""
    try:
        return Partition.parse(key.strip())
    except InvalidPartitionError as exc:
        if repr(key) in str(exc):
            raise
        raise InvalidPartitionError(f"partition key {key!r}: {exc.one_line()}") from None


def check_partition(key: str, instance) -> Partition:
    """The partition of ``key`` when Dagster has it; else ``ConfigError`` naming the fix."""
    from ..defs.partitions import FIRST_DATE, SYMBOLS_PARTITION, date_partitions

    part = parse_key(key)
    if not date_partitions.has_partition_key(part.date):
        raise ConfigError(f"partition key {key!r}: {part.date} is outside the date partitions "
                          f"(trading days from {FIRST_DATE}, PHASE1_FIRST_DATE, to the next "
                          "session): choose a trading day in that range")
    symbols = sorted(instance.get_dynamic_partitions(SYMBOLS_PARTITION))
    if part.symbol not in symbols:
        raise ConfigError(f"partition key {key!r}: {part.symbol} is not a symbol partition of "
                          f"the Dagster instance (known: {', '.join(symbols) or 'none'}): add "
                          f"it with `phase1 symbols add {part.symbol}`")
    return part


def dagster_command(part: Partition, select: str, config_json: str | None) -> list[str]:
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster) if dagster.exists() else "dagster", "asset", "materialize", "-m",
           MODULE, "--select", select, "--partition", part.key]
    return cmd + (["--config-json", config_json] if config_json else [])


def run(args: argparse.Namespace) -> int:
    from ..defs.instance import get_instance

    with get_instance() as instance:
        part = check_partition(args.partition, instance)
    return subprocess.call(dagster_command(part, args.select, args.config_json))
