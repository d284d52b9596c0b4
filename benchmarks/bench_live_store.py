"""Latency from a tick reaching the live service to its 1m bar readable in the store.

    python -m benchmarks.bench_live_store [--tick-file ZIP|CSV] [--seconds 20]
                                          [--flush-interval 0.25] [--database-url URL]

The real ``IngestionService`` runs its own flush loop (``--flush-interval``) on a connector
that delivers the first ``--ticks`` ticks of the day over ``--seconds`` of wall time, a chunk
every 50 ms. For each chunk
the time from its delivery to the stored 1m bar of its last tick counting it (trade count
read back with a fresh connection, polled every 5 ms) is the latency. Default rules, so
every positive-size tick counts in its minute's trade count. Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED_SPY = ROOT.parent / "shared" / "data" / "lean" / "equity" / "usa" / "tick" / "spy" / \
    "20131007_trade.zip"
FIXTURE_SPY = ROOT / "fixtures" / "lean" / "equity" / "usa" / "tick" / "spy" / \
    "20131007_trade.zip"
MINUTE = 60 * 10**9


async def _run(raw: pd.DataFrame, url: str, seconds: float, flush: float) -> dict:
    from phase1_platform.connectors.mock import MockConnector
    from phase1_platform.core.rules import get_rules
    from phase1_platform.ingestion.service import IngestionService
    from phase1_platform.storage import BarRepository, Store

    store = Store.from_url(url)
    reader = Store.from_url(url)
    mock = MockConnector()
    svc = IngestionService(mock, store, ["SPY"], rules=get_rules("default"),
                           flush_interval=flush)
    assert await svc.start()
    ts = pd.to_datetime(raw["timestamp"], utc=True).astype("int64").to_numpy()
    chunks = np.array_split(np.arange(len(raw)), max(1, int(seconds / 0.05)))
    repo = BarRepository(reader)
    seen: dict[int, int] = {}  # minute -> positive-size ticks delivered so far
    size = pd.to_numeric(raw["size"]).to_numpy()
    lat = []
    for rows in chunks:
        if len(rows) == 0:
            continue
        t0 = time.perf_counter()
        await mock.inject_ticks(raw.iloc[rows])
        for i in rows:
            if size[i] > 0:
                m = int(ts[i]) // MINUTE * MINUTE
                seen[m] = seen.get(m, 0) + 1
        last = int(ts[rows[-1]]) // MINUTE * MINUTE
        want = seen.get(last, 0)
        while True:
            bars = await asyncio.to_thread(repo.read, "SPY", ["1m"], last, last + 1)
            if len(bars) and int(bars["trade_count"].iloc[0]) >= want:
                break
            await asyncio.sleep(0.005)
        lat.append(time.perf_counter() - t0)
        await asyncio.sleep(max(0.0, 0.05 - (time.perf_counter() - t0)))
    stats = await svc.stop()
    store.dispose()
    reader.dispose()
    arr = np.array(lat)
    return {"ticks": int(len(raw)), "chunks": int(len(arr)), "flush_interval_s": flush,
            "flushes": stats.batches,
            "commit_ms_mean": round(1000 * stats.busy_seconds / max(1, stats.batches), 2),
            "latency_ms_p50": round(1000 * float(np.percentile(arr, 50)), 1),
            "latency_ms_p95": round(1000 * float(np.percentile(arr, 95)), 1),
            "latency_ms_max": round(1000 * float(arr.max()), 1),
            "bars_written": stats.bars_written}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tick-file", default=str(SHARED_SPY if SHARED_SPY.exists() else FIXTURE_SPY))
    p.add_argument("--seconds", type=float, default=20.0, help="wall seconds of delivery")
    p.add_argument("--ticks", type=int, default=20_000, help="ticks delivered in that time")
    p.add_argument("--flush-interval", type=float, default=0.25)
    p.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = p.parse_args(argv)
    from phase1_platform.readers import read_ticks

    raw = read_ticks(args.tick_file).drop(columns=["source", "source_row"]).iloc[:args.ticks]
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'store.sqlite'}"
        result = asyncio.run(_run(raw.reset_index(drop=True), url, args.seconds,
                                  args.flush_interval))
    result["store"] = "sqlite" if url.startswith("sqlite") else "postgresql"
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
