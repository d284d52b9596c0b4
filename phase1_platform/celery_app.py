"""The Celery app the workers run (``celery -A phase1_platform.celery_app worker``;
``make workers N=2`` starts them).

dagster-celery's own tasks (``execute_plan``: one Dagster step per task, plus its
``execute_job`` / ``resume_job`` for its run launcher), on an app configured from the
environment by ``phase1_platform.distributed`` (broker, result backend, queue, late
acknowledgement), the same settings the executor uses. It replaces ``dagster-celery worker
start -y CONFIG -A dagster_celery.app``, which writes the resolved broker URL (password
included) into a Python file under ``$DAGSTER_HOME``.

A worker executes a step by loading the code location named in the task
(``phase1_platform.definitions``) and writing the step's events straight to the run's
Dagster instance (PostgreSQL: the instance must be reachable from every worker), so a
worker needs the same environment as the run: ``DATABASE_URL``, ``PHASE1_DROP_DIR``,
``PHASE1_EXPORT_DIR``, the ``DAGSTER_PG_*`` variables of the instance.
"""

from __future__ import annotations

from dagster_celery.config import DEFAULT_CONFIG, dict_wrapper
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from phase1_platform.distributed import CelerySettings

settings = CelerySettings.from_env()
app = make_app({"broker": settings.broker, "backend": settings.backend, "include": [],
                "config_source": dict_wrapper(dict(DEFAULT_CONFIG, **settings.config_source()))})

execute_plan = create_task(app)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
