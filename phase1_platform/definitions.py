"""The one Dagster entry point: ``dagster dev`` (pyproject [tool.dagster]) and
``dagster asset materialize -m phase1_platform.definitions``.

The assets, checks, jobs, sensors and schedules are loaded from the ``defs/`` folder the
way Dagster 1.13 recommends (its component tree: every module under
``phase1_platform/defs`` is scanned for definitions; the project is found through
``[tool.dg.project] root_module`` in pyproject.toml; ``defs.compat.load_defs_folder`` is
``dg.load_from_defs_folder`` without two per-load costs), grouped by concern: ``ticks/``,
``bars/``, ``reference/``, ``export/`` (each with its assets and their checks),
``automation/`` (sensors, schedules) and ``jobs.py``. The resources and the executor are
merged in here. Loading runs under ``heap.loading()`` (no garbage collections while the
definitions are made, then frozen): they and everything imported so far live as long as
the process.

Runs execute in-process by default: the steps hand each other their data in process
(``app.run_memo``) and a subprocess per step would cost more than the work itself; a run
over many partitions does its work once for all of them (``app.run_build``). The
multiprocess executor stays available through run config (``defs.jobs.multiprocess_config``),
and so does the Celery executor (``{"execution": {"config": {"celery": {}}}}``, workers
started by ``make workers``); ``PHASE1_EXECUTOR=celery|multiprocess|in_process`` sets the
default when this module loads.

Automation (started by ``dagster dev`` / ``dagster-daemon run``): ``live_ticks_sensor``
(micro-batches from the ingestion watermarks), ``symbol_registry_sensor``,
``daily_backfill`` (16:30 New York on trading days), ``weekly_reconciliation``.
"""

from __future__ import annotations

from pathlib import Path

from .heap import loading

with loading():  # the definitions live as long as the process: see phase1_platform.heap
    import dagster as dg

    from .defs.compat import load_defs_folder
    from .defs.jobs import bars_pipeline, make_executor
    from .defs.resources import default_resources

    defs = dg.Definitions.merge(
        load_defs_folder(Path(__file__).parent),
        dg.Definitions(resources=default_resources(), executor=make_executor()),
    )

__all__ = ["bars_pipeline", "defs"]
