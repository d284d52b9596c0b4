"""Latency from a tick landing to its 1m bar stored, through the real Dagster daemon.

    python -m benchmarks.bench_live_daemon [--tick-file ZIP|CSV] [--start 18:00] [--minutes 10]
                                           [--pace-seconds 10] [--sensor-interval 5]

What runs (SQLite store and Dagster instance in a temporary folder, no network):
``dagster-daemon run`` on the project's code location, with ``live_ticks_sensor`` at a
``--sensor-interval`` minimum interval and the queued run coordinator (2 concurrent runs,
1 s dequeue interval), launching each run in its own process (Dagster's default run
launcher). This process lands ticks with the real ``IngestionService`` (MockConnector):
first the session up to ``--start`` (the partition's first, full build, not measured),
then one market minute of ticks every ``--pace-seconds`` of wall time. Each minute's
latency is (its 1m bar seen in the store with every tick of the minute counted) -
(its landing committed), polled every 50 ms. So it includes what the in-process
benchmark (bench_live_latency) leaves out: the wait for the sensor's next evaluation, the
daemon's dequeue, the run worker's process start and the coalescing of micro-batches
that land while a run of the partition is in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .bench_backfill import daemon, patched_environ, storage_env
from .bench_live_latency import FIXTURE_SPY, SHARED_SPY, tick_ns

MINUTE = 60_000_000_000


def live_runs(instance) -> list[dict]:
    """Each live_bars run: status, wall time, and what its bars step recomputed."""
    import dagster as dg

    out = []
    for run in instance.get_runs(filters=dg.RunsFilter(job_name="live_bars")):
        stats = instance.get_run_stats(run.run_id)
        recompute = ""
        for rec in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records:
            mat = rec.event_log_entry.asset_materialization
            if mat and mat.asset_key == dg.AssetKey("normalized_ticks"):
                recompute = str(mat.metadata["recompute"].value)
        out.append({"status": run.status.value, "recompute": recompute,
                    "run_s": (stats.end_time or 0) - (stats.start_time or 0)})
    return out


def measure(tick_file: Path, start_utc: str = "18:00", minutes: int = 10,
            pace_s: float = 10.0, sensor_interval_s: int = 5) -> dict:
    import dagster as dg

    from phase1_platform.connectors.mock import MockConnector
    from phase1_platform.core import BarEngine, TickNormalizer
    from phase1_platform.defs.sensors import IN_FLIGHT
    from phase1_platform.ingestion.service import IngestionService
    from phase1_platform.readers import read_ticks
    from phase1_platform.storage import BarRepository, LandingRepository, Store

    raw = read_ticks(tick_file).drop(columns=["source", "source_row"], errors="ignore")
    ts = tick_ns(raw)
    symbol = str(raw["symbol"].iloc[0]).upper()
    date = pd.Timestamp(int(ts.min()), tz="UTC").tz_convert("America/New_York").strftime(
        "%Y-%m-%d")
    t0 = pd.Timestamp(f"{date} {start_utc}", tz="UTC").value
    edges = [t0 + k * MINUTE for k in range(minutes + 1)]
    # what each minute's 1m bar must count once all its ticks are in (default rules)
    window = raw[(ts >= edges[0]) & (ts < edges[-1])]
    want = BarEngine().build(TickNormalizer().normalize(window, source="x").ticks, "1m")
    expected = dict(zip(want["ts"].to_numpy("int64").tolist(),
                        want["trade_count"].to_numpy("int64").tolist(), strict=True))
    work = Path(tempfile.mkdtemp(prefix="phase1-live-daemon-"))
    with storage_env("sqlite", work, max_concurrent_runs=2) as (env, home):
        env["PHASE1_LIVE_SENSOR_INTERVAL_S"] = str(int(sensor_interval_s))
        with patched_environ(env):
            store = Store.from_url()
            bars, landings = BarRepository(store), LandingRepository(store)

            async def scenario(proc) -> tuple[dict[int, float], float]:
                conn = MockConnector()
                svc = IngestionService(conn, store, [symbol], flush_interval=3600)
                await svc.start()
                await conn.inject_ticks(raw[ts < edges[0]])  # the session so far
                await svc.flush()
                first = time.perf_counter()
                while landings.spans().shape[0]:  # the partition's first (full) build
                    if proc.poll() is not None or time.perf_counter() - first > 600:
                        raise RuntimeError("the daemon did not build the partition")
                    await asyncio.sleep(0.2)
                first_build_s = time.perf_counter() - first
                landed: dict[int, float] = {}
                seen: dict[int, float] = {}

                async def poll() -> None:
                    while len(seen) < len(expected):
                        if proc.poll() is not None:
                            raise RuntimeError("dagster-daemon exited")
                        lo = min((m for m in landed if m not in seen), default=None)
                        if lo is not None:
                            got = bars.read(symbol, ["1m"], lo, edges[-1])
                            now = time.perf_counter()
                            for m, n in zip(got["ts"].to_numpy("int64").tolist(),
                                            got["trade_count"].to_numpy("int64").tolist(),
                                            strict=True):
                                if m in landed and m not in seen and n == expected.get(m):
                                    seen[m] = now
                        await asyncio.sleep(0.05)

                poller = asyncio.create_task(poll())
                for a, b in zip(edges[:-1], edges[1:], strict=True):
                    tick = time.perf_counter()
                    await conn.inject_ticks(raw[(ts >= a) & (ts < b)])
                    await svc.flush()
                    if a in expected:
                        landed[a] = time.perf_counter()
                    await asyncio.sleep(max(0.0, pace_s - (time.perf_counter() - tick)))
                await asyncio.wait_for(poller, timeout=600)
                await svc.stop()
                return {m: seen[m] - landed[m] for m in landed}, first_build_s

            with daemon(env, work) as proc, dg.DagsterInstance.from_config(str(home)) as inst:
                latency, first_build_s = asyncio.run(scenario(proc))
                # let the last runs finish their checks and export before the daemon stops
                deadline = time.perf_counter() + 300
                while inst.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT)) and \
                        time.perf_counter() < deadline:
                    time.sleep(0.5)
            store.dispose()
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runs = live_runs(instance)
    lat = np.array(list(latency.values()))
    incremental = [r for r in runs if r["recompute"].startswith("incremental")]
    return {
        "tick_file": str(tick_file),
        "partition": f"{date}|{symbol}",
        "minutes_utc": f"{start_utc} + {minutes} min",
        "pace_s_per_market_minute": pace_s,
        "sensor_interval_s": sensor_interval_s,
        "first_full_build_s": round(first_build_s, 2),
        "latency_median_s": round(float(np.median(lat)), 2),
        "latency_worst_s": round(float(lat.max()), 2),
        "latency_best_s": round(float(lat.min()), 2),
        "live_runs": len(runs),
        "live_runs_incremental": len(incremental),
        "live_runs_failed": sum(r["status"] != "SUCCESS" for r in runs),
        "run_wall_median_s": round(float(np.median([r["run_s"] for r in incremental]))
                                   if incremental else 0.0, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_live_daemon",
                                description=__doc__.splitlines()[0])
    p.add_argument("--tick-file", type=Path,
                   default=SHARED_SPY if SHARED_SPY.is_file() else FIXTURE_SPY)
    p.add_argument("--start", default="18:00", help="UTC start (default 18:00)")
    p.add_argument("--minutes", type=int, default=10)
    p.add_argument("--pace-seconds", type=float, default=10.0)
    p.add_argument("--sensor-interval", type=int, default=5)
    args = p.parse_args(argv)
    res = measure(args.tick_file, args.start, args.minutes, args.pace_seconds,
                  args.sensor_interval)
    for k, v in res.items():
        print(f"{k}: {v}")
    print(json.dumps(res))
    return 0 if res["live_runs_failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
