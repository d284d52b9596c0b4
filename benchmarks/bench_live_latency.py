"""Latency from a tick landing to its 1m bar verified by a sensor-launched run (one replayed hour).

Since the ingestion service stores the bars itself (in the transaction that lands the
ticks; ``benchmarks.bench_live_store`` measures that latency), a ``live_bars`` run is the
verification of those bars (``app.verify_live``): this measures how long until a tick's
bar has been verified (or rewritten by the batch path).

    python -m benchmarks.bench_live_latency [--tick-file ZIP|CSV] [--start 18:00] [--minutes 60]
                                            [--step-seconds 60] [--mode both|incremental|full]

What is measured, in-process, on SQLite (store and Dagster instance in a temporary folder):
the hour of ticks is replayed as micro-batches of ``--step-seconds`` of market time. For
each micro-batch: the real ``IngestionService`` (MockConnector) lands it (``flush``) ->
``live_ticks_sensor`` is evaluated (``build_sensor_context``, cursor carried over) -> the
run it requests (``live_bars``: normalized ticks, all bar timeframes, checks, export) is
executed in-process -> the newest tick's 1m bar is read back from the store. The latency
of the micro-batch's ticks is (bar stored) - (landing committed).

``--mode both`` (default) replays the same hour twice, side by side: the live runs as
they are (incremental: read the ticks from the first new tick's hour, rewrite the bars
they touch) and forced to recompute the whole partition (``incremental: false``). Both
end with the same bars (checked). The default hour, 18:00-19:00 UTC (14:00-15:00 New
York), comes after most of the session has landed, as a live afternoon does.

Not included (they depend on deployment settings, not on this code): the wait for the
sensor's next evaluation (0 .. ``minimum_interval_seconds``, default 15 s, 7.5 s on
average with a running daemon), the daemon's dequeue interval and the run worker's
process start (a few seconds with the default run launcher: issue 19607).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
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
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def tick_ns(raw: pd.DataFrame) -> np.ndarray:
    """int64 UTC ns of a raw tick frame's ``timestamp`` column (ISO text or integers)."""
    col = raw["timestamp"]
    if col.dtype == object or pd.api.types.is_string_dtype(col):
        return pd.to_datetime(col, utc=True, format="ISO8601").astype("int64").to_numpy()
    return np.asarray(col, dtype="int64")


