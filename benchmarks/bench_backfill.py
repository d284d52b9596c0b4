"""Backfill at scale through the Dagster daemon: N symbols x D trading days of synthetic ticks.

    python -m benchmarks.bench_backfill                      # 20 x 20 on SQLite and PostgreSQL
    python -m benchmarks.bench_backfill --storage sqlite --symbols 4 --days 3
    python -m benchmarks.bench_backfill --storage postgres --executor celery --workers 2

What it does, per instance storage (SQLite files, or dagster-postgres in a fresh database
dropped afterwards):

1. a temporary working folder with a file drop of seeded synthetic DESIGN tick CSVs
   (``<drop>/<date>/<SYMBOL>.csv``, a few bad rows in each: price <= 0, a timestamp
   without zone), an export folder, a store (SQLite file, or PostgreSQL next to the
   PostgreSQL instance) and a ``DAGSTER_HOME`` whose ``dagster.yaml`` queues runs with
   ``QueuedRunCoordinator(max_concurrent_runs=R)``;
2. the symbols are registered as dynamic partitions, ``dagster-daemon run`` is started
   as a subprocess, and one asset backfill of every asset over all N x D partitions is
   submitted to the instance (what the UI's "Materialize partitions" / GraphQL
   ``launchPartitionBackfill`` do), each run in process (``--max-concurrent-steps N``: the
   multiprocess executor instead); the assets' backfill policy makes one run per value of
   the dimension with fewer keys in the selection (Dagster's ranges of a two-dimensional
   partition hold one dimension constant): one run per trading date for 20 x 20, one per
   symbol for 4 symbols x 5 days (at most ``PHASE1_BACKFILL_PARTITIONS_PER_RUN`` each);
3. it waits for the backfill to complete and verifies: every run succeeded, no log line
   of the daemon or of any run says "database is locked", the store holds exactly the
   generated ticks minus the quarantined ones (per symbol), the quarantine holds every bad
   row, and every partition's export is byte-identical to ``phase1 replay`` of its file.

Figures printed: wall time from submission until every partition is materialized by
finished runs (Dagster's backfill daemon marks the backfill complete at its next iteration,
up to 30 s later: no work of ours), per partition, per run, and,
measured right after on the same machine, the same work done in one process without
Dagster on a fresh store of the same kind (``in_process_work``: land every file, build and
store every partition, write every export): ``backfill_overhead_ratio`` is the backfill's
wall time over that. ``run_start_s_median``: from a run's launch to its RUN_START event.

``--executor celery`` (PostgreSQL instance only): the daemon, its runs and ``--workers`` Celery
workers (started here on a fresh queue, stopped and the queue deleted afterwards) get
``PHASE1_EXECUTOR=celery``, so every run's steps execute on the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
LOCKED = "database is locked"


# ------------------------------------------------------------------------------ ticks
@dataclass
class Generated:
    dates: list[str]
    symbols: list[str]
    good: dict[str, int] = field(default_factory=dict)  # symbol -> good ticks, all days
    bad: dict[str, int] = field(default_factory=dict)  # partition key -> bad rows

    @property
    def partitions(self) -> list[str]:
        return [f"{d}|{s}" for d in self.dates for s in self.symbols]

    @property
    def total_rows(self) -> int:
        return sum(self.good.values()) + sum(self.bad.values())


def trading_dates(first: str, n: int) -> list[str]:
    import exchange_calendars as xcals

    cal = xcals.get_calendar("XNYS")
    sessions = cal.sessions_in_range(first, pd.Timestamp(first) + pd.Timedelta(days=3 * n + 10))
    return [s.strftime("%Y-%m-%d") for s in sessions[:n]]


def generate_drop(drop: Path, n_symbols: int, n_days: int, ticks_per_day: int,
                  seed: int = 20240301, first: str = "2024-03-01") -> Generated:
    """Seeded synthetic tick files; returns what was generated (good and bad rows)."""
    from phase1_platform.core.calendar import session_bounds

    rng = np.random.default_rng(seed)
    gen = Generated(trading_dates(first, n_days), [f"SYN{i:02d}" for i in range(n_symbols)])
    for d_i, date in enumerate(gen.dates):
        open_ns, close_ns, _ = session_bounds(date)
        folder = drop / date
        folder.mkdir(parents=True, exist_ok=True)
        for s_i, sym in enumerate(gen.symbols):
            n = ticks_per_day
            ts = np.sort(rng.integers(open_ns, close_ns, size=n, dtype=np.int64))
            price = np.round(50 + 10 * s_i + np.cumsum(rng.normal(0, 0.02, size=n)), 2)
            price = np.maximum(price, 1.0)
            size = rng.integers(1, 500, size=n)
            stamp = np.datetime_as_string(ts.astype("datetime64[ns]"), unit="ns")
            frame = pd.DataFrame({
                "timestamp": np.char.add(stamp.astype(str), "Z"),
                "symbol": sym,
                "price": np.char.mod("%.2f", price),
                "size": size.astype(str),
                "exchange": "P",
                "conditions": "",
                "trade_id": np.char.add(f"{d_i:03d}-", np.arange(n).astype(str)),
                "sequence": np.arange(n).astype(str),
            })
            n_bad = 1 + (d_i + s_i) % 3
            bad = frame.iloc[:n_bad].copy()
            bad["trade_id"] = [f"bad-{d_i}-{k}" for k in range(n_bad)]
            bad.loc[bad.index[0], "price"] = "-1.00"  # price <= 0
            if n_bad > 1:  # a timestamp without zone
                bad.loc[bad.index[1], "timestamp"] = str(bad.loc[bad.index[1], "timestamp"])[:-1]
            if n_bad > 2:  # a negative size
                bad.loc[bad.index[2], "size"] = "-5"
            out = pd.concat([frame, bad], ignore_index=True)
            out = out.iloc[rng.permutation(len(out))]  # file order is not market order
            out.to_csv(folder / f"{sym}.csv", index=False)
            gen.good[sym] = gen.good.get(sym, 0) + n
            gen.bad[f"{date}|{sym}"] = n_bad
    return gen


# --------------------------------------------------------------------------- storages
def _admin():
    import psycopg

    return psycopg.connect(dbname="test", autocommit=True, connect_timeout=5, **PG)


def postgres_available() -> str | None:
    """None when the server answers, else the reason."""
    try:
        with _admin():
            return None
    except Exception as exc:  # noqa: BLE001 - any failure: not available
        return f"PostgreSQL not reachable at 127.0.0.1:5432 ({str(exc).strip().splitlines()[0]})"


@contextmanager
def storage_env(kind: str, work: Path, max_concurrent_runs: int,
                instance_yaml: str = "dagster.postgres.yaml"):
    """(env, DAGSTER_HOME) for a fresh instance and store of ``kind``; dropped afterwards.
    The instance is the repository's ``dagster.yaml`` (SQLite) or ``instance_yaml``
    (PostgreSQL), its run coordinator replaced."""
    home = work / "dagster_home"
    home.mkdir()
    coordinator = (
        "run_coordinator:\n"
        "  module: dagster._core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n"
        "  config:\n"
        f"    max_concurrent_runs: {int(max_concurrent_runs)}\n"
        "    dequeue_interval_seconds: 1\n"
    )
    env = {"DAGSTER_HOME": str(home), "PHASE1_DROP_DIR": str(work / "drop"),
           "PHASE1_EXPORT_DIR": str(work / "exports"), "INGESTION_MODE": "mock"}
    dbs: list[str] = []
    try:
        if kind == "sqlite":
            text = (ROOT / "dagster.yaml").read_text()
            (home / "dagster.yaml").write_text(text[:text.index("run_coordinator:")] + coordinator)
            env["DATABASE_URL"] = f"sqlite:///{work / 'store.sqlite'}"
        elif kind == "postgres":
            suffix = uuid.uuid4().hex[:10]
            dbs = [f"phase1_bf_dagster_{suffix}", f"phase1_bf_store_{suffix}"]
            with _admin() as conn:
                for name in dbs:
                    conn.execute(f'CREATE DATABASE "{name}"')
            text = (ROOT / instance_yaml).read_text()
            text = text[:text.index("run_coordinator:")] + coordinator
            (home / "dagster.yaml").write_text(text)
            env.update({"DAGSTER_PG_HOST": PG["host"], "DAGSTER_PG_USER": PG["user"],
                        "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": dbs[0],
                        "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{dbs[1]}"})
        else:
            raise ValueError(f"unknown storage {kind!r}: sqlite or postgres")
        yield env, home
    finally:
        if dbs:
            with _admin() as conn:
                for name in dbs:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def patched_environ(env: dict[str, str]):
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def daemon(env: dict[str, str], work: Path):
    """``dagster-daemon run`` on the project's code location, stopped (SIGTERM) afterwards."""
    from phase1_platform.distributed import stop_process_group

    log = open(work / "daemon.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", "phase1_platform.definitions",
         "--log-level", "warning"],
        cwd=work, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            stop_process_group(proc, grace_s=60)
        log.close()


