"""The sensors (kept importable here; they live in ``defs.automation``).

``live_ticks_sensor`` (``defs.automation.live``) and ``symbol_registry_sensor``
(``defs.automation.registry``); the objects are the same, so a loader that scans both
modules sees each sensor once.
"""

from __future__ import annotations

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
from .automation.store_state import (
    StoreNotReadyError,
    Watermark,
    open_store_at_head,
    read_ingestion_state,
    stored_symbols,
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
    "open_store_at_head",
    "pending_partitions",
    "plan_live_runs",
    "read_ingestion_state",
    "stored_symbols",
    "symbol_registry_sensor",
    "trading_dates_between",
]
