"""Jobs and the executor: what the sensors, schedules and backfills launch.

- ``bars_pipeline``: every asset and check of a partition (ticks -> bars -> checked export);
  the daily backfill schedule runs it, a user materializing a partition runs the same.
- ``live_bars``: a live micro-batch: the partition's ticks already landed by the ingestion
  service -> normalized ticks -> bars -> checked export (no file drop, no vendor bars),
  recomputing incrementally (config ``incremental: true`` on normalized_ticks and bars):
  only the ticks landed since the last build are read, only the bars they touch rewritten.
- ``reconcile_vendor_bars``: the vendor's bars and the parity checks of every bar timeframe
  against them (the weekly reconciliation; the outcome is asset-check results).

Executor: in-process by default: a run's steps hand each other their data in process
(``app.run_memo``: the landed ticks, the build inputs, the built bars), and a subprocess
per step would cost more than the work. The multiprocess executor stays available through
run config ``{"execution": {"config": {"multiprocess": {"max_concurrent": N}}}}``; its
steps then read what they need from the store.

Distributed: ``{"execution": {"config": {"celery": {}}}}`` sends every step to a Celery
worker (dagster-celery; ``make workers N=2``), and ``PHASE1_EXECUTOR=celery`` (read when
the code location loads) makes that the default for every run without run config
(``in_process``, the default, and ``multiprocess`` are the other values). Broker, result
backend and queue come from the environment (``phase1_platform.distributed``), read in the
run's process when the executor starts: no URL is stored with the job or the run.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster._core.execution.retries import get_retries_config

from ..core.errors import UserError
from .keys import BAR_ASSETS, NORMALIZED_TICKS, PARITY_CHECK_KEYS, REFERENCE_BARS

MULTIPROCESS = {"execution": {"config": {"multiprocess": {}}}}

EXECUTOR_ENV = "PHASE1_EXECUTOR"
EXECUTOR_CHOICES = ("in_process", "multiprocess", "celery")

# dagster-celery's executor config (broker, backend, include, config_source, retries), plus
# the queue; broker, backend and queue default to the environment (phase1_platform.distributed)
CELERY_CONFIG = {
    "broker": dg.Field(dg.Noneable(dg.StringSource), is_required=False,
                       description="Broker URL (default: $PHASE1_CELERY_BROKER, else the "
                       "local RabbitMQ). Prefer the environment: config is stored with the run."),
    "backend": dg.Field(dg.Noneable(dg.StringSource), is_required=False,
                        description="Result backend (default: $PHASE1_CELERY_BACKEND, else "
                        "rpc://)."),
    "queue": dg.Field(dg.Noneable(dg.StringSource), is_required=False,
                      description="Queue of the steps (default: $PHASE1_CELERY_QUEUE, else "
                      "dagster); workers must listen on it."),
    "include": dg.Field([str], is_required=False,
                        description="Modules every worker should import."),
    "config_source": dg.Field(dg.Noneable(dg.Permissive()), is_required=False,
                              description="More Celery settings (lowercase names)."),
    "retries": get_retries_config(),
}


def _celery_executor(init_context: dg.InitExecutorContext):
    from dagster._core.execution.retries import RetryMode

    from ..distributed import CelerySettings, check_broker, joinable_celery_executor

    config = init_context.executor_config["celery"]
    settings = CelerySettings.from_env(config)
    check_broker(settings)  # one clear line before any step is submitted
    return joinable_celery_executor(
        settings, include=config.get("include"), config_source=config.get("config_source"),
        retries=RetryMode.from_config(config["retries"]))


def _create_executor(init_context: dg.InitExecutorContext):
    if "celery" in init_context.executor_config:
        return _celery_executor(init_context)
    return dg.multi_or_in_process_executor.executor_creation_fn(init_context)


def _requirements(config):
    if "celery" in config:  # steps in other processes: a persistent instance, reconstructable
        return dg.multiple_process_executor_requirements()
    return dg.multi_or_in_process_executor.get_requirements(config)


def default_executor_choice() -> str:
    choice = (os.environ.get(EXECUTOR_ENV) or "in_process").strip().lower()
    if choice not in EXECUTOR_CHOICES:
        raise UserError(f"{EXECUTOR_ENV}={choice!r} is not an executor: use one of "
                        f"{', '.join(EXECUTOR_CHOICES)} (or leave it unset: in_process)")
    return choice


def make_executor(default: str | None = None) -> dg.ExecutorDefinition:
    """in_process, multiprocess or celery by run config; the default is ``default``, else
    ``$PHASE1_EXECUTOR``, else in_process."""
    default = default or default_executor_choice()
    return dg.ExecutorDefinition(
        name="in_process_multiprocess_or_celery",
        config_schema=dg.Field(
            dg.Selector({"in_process": dg.in_process_executor.config_schema.as_field(),
                         "multiprocess": dg.multiprocess_executor.config_schema.as_field(),
                         "celery": dg.Field(CELERY_CONFIG)}),
            default_value={default: {}},
        ),
        executor_creation_fn=_create_executor,
        requirements=_requirements,
        description=f"in_process, multiprocess or celery (dagster-celery workers), chosen by "
        f"run config; default {default} (${EXECUTOR_ENV}).",
    )


CELERY = {"execution": {"config": {"celery": {}}}}

# step processes fork from a server that imported the code once, instead of a fresh
# interpreter importing everything per step
PRELOAD = ["phase1_platform.definitions"]


def multiprocess_config(max_concurrent: int = 0, forkserver: bool = True) -> dict:
    """Run config for the multiprocess executor (0: one process per CPU)."""
    config: dict = {"max_concurrent": int(max_concurrent)}
    if forkserver:
        config["start_method"] = {"forkserver": {"preload_modules": list(PRELOAD)}}
    return {"execution": {"config": {"multiprocess": config}}}


bars_pipeline = dg.define_asset_job(
    "bars_pipeline",
    selection=dg.AssetSelection.all(),
    description="Every asset and check of a partition: ticks -> bars -> checked export.",
)

# a live run reads only the ticks landed since the partition's last build and rewrites
# only the bars they touch (app.build)
LIVE_RUN_CONFIG = {"ops": {"normalized_ticks": {"config": {"incremental": True}},
                           "bars": {"config": {"incremental": True}}}}

live_bars = dg.define_asset_job(
    "live_bars",
    selection=dg.AssetSelection.assets(NORMALIZED_TICKS).downstream(),
    description="Live micro-batch of a partition: the ticks the ingestion service landed "
    "since the last build -> the bars they touch (incremental recompute) -> checked export "
    "(launched by live_ticks_sensor).",
    config=LIVE_RUN_CONFIG,
    tags={"phase1/trigger": "live"},
)

reconcile_vendor_bars = dg.define_asset_job(
    "reconcile_vendor_bars",
    selection=dg.AssetSelection.assets(REFERENCE_BARS)
    | dg.AssetSelection.checks(*PARITY_CHECK_KEYS),
    description="Stored bars against the vendor's bars: reference_bars, then the parity "
    "check of every bar timeframe (launched weekly by weekly_reconciliation).",
    tags={"phase1/trigger": "reconciliation"},
)

ALL_JOBS = [bars_pipeline, live_bars, reconcile_vendor_bars]
BAR_KEYS = list(BAR_ASSETS.values())
