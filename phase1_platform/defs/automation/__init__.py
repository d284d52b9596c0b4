"""Dagster automation: the sensors and schedules that launch runs on their own.

- ``live``: ``live_ticks_sensor`` (ingestion watermarks -> incremental ``live_bars`` runs);
- ``registry``: ``symbol_registry_sensor`` (the store's symbols -> ``symbols`` partitions);
- ``schedules``: ``daily_backfill`` and ``weekly_reconciliation``.

What the sensors read from the store (never migrating it) is ``app.ingestion_state``.

Each module holds its definitions at module level plus ``ALL_SENSORS``/``ALL_SCHEDULES``
(a module-scan loader finds the objects; a plain import takes the lists); this package
gathers them all.
"""

from .live import live_ticks_sensor
from .registry import symbol_registry_sensor
from .schedules import daily_backfill, weekly_reconciliation

ALL_SENSORS = [live_ticks_sensor, symbol_registry_sensor]
ALL_SCHEDULES = [daily_backfill, weekly_reconciliation]

__all__ = ["ALL_SCHEDULES", "ALL_SENSORS", "daily_backfill", "live_ticks_sensor",
           "symbol_registry_sensor", "weekly_reconciliation"]