# ---------------------------------------------------------------------------- backfill
def submit_backfill(instance, partitions: list[str], max_concurrent_steps: int = 0,
                    run_config: dict | None = None) -> str:
    """One asset backfill of every asset over ``partitions``; each run executes with the
    definitions' default executor (in process unless ``PHASE1_EXECUTOR`` says otherwise),
    or with the multiprocess executor and ``max_concurrent_steps`` when that is > 0, or
    with ``run_config`` when given."""
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    from phase1_platform.definitions import defs
    from phase1_platform.defs.jobs import multiprocess_config

    graph = defs.resolve_asset_graph()
    keys = sorted(graph.materializable_asset_keys)
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(), asset_graph=graph, partition_names=partitions,
        asset_selection=keys, backfill_timestamp=time.time(), tags={"phase1/bench": "backfill"},
        dynamic_partitions_store=instance, all_partitions=False,
        title=f"backfill at scale: {len(partitions)} partitions", description=None,
        run_config=run_config if run_config is not None
        else multiprocess_config(max_concurrent_steps) if max_concurrent_steps > 0 else {},
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id


RUNS_DONE = "RUNS_DONE"  # every partition materialized by finished runs (status not flipped yet)


def wait_backfill(instance, backfill_id: str, timeout_s: float, daemon_proc,
                  partitions: list[str] | None = None) -> str:
    """The backfill's final status; with ``partitions``, ``RUNS_DONE`` as soon as its runs
    have all finished and every partition's export is materialized: Dagster's backfill
    daemon loops every 30 s (``DEFAULT_DAEMON_INTERVAL_SECONDS``), so the status of a
    finished backfill flips up to 30 s after its last run, which is no work of ours."""
    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus

    done = {BulkActionStatus.COMPLETED_SUCCESS, BulkActionStatus.COMPLETED_FAILED,
            BulkActionStatus.FAILED, BulkActionStatus.CANCELED, BulkActionStatus.COMPLETED}
    end = time.monotonic() + timeout_s
    while True:
        status = instance.get_backfill(backfill_id).status
        if status in done:
            return status.value
        if partitions is not None and _runs_done(instance, backfill_id, partitions, dg):
            return RUNS_DONE
        if daemon_proc.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited with {daemon_proc.returncode}")
        if time.monotonic() > end:
            raise TimeoutError(f"backfill {backfill_id} still {status.value} after {timeout_s}s")
        time.sleep(0.5)


