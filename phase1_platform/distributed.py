"""Distributed step execution with dagster-celery: the settings the executor and the workers share.

Everything comes from the environment, read when a process needs it (nothing is written to a
file, so a broker password never lands on disk, in a run's config or in the job snapshot):

- ``PHASE1_CELERY_BROKER``: the broker URL, default ``pyamqp://guest@127.0.0.1:5672//``
  (the local RabbitMQ); the alternative is Redis, ``redis://127.0.0.1:6379/0``.
- ``PHASE1_CELERY_BACKEND``: the result backend, default ``rpc://`` (results travel back over
  the broker; with Redis, ``redis://127.0.0.1:6379/1``).
- ``PHASE1_CELERY_QUEUE``: the queue the steps are sent to and the workers listen on
  (default ``dagster``, dagster-celery's own).
- ``PHASE1_CELERY_RUN_QUEUE``: the queue of whole runs when the instance uses dagster-celery's
  ``CeleryRunLauncher`` (``dagster.celery.yaml``; default ``phase1-runs``): run workers
  execute runs in a process that has already imported the code, and never share a queue
  with steps (a run waiting for its own steps must not hold the slot they need).

The same settings build both sides: the executor (``defs.jobs``, in the process that runs a
run) and the worker app (``phase1_platform.celery_app``, what ``make workers`` starts), so
the two agree on broker, backend, queue and delivery rules:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a step's message is acknowledged
  only when the step finished; a worker killed mid-step (SIGKILL, OOM, a lost machine)
  leaves it unacknowledged and the broker delivers it to another worker, which runs the
  step again (every step of ours rewrites its partitions whole, so a second execution
  stores the same rows). On Redis the redelivery waits for the transport's
  ``visibility_timeout`` (``PHASE1_CELERY_VISIBILITY_TIMEOUT_S``, default 300 s).
- ``worker_prefetch_multiplier = 1``: a busy worker holds no queued steps of its own.

Workers on this machine: ``make workers N=2 RUNS=2`` (``python -m phase1_platform.distributed
workers -n 2 --runs 2``) runs N step workers and RUNS run workers (``celery -A
phase1_platform.celery_app worker``, one task at a time each, the code imported before the
pool forks) in the foreground; Ctrl-C (or ``kill -TERM`` of the printed pid) stops them.

Only ``masked()`` forms of a URL are ever printed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_BROKER = "pyamqp://guest@127.0.0.1:5672//"
REDIS_BROKER = "redis://127.0.0.1:6379/0"
DEFAULT_BACKEND = "rpc://"
DEFAULT_QUEUE = "dagster"

BROKER_ENV = "PHASE1_CELERY_BROKER"
BACKEND_ENV = "PHASE1_CELERY_BACKEND"
QUEUE_ENV = "PHASE1_CELERY_QUEUE"
RUN_QUEUE_ENV = "PHASE1_CELERY_RUN_QUEUE"
DEFAULT_RUN_QUEUE = "phase1-runs"
VISIBILITY_ENV = "PHASE1_CELERY_VISIBILITY_TIMEOUT_S"


def masked(url: str) -> str:
    """``url`` with its password replaced by ``***`` (safe to print)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True)
class CelerySettings:
    broker: str
    backend: str
    queue: str
    visibility_timeout_s: int

    @classmethod
    def from_env(cls, overrides: dict | None = None) -> CelerySettings:
        """The environment's settings; keys of ``overrides`` (run config) win when set."""
        o = {k: v for k, v in (overrides or {}).items() if v}
        return cls(
            broker=o.get("broker") or os.environ.get(BROKER_ENV) or DEFAULT_BROKER,
            backend=o.get("backend") or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND,
            queue=o.get("queue") or os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE,
            visibility_timeout_s=int(os.environ.get(VISIBILITY_ENV) or 300),
        )

    def config_source(self) -> dict:
        """Celery settings (lowercase names) applied to the executor's and the workers' app."""
        transport = {"max_retries": 3, "interval_start": 0, "interval_step": 0.2,
                     "interval_max": 0.5}
        if self.broker.startswith(("redis://", "rediss://")):
            transport["visibility_timeout"] = self.visibility_timeout_s
        return {
            "task_default_queue": self.queue,
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "broker_transport_options": transport,
            # the executor polls every second; a broker that is down is one clear error
            "broker_connection_retry_on_startup": True,
        }

    def describe(self) -> str:
        return (f"broker {masked(self.broker)}, backend {masked(self.backend)}, "
                f"queue {self.queue}")


