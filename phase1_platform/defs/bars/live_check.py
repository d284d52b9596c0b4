"""``live_equals_batch``: the Dagster side of the live path's verification.

The ingestion service stores the bars as ticks land (``app.live_bars``); a ``live_bars``
run rebuilds the bars the pending landings touch and compares them with what the live
path stored (``app.verify_live``): equal, it writes nothing; different, the batch result
is written and the check fails with the differences in its metadata (first ones listed,
counts by timeframe and field).

One blocking check per bar timeframe asset, all fed by the one comparison of the
``bars`` multi-asset: each ``bars_<tf>`` shows the verdict on its own bars in its Checks
tab, and a failure blocks exactly what reads that timeframe downstream. Partitioned like
the bars (each partition's verdict is in its own history). ``bars_pipeline`` runs (full
rebuilds, backfills) report passed: they do not judge the live path (the metadata says so
and how many stored bars the rebuild changed).
"""

from __future__ import annotations

import dagster as dg

from ...app.checks import LIVE_EQUALS_BATCH
from ...app.verify_live import FULL_REBUILD, LiveVerdict, record_live_verdict
from .. import compat  # noqa: F401  (filters the partitioned-check preview warning)
from ..boundary import check_outcome
from ..keys import BAR_ASSETS, BAR_TIMEFRAMES
from ..partitions import partitions_def

LIVE_CHECK_SPECS = [
    dg.AssetCheckSpec(
        LIVE_EQUALS_BATCH, asset=BAR_ASSETS[tf], blocking=True, partitions_def=partitions_def,
        description=f"The {tf} bars the live ingestion service stored equal the batch "
        "rebuild of the same stored ticks (live_bars runs); on a difference the batch result "
        "is written and the differences are listed.")
    for tf in BAR_TIMEFRAMES
]


def verdict_metadata(verdict: LiveVerdict, timeframe: str) -> dict:
    s = verdict.summary(timeframe)
    meta = {
        "partition": s["partition"], "mode": s["mode"], "note": s["note"],
        "bars_compared": int(s["compared"]), "bars_differing": int(s["bars_differing"]),
        "differences": int(s["differences"]), "batch_written": bool(s["batch_written"]),
        "differences_by_timeframe": dg.MetadataValue.json(s["by_timeframe"]),
        "differences_by_field": dg.MetadataValue.json(s["by_field"]),
        "first_differences": dg.MetadataValue.json(s["first_differences"]),
    }
    if "since" in s:
        meta["since"] = s["since"]
    return meta


def live_check_results(context, store, verdicts: list[LiveVerdict]):
    """What the ``bars`` multi-asset yields for its ``live_equals_batch`` checks: one result
    per partition and bar timeframe (``defs.boundary.check_outcome``). The verdicts of
    live runs are kept in the store (``app.verify_live``; a full rebuild judges nothing,
    so it records nothing)."""
    for v in verdicts:
        if v.mode != FULL_REBUILD:
            record_live_verdict(store, v, BAR_TIMEFRAMES)
    parts = [v.partition for v in verdicts]
    for tf in BAR_TIMEFRAMES:
        yield from check_outcome(context, dg.AssetCheckKey(BAR_ASSETS[tf], LIVE_EQUALS_BATCH),
                                 parts, [(v.passed, verdict_metadata(v, tf)) for v in verdicts])


__all__ = ["LIVE_CHECK_SPECS", "live_check_results", "verdict_metadata"]