def _runs_done(instance, backfill_id: str, partitions: list[str], dg) -> bool:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    if not runs or any(not r.is_finished for r in runs):
        return False
    if any(r.status != dg.DagsterRunStatus.SUCCESS for r in runs):
        return True  # a failure: report it now
    done = {str(k) for k in instance.get_materialized_partitions(
        dg.AssetKey("canonical_export"))}
    return set(partitions) <= done


def run_logs_mention(instance, runs, text: str) -> list[str]:
    hits = []
    for run in runs:
        for rec in instance.all_logs(run.run_id):
            msg = rec.user_message or ""
            err = rec.dagster_event.event_specific_data if rec.dagster_event else None
            if text in msg or (err is not None and text in str(err)):
                hits.append(f"{run.run_id[:8]}: {msg[:200]}")
    return hits


def in_process_work(gen: Generated, work: Path, kind: str = "sqlite") -> float:
    """Seconds the backfill's work takes in one process without Dagster, on a fresh store
    of the same kind of database: land every file (``phase1 replay --database-url``'s
    ``app.replay``: read, normalize, land, quarantine), build and store every partition,
    write every partition's canonical export (``app.export.export_bars``)."""
    from phase1_platform.app.export import export_bars
    from phase1_platform.app.replay import persist, replay
    from phase1_platform.core.timeframes import TIMEFRAMES
    from phase1_platform.storage import Store

    db = f"phase1_bf_inproc_{uuid.uuid4().hex[:10]}"
    if kind == "postgres":
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        store = Store.from_url(f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}")
    else:
        store = Store.from_url(f"sqlite:///{work / 'in_process.sqlite'}")
    try:
        t0 = time.perf_counter()
        files = [work / "drop" / d / f"{s}.csv" for d in gen.dates for s in gen.symbols]
        persist(replay(files, symbols=gen.symbols), store)
        for d in gen.dates:
            for s in gen.symbols:
                export_bars(store, s, list(TIMEFRAMES), d, d,
                            path=work / "in_process" / d / f"{s}.csv")
        return time.perf_counter() - t0
    finally:
        store.dispose()
        if kind == "postgres":
            with _admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def verify(gen: Generated, env: dict[str, str], work: Path) -> dict:
    """Store counts == generated - quarantined; exports == phase1 replay bytes (and ==
    the in-process work's exports)."""
    from phase1_platform.app.replay import replay
    from phase1_platform.core.calendar import trading_day_window
    from phase1_platform.core.export import CanonicalExporter
    from phase1_platform.storage import QuarantineRepository, Store

    problems: list[str] = []
    store = Store.from_url(env["DATABASE_URL"])
    try:
        ticks, quarantine = store.ticks, QuarantineRepository(store)
        for sym in gen.symbols:
            n = ticks.count(sym)
            if n != gen.good[sym]:
                problems.append(f"{sym}: {n} ticks stored, {gen.good[sym]} expected")
        for pk, n_bad in gen.bad.items():
            q = len(quarantine.read(pk))
            if q != n_bad:
                problems.append(f"{pk}: {q} rows quarantined, {n_bad} expected")
        for pk in gen.partitions:
            date, sym = pk.split("|")
            expected = replay([work / "drop" / date / f"{sym}.csv"], symbols=[sym],
                              window=trading_day_window(date))
            data = CanonicalExporter(expected.bars).to_bytes()
            path = work / "exports" / date / f"{sym}.csv"
            if not path.is_file():
                problems.append(f"{pk}: no export")
            elif path.read_bytes() != data:
                problems.append(f"{pk}: export differs from phase1 replay")
            in_process = work / "in_process" / date / f"{sym}.csv"
            if in_process.is_file() and in_process.read_bytes() != data:
                problems.append(f"{pk}: the in-process export differs from phase1 replay")
        stored = ticks.count()
    finally:
        store.dispose()
    return {"problems": problems, "ticks_stored": stored}