def check_broker(settings: CelerySettings, timeout_s: float = 5.0) -> None:
    """One connection to the broker, or a ``UserError`` naming it (masked) and the fix."""
    from kombu import Connection

    from .core.errors import UserError

    try:
        with Connection(settings.broker, connect_timeout=timeout_s) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - any failure: the broker is not usable
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = reason.replace(settings.broker, masked(settings.broker))
        raise UserError(
            f"Celery broker {masked(settings.broker)} is not reachable ({reason}): start it, "
            f"or point {BROKER_ENV} at a running RabbitMQ or Redis") from None


def joinable_celery_executor(settings: CelerySettings, include=None, config_source=None,
                             retries=None):
    """dagster-celery's ``CeleryExecutor`` on ``settings``, allowed to wait for its steps'
    results inside a Celery task.

    Under the ``CeleryRunLauncher`` a run executes inside a Celery task on a run worker, and
    Celery refuses ``AsyncResult.get()`` there ("Never call result.get() within a task",
    which dagster-celery 0.29.27 does: every run failed). Waiting is safe here because the
    steps go to another queue, served by other workers: a run never waits on the pool it
    occupies. The queues must differ (checked)."""
    from dagster._core.execution.retries import RetryMode
    from dagster_celery.executor import CeleryExecutor

    from .core.errors import UserError

    run_queue = os.environ.get(RUN_QUEUE_ENV)
    if run_queue and run_queue == settings.queue:
        raise UserError(f"{QUEUE_ENV} and {RUN_QUEUE_ENV} are both {run_queue!r}: runs waiting "
                        "for their steps would hold the workers the steps need; give the "
                        "steps and the runs different queues")

    class JoinableCeleryExecutor(CeleryExecutor):
        def execute(self, plan_context, execution_plan):
            from celery.result import allow_join_result

            with allow_join_result():
                yield from super().execute(plan_context, execution_plan)

    return JoinableCeleryExecutor(
        broker=settings.broker, backend=settings.backend, include=include,
        config_source={**settings.config_source(), **(config_source or {})},
        retries=retries if retries is not None else RetryMode(RetryMode.DISABLED))


# ----------------------------------------------------------------------------- workers
BIN = Path(sys.executable).parent  # the venv's bin: celery, dagster


# imported by each worker's main process before it forks its pool: every task starts warm
PRELOAD = ("phase1_platform.definitions",)


def worker_command(name: str, queue: str, concurrency: int = 1, loglevel: str = "INFO",
                   includes: Sequence[str] = ()) -> list[str]:
    """``celery worker`` on ``queue``, one step at a time per process (``concurrency``)."""
    includes = [*PRELOAD, *includes]
    cmd = [str(BIN / "celery"), "-A", "phase1_platform.celery_app", "worker",
           "-Q", queue, "-c", str(int(concurrency)), "--prefetch-multiplier=1",
           "-n", f"{name}@%h", "--loglevel", loglevel,
           # no waiting for (or chatting with) other workers at start: ready in ~1 s
           "--without-mingle", "--without-gossip"]
    return cmd + ["-I", ",".join(includes)]


def worker_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker: ``env`` over ours, the venv's bin first on PATH."""
    out = {**os.environ, **(env or {})}
    out["PATH"] = f"{BIN}{os.pathsep}{out.get('PATH', '')}"
    return out


