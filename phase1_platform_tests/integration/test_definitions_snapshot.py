"""A snapshot of the Definitions (as Dagster's own projects keep one): the asset keys and
their groups, kinds, dependencies and partitioning, the asset checks, the jobs and what
they select, the schedules, the sensors, the partitions definitions, the resources and the
executor. The test compares the live Definitions with the checked-in
``phase1_platform_tests/snapshots/definitions.json``: a change to any of them (a renamed
asset, check or job, a lost dependency, an unpartitioned check) fails here and shows the
difference. Compared with the default environment (the date partitions start at
``PHASE1_FIRST_DATE``, the live sensor's interval is ``PHASE1_LIVE_SENSOR_INTERVAL_S``: leave
them unset here).

An intended change: regenerate the file and review its diff before committing::

    PHASE1_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest -q \\
        phase1_platform_tests/integration/test_definitions_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "definitions.json"
UPDATE_ENV = "PHASE1_UPDATE_SNAPSHOT"


def _partitions(pdef) -> dict | None:
    """The partitions definition as stable data (no list of dates: the calendar's horizon
    moves with time)."""
    if pdef is None:
        return None
    if isinstance(pdef, dg.MultiPartitionsDefinition):
        return {"type": "multi", "dimensions": {
            d.name: _partitions(d.partitions_def) for d in pdef.partitions_defs}}
    if isinstance(pdef, dg.DynamicPartitionsDefinition):
        return {"type": "dynamic", "name": pdef.name}
    if isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        crons = sorted(str(e) for e in (pdef.exclusions or []) if isinstance(e, str))
        return {"type": "time_window", "cron_schedule": pdef.cron_schedule,
                "timezone": pdef.timezone, "fmt": pdef.fmt,
                "start": pdef.start.strftime(pdef.fmt), "end_offset": pdef.end_offset,
                "cron_exclusions": crons,
                "has_date_exclusions": any(not isinstance(e, str) for e in pdef.exclusions or [])}
    return {"type": type(pdef).__name__}


def snapshot(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    repo = defs.get_repository_def()
    pdefs: dict[str, dict] = {}

    def pname(pdef) -> str | None:
        if pdef is None:
            return None
        data = _partitions(pdef)
        name = next((k for k, v in pdefs.items() if v == data), None)
        if name is None:
            name = f"partitions_{len(pdefs) + 1}"
            pdefs[name] = data
        return name

    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "owners": sorted(node.owners),
            "partitions": pname(node.partitions_def),
            "backfill_policy": None if node.backfill_policy is None else
            str(node.backfill_policy.policy_type),
            "checks": sorted(k.name for k in node.check_keys),
        }
    checks = {}
    for ck in sorted(graph.asset_check_keys, key=lambda k: k.to_user_string()):
        node = graph.get(ck)
        checks[ck.to_user_string()] = {
            "blocking": node.blocking,
            "partitions": pname(node.partitions_def),
            "deps": sorted(k.to_user_string() for k in node.parent_entity_keys),
        }
    jobs = {}
    for job in sorted(repo.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        layer = job.asset_layer
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in layer.selected_asset_keys),
            "checks": sorted(k.to_user_string() for k in layer.asset_graph.asset_check_keys),
            "tags": dict(sorted(job.tags.items())),
        }
    schedules = {s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone,
                          "job": s.job_name, "default_status": s.default_status.value}
                 for s in sorted(repo.schedule_defs, key=lambda s: s.name)}
    sensors = {s.name: {"jobs": sorted(j.name for j in s.jobs) if s.has_jobs else [],
                        "minimum_interval_seconds": s.minimum_interval_seconds,
                        "default_status": s.default_status.value}
               for s in sorted(repo.sensor_defs, key=lambda s: s.name)}
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules,
            "sensors": sensors, "partitions": pdefs,
            "resources": sorted(repo.get_top_level_resources()),
            "executor": repo.get_job("bars_pipeline").executor_def.name}


def test_definitions_match_the_snapshot():
    from phase1_platform.definitions import defs

    live = snapshot(defs)
    text = json.dumps(live, indent=2, sort_keys=False) + "\n"
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text)
    assert SNAPSHOT.is_file(), f"no snapshot yet: run with {UPDATE_ENV}=1 to write {SNAPSHOT}"
    expected = json.loads(SNAPSHOT.read_text())
    for part in expected.keys() | live.keys():
        assert live.get(part) == expected.get(part), (
            f"Definitions changed ({part}); if intended, regenerate with {UPDATE_ENV}=1 and "
            "review the diff")