def measure(tick_file: Path, start_utc: str = "18:00", minutes: int = 60,
            step_seconds: int = 60, incremental: bool = True) -> dict:
    import dagster as dg

    from phase1_platform.connectors.mock import MockConnector
    from phase1_platform.core.calendar import trading_day_window
    from phase1_platform.core.export import CanonicalExporter
    from phase1_platform.definitions import defs
    from phase1_platform.defs.jobs import LIVE_RUN_CONFIG
    from phase1_platform.defs.resources import StoreResource
    from phase1_platform.defs.sensors import live_ticks_sensor
    from phase1_platform.ingestion.service import IngestionService
    from phase1_platform.readers import read_ticks
    from phase1_platform.storage import BarRepository, Store

    raw = read_ticks(tick_file)
    ts = tick_ns(raw)
    day = pd.Timestamp(int(ts.min()), tz="UTC").tz_convert("America/New_York")
    date = day.strftime("%Y-%m-%d")
    symbol = str(raw["symbol"].iloc[0]).upper()
    t0 = pd.Timestamp(f"{date} {start_utc}", tz="UTC").value
    step = step_seconds * 1_000_000_000
    edges = [t0 + k * step for k in range(minutes * 60 // step_seconds + 1)]
    mode = {"incremental": incremental}
    run_config = {"ops": {op: {"config": mode} for op in LIVE_RUN_CONFIG["ops"]}, **QUIET}
    work = Path(tempfile.mkdtemp(prefix="phase1-latency-"))
    os.environ.update({"DATABASE_URL": f"sqlite:///{work / 'store.sqlite'}",
                       "PHASE1_DROP_DIR": str(work / "drop"),
                       "PHASE1_EXPORT_DIR": str(work / "exports")})
    os.chdir(work)
    job = defs.resolve_job_def("live_bars")
    latencies, per_tick, runs = [], [], []
    start, end = trading_day_window(date)

    async def scenario(instance):
        store = Store.from_url()
        conn = MockConnector()
        svc = IngestionService(conn, store, [symbol], flush_interval=3600)
        await svc.start()
        bars = BarRepository(store)
        cursor = None
        # everything before the hour lands first (the session so far), unmeasured
        history = raw[ts < edges[0]]
        if len(history):
            await conn.inject_ticks(history.drop(columns=["source", "source_row"]))
            await svc.flush()
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            in_batch = (ts >= a) & (ts < b)
            batch = raw[in_batch]
            if len(batch) == 0:
                continue
            await conn.inject_ticks(batch.drop(columns=["source", "source_row"]))
            await svc.flush()
            landed = time.perf_counter()
            with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                         resources={"store": StoreResource()}) as ctx:
                result = live_ticks_sensor(ctx)
                cursor = ctx.cursor
            sensed = time.perf_counter()
            for dyn in getattr(result, "dynamic_partitions_requests", None) or []:
                instance.add_dynamic_partitions(dyn.partitions_def_name, dyn.partition_keys)
            requests = list(getattr(result, "run_requests", None) or [])
            if not requests:
                continue
            (req,) = requests
            out = job.execute_in_process(partition_key=req.partition_key, instance=instance,
                                         tags=req.tags, run_config=run_config)
            (mat,) = out.asset_materializations_for_node("normalized_ticks")
            newest = int(ts[in_batch].max())
            minute = newest - newest % 60_000_000_000
            stored = bars.read(symbol, ["1m"], minute, minute + 1)
            done = time.perf_counter()
            if not out.success or len(stored) != 1:
                raise RuntimeError(f"run for {req.partition_key} failed or bar missing")
            latencies.append(done - landed)
            per_tick.extend([done - landed] * len(batch))
            runs.append({"ticks": len(batch), "sensor_s": sensed - landed,
                         "run_s": done - sensed,
                         "ticks_read": mat.metadata["ticks_read"].value})
        await svc.stop()
        final = bars.read(symbol, None, start, end)
        store.dispose()
        return final

    with dg.instance_for_test() as instance:
        final = asyncio.run(scenario(instance))
    lat = np.array(latencies)
    return {
        "mode": "incremental" if incremental else "full",
        "tick_file": str(tick_file),
        "partition": f"{date}|{symbol}",
        "hour_utc": f"{start_utc} + {minutes} min",
        "micro_batches": len(lat),
        "step_seconds": step_seconds,
        "ticks": int(len(per_tick)),
        "latency_median_s": round(float(np.median(lat)), 3),
        "latency_worst_s": round(float(lat.max()), 3),
        "latency_median_per_tick_s": round(float(np.median(per_tick)), 3),
        "sensor_eval_median_s": round(float(np.median([r["sensor_s"] for r in runs])), 4),
        "sensor_eval_worst_s": round(float(np.max([r["sensor_s"] for r in runs])), 4),
        "run_median_s": round(float(np.median([r["run_s"] for r in runs])), 3),
        "ticks_read_median": int(np.median([r["ticks_read"] for r in runs])),
        "bars_stored_at_end": len(final),
        "bars_hash_at_end": CanonicalExporter(final).compute_hash(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_live_latency",
                                description=__doc__.splitlines()[0])
    default = SHARED_SPY if SHARED_SPY.is_file() else FIXTURE_SPY
    p.add_argument("--tick-file", type=Path, default=default)
    p.add_argument("--start", default="18:00", help="UTC start of the hour (default 18:00)")
    p.add_argument("--minutes", type=int, default=60)
    p.add_argument("--step-seconds", type=int, default=60)
    p.add_argument("--mode", choices=["both", "incremental", "full"], default="both")
    args = p.parse_args(argv)
    modes = [True, False] if args.mode == "both" else [args.mode == "incremental"]
    results = [measure(args.tick_file, args.start, args.minutes, args.step_seconds, inc)
               for inc in modes]
    for res in results:
        for k, v in res.items():
            print(f"{k}: {v}")
        print(json.dumps(res))
    if len({r["bars_hash_at_end"] for r in results}) != 1:
        print("error: incremental and full runs ended with different bars", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
