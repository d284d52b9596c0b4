"""The schedules (kept importable here; they live in ``defs.automation.schedules``).

The objects are the same, so a loader that scans both modules sees each schedule once.
"""

from __future__ import annotations

from .automation.schedules import (
    ALL_SCHEDULES,
    RANGE_END,
    RANGE_START,
    TZ,
    daily_backfill,
    week_sessions,
    weekly_reconciliation,
)

__all__ = ["ALL_SCHEDULES", "RANGE_END", "RANGE_START", "TZ", "daily_backfill",
           "week_sessions", "weekly_reconciliation"]
