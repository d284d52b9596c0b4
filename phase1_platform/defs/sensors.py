"""The sensors (kept importable here; they live in ``defs.automation``).

``live_ticks_sensor`` (``defs.automation.live``) and ``symbol_registry_sensor``
(``defs.automation.registry``); the objects are the same, so a loader that scans both
modules sees each sensor once. What they read from the store is ``app.ingestion_state``
(``Watermark`` and ``StoreNotReadyError`` are re-exported here for old importers).
"""

from __future__ import annotations

from ..app.ingestion_state import StoreNotReadyError, Watermark
from .automation import ALL_SENSORS, live_ticks_sensor, symbol_registry_sensor
from .automation.live import (
    CURSOR_HORIZON_NS,
    IN_FLIGHT,
    LIVE_SENSOR_INTERVAL_S,
    PARTITION_TAG,
    WATERMARK_TAG,
    in_flight_partitions,
    pending_partitions,
    plan_live_runs,
    trading_dates_between,
)
from .partitions import is_trading_date

__all__ = [
    "ALL_SENSORS",
    "CURSOR_HORIZON_NS",
    "IN_FLIGHT",
    "LIVE_SENSOR_INTERVAL_S",
    "PARTITION_TAG",
    "WATERMARK_TAG",
    "StoreNotReadyError",
    "Watermark",
    "in_flight_partitions",
    "is_trading_date",
    "live_ticks_sensor",
    "pending_partitions",
    "plan_live_runs",
    "symbol_registry_sensor",
    "trading_dates_between",
]
