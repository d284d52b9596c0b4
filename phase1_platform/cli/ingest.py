"""``phase1 ingest``: the live ingestion service (also ``python -m phase1_platform.ingestion``).

Connector -> normalizer -> landing table (idempotent, per-(source, symbol) watermarks),
gap backfill after reconnects, live bars over WebSocket. Logs are JSON lines on stderr;
SIGINT/SIGTERM flush everything received, then stop (exit 0), also while the stream is
still connecting. See ``ingestion.service`` and ``ingestion.runner``. The bars the service
stores are reported to Dagster without a run (``defs.live_report``) when ``DAGSTER_HOME``
is set (``--dagster-report on|off`` to force).
"""

from __future__ import annotations

import argparse
import logging
import os

from . import UserError, _args
from ._args import add_command, add_database_url, add_timeframes


def add_parser(sub) -> None:
    p = add_command(
        sub, "ingest", run,
        help="run the live ingestion service (ticks -> store, bars -> WebSocket)",
        description="Land live ticks in the store (idempotent, watermarked), backfill "
        "gaps after reconnects, stream bar updates on ws://HOST:PORT/ws/bars. "
        "Stops on SIGINT/SIGTERM after flushing everything received.",
    )
    configure(p)


def configure(p: argparse.ArgumentParser) -> None:
    from ..ingestion.runner import MODES, SOURCES

    p.add_argument("--mode", choices=MODES, default=None,
                   help="live (vendor stream) or mock (replay --csv files); "
                   "default INGESTION_MODE, else live")
    p.add_argument("--source", choices=SOURCES, default="finnhub",
                   help="live source (default finnhub; FINNHUB_WS_URL overrides its URL)")
    p.add_argument("--symbols", required=True, help="comma-separated symbols, e.g. AAPL,MSFT")
    add_database_url(p)
    p.add_argument("--broadcast-port", type=int, default=None, metavar="P",
                   help="serve live bars on ws://127.0.0.1:P/ws/bars (0 = any free port)")
    p.add_argument("--broadcast-host", default="127.0.0.1")
    p.add_argument("--csv", action="append", default=[], metavar="FILE",
                   help="mock mode: tick file to replay (repeatable)")
    p.add_argument("--speed", type=float, default=0.0,
                   help="mock mode replay speed (0 = as fast as possible)")
    p.add_argument("--backfill-from", default=None, metavar="alpaca|finnhub|FILE",
                   help="historical source that fills gaps after a reconnect or restart")
    p.add_argument("--source-name", default=None,
                   help="stream name in tick identities (default finnhub, or finnhub@HOST)")
    add_timeframes(p)
    p.add_argument("--rules", default=None, metavar="NAME",
                   help="trade-eligibility rule set for every symbol (default: each "
                   "symbol's own rule set, see 'phase1 symbols')")
    p.add_argument("--flush-interval", type=float, default=0.25,
                   help="seconds between micro-batches (default 0.25)")
    p.add_argument("--max-batch-rows", type=int, default=20_000)
    p.add_argument("--poll-interval", type=float, default=1.0, help="alpaca polling interval")
    p.add_argument("--alpaca-polling", action="store_true",
                   help="--source alpaca: poll the REST API only (default: the data stream, "
                   "with its trade cancels and corrections; polling while it is down)")
    p.add_argument("--dagster-report", choices=("auto", "on", "off"), default="auto",
                   help="report the bars stored to Dagster as runless materializations "
                   "(auto: when DAGSTER_HOME is set)")
    p.add_argument("--dagster-report-interval", type=float, default=5.0, metavar="S",
                   help="at most one report per partition every S seconds (default 5)")
    p.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))


def parse_symbols(text: str) -> list[str]:
    out = _args.parse_symbols([text])
    if not out:
        raise UserError("--symbols: give at least one symbol, e.g. --symbols AAPL,MSFT")
    return out


def run(args: argparse.Namespace) -> int:
    from ..ingestion.logs import setup_logging
    from ..ingestion.runner import IngestConfig, default_mode, main

    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        raise UserError(f"--log-level {args.log_level!r}: use DEBUG, INFO, WARNING or ERROR")
    if args.broadcast_port is not None and not 0 <= args.broadcast_port <= 65535:
        raise UserError(f"--broadcast-port must be in 0..65535, got {args.broadcast_port}")
    if args.speed < 0:
        raise UserError(f"--speed must be >= 0, got {args.speed}")
    if args.flush_interval <= 0:
        raise UserError("--flush-interval must be > 0")
    if not args.dagster_report_interval >= 0:
        raise UserError("--dagster-report-interval must be >= 0")
    setup_logging(level)
    # a bad setting, key, vendor or store is a UserError: cli.main prints one line, exit 2
    cfg = IngestConfig(
        symbols=parse_symbols(args.symbols), mode=args.mode or default_mode(),
        source=args.source, database_url=args.database_url,
        broadcast_port=args.broadcast_port, broadcast_host=args.broadcast_host,
        csv=list(args.csv), speed=args.speed, backfill_from=args.backfill_from,
        source_name=args.source_name, timeframes=args.timeframes, rules=args.rules,
        flush_interval=args.flush_interval, max_batch_rows=args.max_batch_rows,
        poll_interval=args.poll_interval, alpaca_polling=args.alpaca_polling,
    )
    reporter = None
    if args.dagster_report != "off":
        from ..defs.live_report import reporter_from_env

        reporter = reporter_from_env(args.dagster_report, args.dagster_report_interval)
    try:
        return main(cfg, on_bars_written=reporter)
    finally:
        if reporter is not None:
            reporter.close()
