"""One-command live demo, no network and no keys: ``python -m phase1_platform.ingestion.demo``.

Starts ``phase1 simulate`` (Finnhub protocol, the fixture SPY slice of 2013-10-07) on a
free loopback port and ``phase1 ingest --mode live`` pointed at it through
``FINNHUB_WS_URL`` with a dummy key the simulator accepts. Ticks land in
``DATABASE_URL`` (default ``sqlite:///phase1.sqlite``), live bars stream on
``ws://127.0.0.1:8766/ws/bars?symbols=SPY``. Ctrl-C (or SIGTERM) stops the ingest
service first (it flushes), then the simulator. ``--seconds N`` stops after N seconds.
Running it twice lands nothing twice (tape-stable identities).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "fixtures" / "lean" / "equity" / "usa" / "tick" / "spy" / "20131007_trade.zip"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="live-demo", description=__doc__.splitlines()[0])
    p.add_argument("--csv", default=str(FIXTURE), help="tick file the simulator serves")
    p.add_argument("--symbols", default="SPY")
    p.add_argument("--speed", type=float, default=30.0,
                   help="market replay speed (0 = as fast as possible; default 30)")
    p.add_argument("--broadcast-port", type=int, default=8766)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    args = p.parse_args(argv)

    port = free_port()
    phase1 = [sys.executable, "-m", "phase1_platform"]
    sim = subprocess.Popen([*phase1, "simulate", "--csv", args.csv, "--speed", str(args.speed),
                            "--port", str(port)], cwd=os.getcwd())
    env = {**os.environ, "FINNHUB_WS_URL": f"ws://127.0.0.1:{port}",
           "FINNHUB_API_KEY": "demo-no-key-needed", "INGESTION_MODE": "live"}
    ingest_cmd = [*phase1, "ingest", "--mode", "live", "--symbols", args.symbols,
                  "--broadcast-port", str(args.broadcast_port)]
    if args.database_url:
        ingest_cmd += ["--database-url", args.database_url]
    ingest = None
    stopping = {"flag": False}

    def on_signal(signum, _frame):
        stopping["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        time.sleep(1.5)  # the simulator loads its tape and listens
        if sim.poll() is not None:
            print("live-demo: the simulator did not start", file=sys.stderr)
            return 2
        ingest = subprocess.Popen(ingest_cmd, env=env, cwd=os.getcwd())
        print(f"live-demo: bars at ws://127.0.0.1:{args.broadcast_port}/ws/bars"
              f"?symbols={args.symbols}; Ctrl-C stops", flush=True)
        end = None if args.seconds is None else time.monotonic() + args.seconds
        while not stopping["flag"] and ingest.poll() is None and sim.poll() is None:
            if end is not None and time.monotonic() >= end:
                break
            time.sleep(0.2)
    finally:
        code = 0
        for proc in (ingest, sim):  # ingest first: it flushes what it received
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if ingest is not None and ingest.returncode not in (0, None):
            code = ingest.returncode
        with contextlib.suppress(Exception):
            sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
