"""Distributed execution: partition-range runs through the Celery executor (dagster-celery)
with 2 worker processes on the local RabbitMQ, PostgreSQL instance storage and store.

The instance is the repository's ``dagster.celery.yaml``.

- Run A (4 partitions: one trading date x 4 symbols) executes its steps on both workers;
  its exports equal, byte for byte, an in-process run of the same partitions (one range
  run of both dates, SQLite instance and store) and ``phase1 replay`` of the files
  (``bench_backfill.verify``: the stored ticks and the quarantine are checked too).
- Run B (the next date's 4 partitions): the worker running the ``bars`` step is SIGKILLed
  (its whole process group) after the step wrote every partition's bars and before it
  finished (``support/celery_hold.py`` holds it there). The step's message was not
  acknowledged (late acknowledgement), so the broker hands it to the other worker, which
  runs the step again: the run succeeds and every partition is exported and correct.
- The broker URL carries a password; no worker log and no event of either run shows it.

The test starts its own workers on its own queue (a fresh name: parallel runs and
leftover messages never mix), always stops them (process groups) and deletes the queue.
Each run is a ``dagster job execute`` subprocess, killed if it outlives its time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from benchmarks.bench_backfill import (
    BIN,
    generate_drop,
    patched_environ,
    postgres_available,
    storage_env,
    verify,
)

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"  # with its password: it must never show
SECRET = "guest:guest"
RUN_TIMEOUT_S = 120


def _require(why: str | None) -> None:
    if why:
        if os.environ.get("CI"):
            raise AssertionError(why)
        pytest.skip(why)


def _rabbitmq_available() -> str | None:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=3).close()
        return None
    except OSError as exc:
        return f"RabbitMQ not reachable at 127.0.0.1:5672 ({exc})"


def _execute(env: dict, work: Path, name: str, first: str, last: str,
             executor: dict) -> str:
    """``dagster job execute`` of bars_pipeline over the partition range first..last (the
    rectangle of dates x symbols); returns its output."""
    config = work / f"{name}.yaml"
    config.write_text(json.dumps({"execution": {"config": executor}}))
    tags = {"dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last, "phase1/test": name}
    proc = subprocess.Popen(
        [str(BIN / "dagster"), "job", "execute", "-m", "phase1_platform.definitions",
         "-j", "bars_pipeline", "-c", str(config), "--tags", json.dumps(tags)],
        cwd=work, env={**os.environ, **env}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"run {name} still running after {RUN_TIMEOUT_S} s:\n"
                             f"{out.decode(errors='replace')[-3000:]}") from None
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"run {name} failed:\n{text[-5000:]}"
    return text


def _run(instance, name: str):
    import dagster as dg

    runs = instance.get_runs(filters=dg.RunsFilter(tags={"phase1/test": name}))
    assert len(runs) == 1
    return runs[0]


def _celery_steps(instance, run) -> list[tuple[str, str]]:
    """(step key, worker) of every "Executing steps ... in celery worker" event."""
    out = []
    for rec in instance.all_logs(run.run_id):
        ev = rec.dagster_event
        if ev is None or not ev.is_engine_event:
            continue
        md = getattr(ev.event_specific_data, "metadata", None) or {}
        if "Celery worker" in md:
            out.append((ev.step_key, str(md["Celery worker"].value)))
    return out


def _events_text(instance, run) -> str:
    from dagster._serdes import serialize_value

    return "\n".join(serialize_value(rec) for rec in instance.all_logs(run.run_id))


def test_celery_range_runs_match_in_process_and_survive_a_killed_worker():
    import dagster as dg

    from phase1_platform.distributed import CelerySettings, delete_queue, wait_ready, workers

    _require(postgres_available())
    _require(_rabbitmq_available())
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="phase1-celery-") as tmp:
        work = Path(tmp)
        gen = generate_drop(work / "drop", n_symbols=4, n_days=2, ticks_per_day=300)
        (day_a, day_b), symbols = gen.dates, gen.symbols
        queue = f"phase1-test-{uuid.uuid4().hex[:12]}"
        hold = work / "hold"
        hold.mkdir()
        logs = work / "logs"
        logs.mkdir()
        # the instance is dagster.celery.yaml (PostgreSQL), the store a PostgreSQL database
        with storage_env("postgres", work, 1, "dagster.celery.yaml") as (env, home):
            env.update({"PHASE1_CELERY_BROKER": BROKER, "PHASE1_CELERY_QUEUE": queue,
                        "PHASE1_CELERY_BACKEND": "rpc://",
                        "PHASE1_CELERY_RUN_QUEUE": f"{queue}-runs",  # the file's run launcher
                        "PHASE1_TEST_HOLD_DIR": str(hold),
                        "PYTHONPATH": os.pathsep.join(
                            p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)})
            settings = CelerySettings.from_env({"broker": BROKER, "queue": queue})
            log_paths = [logs / "worker-0.log", logs / "worker-1.log"]
            try:
                with patched_environ(env), dg.DagsterInstance.get() as instance:
                    assert "max_concurrent_runs" in (home / "dagster.yaml").read_text()
                    assert type(instance.run_storage).__name__ == "PooledPostgresRunStorage"
                    # (runs here are `dagster job execute`: the launcher is not used)
                    assert type(instance.run_launcher).__name__ == "CeleryRunLauncher"
                    instance.add_dynamic_partitions("symbols", symbols)
                    with workers(2, env, queue, log_dir=logs, name="worker",
                                 includes=["phase1_platform_tests.support.celery_hold"]
                                 ) as procs:
                        wait_ready(log_paths, procs, timeout_s=60)
                        t_ready = time.monotonic()

                        # run A: 4 partitions, steps on both workers
                        out_a = _execute(env, work, "celery-a", f"{day_a}|{symbols[0]}",
                                         f"{day_a}|{symbols[-1]}", {"celery": {}})
                        t_a = time.monotonic()
                        run_a = _run(instance, "celery-a")
                        assert run_a.status == dg.DagsterRunStatus.SUCCESS
                        steps_a = _celery_steps(instance, run_a)
                        assert {w.split("@")[0] for _, w in steps_a} == {"worker-0", "worker-1"}
                        assert "bars" in {s for s, _ in steps_a}

                        # run B: kill the worker running `bars` once it has written the bars
                        (hold / "armed").touch()
                        box: dict = {}
                        import threading

                        def run_b():
                            try:
                                box["out"] = _execute(
                                    env, work, "celery-b", f"{day_b}|{symbols[0]}",
                                    f"{day_b}|{symbols[-1]}", {"celery": {}})
                            except BaseException as exc:  # noqa: BLE001 - re-raised below
                                box["error"] = exc

                        thread = threading.Thread(target=run_b, daemon=True)
                        thread.start()
                        end = time.monotonic() + RUN_TIMEOUT_S
                        while not (hold / "held").exists():
                            assert thread.is_alive() or "error" in box, "run B ended unheld"
                            assert time.monotonic() < end, "no worker reached the hold"
                            time.sleep(0.1)
                        held_pid = int((hold / "held").read_text())
                        victim = next(p for p in procs if os.getpgid(held_pid) == p.pid)
                        os.killpg(victim.pid, signal.SIGKILL)
                        victim.wait(10)
                        thread.join(RUN_TIMEOUT_S + 10)
                        if "error" in box:
                            raise box["error"]
                        t_b = time.monotonic()
                        run_b_rec = _run(instance, "celery-b")
                        assert run_b_rec.status == dg.DagsterRunStatus.SUCCESS
                        bars_on = [w.split("@")[0] for s, w in _celery_steps(instance, run_b_rec)
                                   if s == "bars"]
                        victim_name = f"worker-{procs.index(victim)}"
                        survivor = f"worker-{1 - procs.index(victim)}"
                        # executed twice: on the killed worker, then again on the other one
                        assert bars_on == [victim_name, survivor], bars_on
                        materialized = {str(k) for k in instance.get_materialized_partitions(
                            dg.AssetKey("canonical_export"))}
                        assert materialized == set(gen.partitions)
                        events = _events_text(instance, run_a) + _events_text(instance, run_b_rec)
                        assert SECRET not in events
                        assert SECRET not in out_a + box["out"]
                        assert run_a.run_config == {"execution": {"config": {"celery": {}}}}
            finally:
                leftover = delete_queue(settings)
                leftover += delete_queue(CelerySettings.from_env({"broker": BROKER,
                                                                  "queue": f"{queue}-runs"}))
            worker_logs = "\n".join(p.read_text(errors="replace") for p in log_paths)
            assert SECRET not in worker_logs
            assert "guest:**@127.0.0.1:5672" in worker_logs  # celery's own masking
            assert leftover == 0
            # the celery-run exports equal phase1 replay of each file; ticks and quarantine
            check = verify(gen, env, work)
            assert check["problems"] == []

        # the same partitions in process (default executor), SQLite instance and store
        ref = work / "in_process"
        ref.mkdir()
        with storage_env("sqlite", ref, 1) as (env_ref, _home):
            with patched_environ(env_ref), dg.DagsterInstance.get() as instance:
                instance.add_dynamic_partitions("symbols", symbols)
            env_ref["PHASE1_DROP_DIR"] = str(work / "drop")
            # one run over both dates x 4 symbols
            _execute(env_ref, ref, "inproc", f"{day_a}|{symbols[0]}", f"{day_b}|{symbols[-1]}",
                     {"in_process": {}})
        for pk in gen.partitions:
            date, sym = pk.split("|")
            celery_bytes = (work / "exports" / date / f"{sym}.csv").read_bytes()
            assert celery_bytes == (ref / "exports" / date / f"{sym}.csv").read_bytes(), pk
    print(f"\nworkers ready {t_ready - t0:.1f} s after start; celery run A {t_a - t_ready:.1f} s;"
          f" run B (killed worker) {t_b - t_a:.1f} s; total {time.monotonic() - t0:.1f} s")


@pytest.mark.timeout(90)
def test_make_workers_supervisor_starts_and_stops_every_worker():
    """``make workers N=1 RUNS=1``'s command: the workers start (step and run queue), the
    printed line masks the password, SIGTERM stops every worker process group."""
    from phase1_platform.distributed import CelerySettings, delete_queue

    _require(_rabbitmq_available())
    queue = f"phase1-test-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "PHASE1_CELERY_BROKER": BROKER, "PHASE1_CELERY_QUEUE": queue,
           "PHASE1_CELERY_RUN_QUEUE": f"{queue}-runs",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                         if p)}
    proc = subprocess.Popen([str(BIN / "python"), "-m", "phase1_platform.distributed", "workers",
                             "-n", "1", "--runs", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, text=True)
    try:
        line = proc.stdout.readline()
        assert SECRET not in line and "guest:***@127.0.0.1" in line, line
        pids = [int(t) for t in line.replace(";", " ").split() if t.isdigit()]
        workers_pids = pids[1:2] + pids[3:4]  # after "1 step workers" / "1 run workers"
        assert len(workers_pids) == 2 and all(os.getpgid(p) == p for p in workers_pids)
        ready, seen = 0, []
        while ready < 2:  # the workers' own output follows: both consume their queue
            out = proc.stdout.readline()
            assert out, "the supervisor exited:\n" + "".join(seen[-20:])
            seen.append(out)
            ready += " ready." in out
        assert SECRET not in "".join(seen)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        assert proc.returncode == 0
        for pid in workers_pids:
            with pytest.raises(ProcessLookupError):
                os.killpg(pid, 0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for q in (queue, f"{queue}-runs"):
            delete_queue(CelerySettings.from_env({"broker": BROKER, "queue": q}))