def run_backfill(kind: str, n_symbols: int, n_days: int, ticks_per_day: int = 2000,
                 max_concurrent_runs: int = 2, max_concurrent_steps: int = 0,
                 partitions_per_run: int = 100, timeout_s: float = 3600,
                 keep: Path | None = None, executor: str = "default",
                 n_workers: int = 2, run_launcher: str = "default") -> dict:
    """One backfill on storage ``kind``; returns figures and problems (empty: all good).
    ``executor="celery"``: ``n_workers`` Celery workers run every step.
    ``run_launcher="celery"``: dagster-celery's CeleryRunLauncher, ``n_workers`` workers on
    their own queue run every run (in process, unless ``executor="celery"`` too)."""
    import dagster as dg

    from phase1_platform.distributed import CelerySettings, delete_queue, wait_ready, workers

    celery = executor == "celery"
    celery_runs = run_launcher == "celery"
    if (celery or celery_runs) and kind != "postgres":
        raise ValueError("the celery executor needs the PostgreSQL instance (--storage postgres)")

    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"phase1-backfill-{kind}-", dir=keep))
    try:
        gen = generate_drop(work / "drop", n_symbols, n_days, ticks_per_day)
        instance_yaml = "dagster.celery.yaml" if celery_runs else "dagster.postgres.yaml"
        with storage_env(kind, work, max_concurrent_runs, instance_yaml) as (env, _home):
            env["PHASE1_BACKFILL_PARTITIONS_PER_RUN"] = str(partitions_per_run)
            if celery:
                env.update({"PHASE1_EXECUTOR": "celery",
                            "PHASE1_CELERY_QUEUE": f"phase1-bench-{uuid.uuid4().hex[:12]}"})
            log_dir = work / "workers"
            log_dir.mkdir()
            runs_queue = f"phase1-bench-runs-{uuid.uuid4().hex[:12]}"
            if celery_runs:  # what dagster.celery.yaml reads
                env.setdefault("PHASE1_CELERY_BROKER", CelerySettings.from_env().broker)
                env.setdefault("PHASE1_CELERY_BACKEND", CelerySettings.from_env().backend)
                env["PHASE1_CELERY_RUN_QUEUE"] = runs_queue
            with patched_environ(env), dg.DagsterInstance.get() as instance, \
                    workers(n_workers if celery else 0, env, log_dir=log_dir) as worker_procs, \
                    workers(n_workers if celery_runs else 0, env, queue=runs_queue,
                            log_dir=log_dir, name="runs") as run_procs:
                storage_name = type(instance.run_storage).__name__
                instance.add_dynamic_partitions("symbols", gen.symbols)
                if celery:
                    wait_ready([log_dir / f"phase1-{i}.log" for i in range(n_workers)],
                               worker_procs)
                if celery_runs:
                    wait_ready([log_dir / f"runs-{i}.log" for i in range(n_workers)], run_procs)
                with daemon(env, work) as proc:
                    t0 = time.perf_counter()
                    backfill_id = submit_backfill(instance, gen.partitions, max_concurrent_steps)
                    status = wait_backfill(instance, backfill_id, timeout_s, proc,
                                           gen.partitions)
                    wall = time.perf_counter() - t0
                runs = instance.get_runs(filters=dg.RunsFilter(tags={
                    "dagster/backfill": backfill_id}))
                failed = [r.run_id[:8] for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
                locked = run_logs_mention(instance, runs, LOCKED)
                durations, starts = [], []
                for r in runs:
                    stats = instance.get_run_stats(r.run_id)
                    if stats.start_time and stats.end_time:
                        durations.append(stats.end_time - stats.start_time)
                    if stats.launch_time and stats.start_time:
                        starts.append(stats.start_time - stats.launch_time)
                materialized = {
                    str(pk) for pk in instance.get_materialized_partitions(
                        dg.AssetKey("canonical_export"))}
                checks = instance.event_log_storage.get_asset_check_execution_history(
                    dg.AssetCheckKey(dg.AssetKey("bars_1m"), "quality_1m"), limit=100_000)
            if celery:
                delete_queue(CelerySettings.from_env({"queue": env["PHASE1_CELERY_QUEUE"]}))
            if celery_runs:
                delete_queue(CelerySettings.from_env({"queue": runs_queue}))
            daemon_log = (work / "daemon.log").read_text(errors="replace")
            work_s = in_process_work(gen, work, kind)  # after the daemon: nothing else running
            check = verify(gen, env, work)
        problems = list(check["problems"])
        if status not in ("COMPLETED_SUCCESS", RUNS_DONE):
            problems.append(f"backfill status {status}")
        if failed:
            problems.append(f"failed runs: {', '.join(failed)}")
        if locked or LOCKED in daemon_log:
            problems.append(f"'{LOCKED}' seen: {locked[:3]}")
        missing = sorted(set(gen.partitions) - materialized)
        if missing:
            problems.append(f"partitions without canonical_export: {missing[:5]}")
        n = len(gen.partitions)
        return {
            "storage": kind,
            "instance_storage": storage_name,
            "symbols": n_symbols,
            "days": n_days,
            "partitions": n,
            "runs": len(runs),
            "status": status,
            "ticks_generated": gen.total_rows,
            "ticks_stored": check["ticks_stored"],
            "quarantined": sum(gen.bad.values()),
            "quality_1m_check_executions": len(checks),
            "wall_s": round(wall, 2),
            "wall_per_partition_s": round(wall / n, 3),
            "run_s_median": round(float(np.median(durations)), 2) if durations else None,
            "run_s_max": round(float(np.max(durations)), 2) if durations else None,
            "run_start_s_median": round(float(np.median(starts)), 2) if starts else None,
            "in_process_work_s": round(work_s, 2),
            "work_per_partition_s": round(work_s / n, 4),
            "overhead_per_partition_s": round((wall - work_s) / n, 3),
            "backfill_overhead_ratio": round(wall / work_s, 2),
            "max_concurrent_runs": max_concurrent_runs,
            "max_concurrent_steps": max_concurrent_steps,
            "executor": f"celery ({n_workers} workers)" if celery else executor,
            "run_launcher": f"celery ({n_workers} workers)" if celery_runs else run_launcher,
            "problems": problems,
        }
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def run(quick: bool = False) -> dict:
    """``make bench``: 4 symbols x 5 trading days through the daemon on SQLite, with days of
    50,000 ticks (a mid-cap stock's day; ``--quick``: 5,000), beside the same work in
    process. The 20 x 20 figure: ``python -m benchmarks.bench_backfill``."""
    res = run_backfill("sqlite", 4, 5, ticks_per_day=5_000 if quick else 50_000,
                       timeout_s=900)
    if res["problems"]:
        raise AssertionError(f"backfill benchmark: {res['problems']}")
    print(f"   4 x 5 partitions of {res['ticks_generated'] // 20:,} ticks, {res['runs']} runs: "
          f"{res['wall_s']} s through the daemon, {res['in_process_work_s']} s in process: "
          f"backfill_overhead_ratio {res['backfill_overhead_ratio']} (target <= 3)")
    return {"backfill_overhead_ratio": res["backfill_overhead_ratio"],
            "backfill_wall_s": res["wall_s"], "backfill_in_process_work_s":
            res["in_process_work_s"], "backfill_runs": res["runs"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_backfill",
                                description=__doc__.splitlines()[0])
    p.add_argument("--storage", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--symbols", type=int, default=20)
    p.add_argument("--days", type=int, default=20)
    p.add_argument("--ticks-per-day", type=int, default=2000)
    p.add_argument("--max-concurrent-runs", type=int, default=2)
    p.add_argument("--max-concurrent-steps", type=int, default=0,
                   help="> 0: the multiprocess executor with that many steps at a time "
                   "(default 0: each run in process)")
    p.add_argument("--partitions-per-run", type=int, default=100)
    p.add_argument("--executor", choices=["default", "celery"], default="default",
                   help="celery: every step on --workers Celery workers started here "
                   "(PostgreSQL only; broker from PHASE1_CELERY_BROKER)")
    p.add_argument("--run-launcher", choices=["default", "celery"], default="default",
                   help="celery: dagster-celery's CeleryRunLauncher, runs on --workers Celery "
                   "workers of their own queue (PostgreSQL only)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--keep", type=Path, default=None, help="keep the working folders here")
    args = p.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.storage == "both" else [args.storage]
    if "celery" in (args.executor, args.run_launcher):  # needs the PostgreSQL instance
        kinds = ["postgres"]
    results, ok = [], True
    for kind in kinds:
        if kind == "postgres" and (why := postgres_available()):
            print(f"== postgres: skipped: {why}", flush=True)
            continue
        print(f"== {kind}: {args.symbols} symbols x {args.days} days", flush=True)
        res = run_backfill(kind, args.symbols, args.days, args.ticks_per_day,
                           args.max_concurrent_runs, args.max_concurrent_steps,
                           args.partitions_per_run, args.timeout, args.keep,
                           args.executor, args.workers, args.run_launcher)
        for k, v in res.items():
            print(f"   {k}: {v}")
        ok &= not res["problems"]
        results.append(res)
    print(json.dumps(results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
