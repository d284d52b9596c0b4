"""``phase1 simulate``: a local market that speaks a vendor's live protocol.

Serves recorded ticks (DESIGN tick CSV or LEAN tick zip) so demos and tests show live
ingestion with no network: point the connector's URL (``FINNHUB_WS_URL``) at it, and
``FINNHUB_REST_URL`` at its REST side (the trades its market has traded so far).
"""

from __future__ import annotations

import argparse
import asyncio

from ._args import add_command

PROTOCOLS = ("finnhub",)


def add_parser(sub) -> None:
    p = add_command(
        sub, "simulate", run,
        help="serve recorded ticks over a vendor's WebSocket protocol",
        description="Serve recorded ticks over a vendor's live protocol on 127.0.0.1 "
        "(Finnhub: ws://127.0.0.1:PORT?token=T). Runs until interrupted.",
    )
    p.add_argument("--protocol", choices=PROTOCOLS, default="finnhub")
    p.add_argument("--port", type=int, default=0, help="TCP port (0 = pick a free one)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--csv", action="append", required=True, metavar="FILE",
                   help="tick file (repeatable): DESIGN tick CSV or LEAN tick zip")
    p.add_argument("--speed", type=float, default=1.0,
                   help="replay speed: 1 = real time, 60 = a minute per second, "
                   "0 = as fast as possible (default 1)")
    p.add_argument("--token", default=None,
                   help="token clients must send (default: any non-empty token)")
    p.add_argument("--max-symbols", type=int, default=50,
                   help="subscriptions per connection before 'too many symbols' (default 50)")
    p.add_argument("--ping-interval", type=float, default=10.0,
                   help="seconds between {\"type\":\"ping\"} messages (default 10)")


def run(args: argparse.Namespace) -> int:
    from ..core.errors import ConfigError
    from ..simulator.finnhub_server import FinnhubSimulator

    if args.speed < 0:
        raise ConfigError(f"--speed must be >= 0 (0 = as fast as possible), got {args.speed}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    sim = FinnhubSimulator.from_files(
        args.csv, token=args.token, host=args.host, port=args.port, speed=args.speed,
        max_symbols=args.max_symbols, ping_interval=args.ping_interval,
    )

    async def main() -> None:
        await sim.start()
        tape = sim.tape
        print(f"serving {len(tape)} trades of {', '.join(sorted(sim.known))} "
              f"({tape.skipped} bad rows skipped) at speed {args.speed:g}", flush=True)
        print(f"listening on {sim.url}  (connect with {sim.url}?token=<token>"
              f"{'' if args.token is None else ', token required'})", flush=True)
        print(f"REST (/quote, /stock/tick) at {sim.rest_url}  (FINNHUB_REST_URL)", flush=True)
        try:
            await asyncio.Future()
        finally:
            await sim.stop()

    asyncio.run(main())
    return 0