def stop_process_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM a process group started with ``start_new_session`` (a graceful stop: a
    worker's warm shutdown, the daemon's, the ingestion service's flush), SIGKILL what is
    left after ``grace_s`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # the main process is gone; children of the prefork pool may linger a moment
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return


@contextmanager
def workers(n: int, env: Mapping[str, str] | None = None, queue: str | None = None,
            log_dir: Path | None = None, name: str = "phase1",
            includes: Sequence[str] = ()) -> Iterator[list[subprocess.Popen]]:
    """N worker processes, each in its own process group (so a stop or a kill takes its pool
    children too), always stopped on exit. Output goes to ``log_dir/<name>-<i>.log`` when
    given, else to ours."""
    wenv = worker_env(env)
    # the queue consumed (``-Q``); $PHASE1_CELERY_QUEUE stays where the steps go
    queue = queue or wenv.get(QUEUE_ENV) or DEFAULT_QUEUE
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for i in range(int(n)):
            out = None
            if log_dir is not None:
                out = open(Path(log_dir) / f"{name}-{i}.log", "wb")  # noqa: SIM115 - closed below
                logs.append(out)
            procs.append(subprocess.Popen(
                worker_command(f"{name}-{i}", queue, includes=includes), env=wenv,
                stdout=out, stderr=subprocess.STDOUT if out else None,
                start_new_session=True))
        yield procs
    finally:
        for proc in procs:
            stop_process_group(proc)
        for out in logs:
            out.close()


def wait_ready(log_paths: Sequence[Path], procs: Sequence[subprocess.Popen],
               timeout_s: float = 60.0) -> None:
    """Until every worker's log says it is ready (consuming its queue)."""
    end = time.monotonic() + timeout_s
    while True:
        texts = [p.read_text(errors="replace") if p.exists() else "" for p in log_paths]
        if all(" ready." in t for t in texts):
            return
        for proc, path in zip(procs, log_paths, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}: see {path}")
        if time.monotonic() > end:
            raise TimeoutError(f"workers not ready after {timeout_s} s: see {list(log_paths)}")
        time.sleep(0.2)


def delete_queue(settings: CelerySettings) -> int:
    """Purge and delete ``settings.queue`` (and its exchange, and on Redis its binding keys)
    on the broker; returns the number of messages that were still queued."""
    from kombu import Connection

    queue = settings.queue
    with Connection(settings.broker, connect_timeout=5) as conn:
        channel = conn.channel()
        try:
            _, count, _ = channel.queue_declare(queue, passive=True)
        except Exception:  # noqa: BLE001 - no such queue: nothing queued
            count = 0
            channel = conn.channel()  # a failed passive declare closes an AMQP channel
        with suppress(Exception):
            channel.queue_purge(queue)
        with suppress(Exception):
            channel.queue_delete(queue)
        with suppress(Exception):
            channel.exchange_delete(queue)
        client = getattr(channel, "client", None)  # Redis: kombu's routing table keys
        if client is not None and hasattr(client, "delete"):
            client.delete(f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        channel.close()
        return int(count or 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phase1_platform.distributed",
                                description="Celery workers for the celery executor.")
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("workers", help="run N workers in the foreground (Ctrl-C stops them)")
    w.add_argument("-n", type=int, default=2, help="step worker processes (default 2)")
    w.add_argument("--queue", default=None, help=f"default ${QUEUE_ENV} or {DEFAULT_QUEUE}")
    w.add_argument("--runs", type=int, default=0,
                   help=f"also this many run workers on ${RUN_QUEUE_ENV} (default "
                   f"{DEFAULT_RUN_QUEUE}), for the CeleryRunLauncher of dagster.celery.yaml")
    args = p.parse_args(argv)
    if args.n < 0 or args.runs < 0 or args.n + args.runs < 1:
        print("-n and --runs: at least one worker", file=sys.stderr)
        return 2
    settings = CelerySettings.from_env({"queue": args.queue})
    run_queue = os.environ.get(RUN_QUEUE_ENV) or DEFAULT_RUN_QUEUE
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored
        signal.signal(sig, lambda *_: stop.append(1))
    with workers(args.n, {QUEUE_ENV: settings.queue}, settings.queue) as procs, \
            workers(args.runs, {QUEUE_ENV: settings.queue}, run_queue,
                    name="phase1-runs") as run_procs:
        everyone = procs + run_procs
        pids = " ".join(str(pr.pid) for pr in procs)
        line = f"{args.n} step workers ({settings.describe()}): pids {pids or '-'}"
        if args.runs:
            line += (f"; {args.runs} run workers (queue {run_queue}): pids "
                     f"{' '.join(str(pr.pid) for pr in run_procs)}")
        print(f"{line}; stop: Ctrl-C or kill -TERM {os.getpid()}", flush=True)
        while not stop and all(pr.poll() is None for pr in everyone):
            time.sleep(0.5)
        exited = [pr.pid for pr in everyone if pr.poll() is not None]
    if exited and not stop:
        print(f"worker(s) {exited} exited: stopped the others", file=sys.stderr)
        return 1
    return 0


__all__ = ["DEFAULT_BACKEND", "DEFAULT_BROKER", "DEFAULT_QUEUE", "REDIS_BROKER",
           "CelerySettings", "check_broker", "delete_queue", "joinable_celery_executor",
           "masked", "wait_ready",
           "worker_command", "workers"]


if __name__ == "__main__":
    sys.exit(main())
