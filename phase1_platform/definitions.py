"""The one Dagster entry point: ``dagster dev`` (pyproject [tool.dagster]) and
``dagster asset materialize -m phase1_platform.definitions``.

Runs execute in-process by default: one partition is a few seconds of work, and a
subprocess per step would cost more than the work itself.
"""

from __future__ import annotations

import dagster as dg

from .defs.assets import ALL_ASSETS
from .defs.checks import ALL_CHECKS
from .defs.resources import default_resources

bars_pipeline = dg.define_asset_job(
    "bars_pipeline",
    selection=dg.AssetSelection.all(),
    description="Every asset and check of a partition: ticks -> bars -> checked export.",
)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[bars_pipeline],
    resources=default_resources(),
    executor=dg.in_process_executor,
)
