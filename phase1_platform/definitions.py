"""The one Dagster entry point: ``dagster dev`` (pyproject [tool.dagster]) and
``dagster asset materialize -m phase1_platform.definitions``.

Runs execute in-process by default: one partition is a few seconds of work, and a
subprocess per step would cost more than the work itself. Large backfills ask for the
multiprocess executor through run config (``defs.jobs.multiprocess_config``).

Automation (started by ``dagster dev`` / ``dagster-daemon run``): ``live_ticks_sensor``
(micro-batches from the ingestion watermarks), ``symbol_registry_sensor``,
``daily_backfill`` (16:30 New York on trading days), ``weekly_reconciliation``.
"""

from __future__ import annotations

import dagster as dg

from .defs.assets import ALL_ASSETS
from .defs.checks import ALL_CHECKS
from .defs.jobs import ALL_JOBS, bars_pipeline, in_process_or_multiprocess
from .defs.resources import default_resources
from .defs.schedules import ALL_SCHEDULES
from .defs.sensors import ALL_SENSORS

__all__ = ["bars_pipeline", "defs"]

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=ALL_JOBS,
    sensors=ALL_SENSORS,
    schedules=ALL_SCHEDULES,
    resources=default_resources(),
    executor=in_process_or_multiprocess,
)
