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
"""

from __future__ import annotations

import dagster as dg

from .keys import BAR_ASSETS, NORMALIZED_TICKS, PARITY_CHECK_KEYS, REFERENCE_BARS

MULTIPROCESS = {"execution": {"config": {"multiprocess": {}}}}

in_process_or_multiprocess = dg.ExecutorDefinition(
    name="in_process_or_multiprocess",
    # the public executors' own config schemas, with in_process as the default choice
    config_schema=dg.Field(
        dg.Selector({"in_process": dg.in_process_executor.config_schema.as_field(),
                     "multiprocess": dg.multiprocess_executor.config_schema.as_field()}),
        default_value={"in_process": {}},
    ),
    executor_creation_fn=dg.multi_or_in_process_executor.executor_creation_fn,
    requirements=dg.multi_or_in_process_executor.get_requirements,
    description="in_process (default) or multiprocess, chosen by run config.",
)


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
