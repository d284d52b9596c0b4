"""The quality checks of the bars: one per timeframe, blocking, partitioned like the bars.

great-expectations (``expectations.GE``) and the pure rules of ``core.quality`` both judge
the partition's stored bars of the timeframe: low <= open, close <= high, volume >= 0,
unique (symbol, timeframe, timestamp), timestamps aligned, daily bars inside the session.
A failure (severity ERROR) blocks ``canonical_export`` in the same run. Each partition's
result is recorded with its partition (Dagster 1.13 ``partitions_def`` on the check).
"""

import dagster as dg

from ...core.partition import Partition
from ...core.quality import evaluate_bars, quality_frame
from ...core.timeframes import TIMEFRAMES
from ...storage import BarRepository
from .. import compat  # noqa: F401  (filters the partitioned-check preview warning)
from ..boundary import check_outcome, partitions_of, user_errors
from ..keys import BAR_ASSETS, BAR_TIMEFRAMES, QUALITY_CHECK_KEYS
from ..partitions import partitions_def
from ..resources import StoreResource
from .expectations import GE, bar_expectations, summarize_ge


def quality_for(part: Partition, timeframe: str, store) -> tuple[bool, dict]:
    bars = BarRepository(store).read_partition(part, [timeframe])
    frame = quality_frame(bars)
    ge_ok, summary, broken = summarize_ge(GE.validate("bars", frame, bar_expectations))
    core = evaluate_bars(bars)
    passed = ge_ok and core.passed and not broken
    failed = [k for k, v in summary.items() if not v["success"]]
    meta = {
        "partition": part.key,
        "bars": int(len(bars)),
        "great_expectations_success": ge_ok,
        "expectations_evaluated": len(summary),
        "expectations_failed": len(failed),
        "failed_expectations": "\n".join(failed) or "none",
        "great_expectations": dg.MetadataValue.json(summary),
        "rule_violations": dg.MetadataValue.json(core.violations),
        "examples": dg.MetadataValue.json(core.examples),
    }
    if broken:
        meta["broken_expectations"] = "\n".join(broken)
    return passed, meta


def quality_check(check_key: dg.AssetCheckKey, timeframe: str) -> dg.AssetChecksDefinition:
    asset = BAR_ASSETS[timeframe]
    extra = ", bars inside the session" if TIMEFRAMES[timeframe].is_session else ""

    @dg.asset_check(
        asset=asset,
        name=check_key.name,
        blocking=True,
        partitions_def=partitions_def,
        description=f"great-expectations on bars_{timeframe}: low <= open, close <= high, "
        f"volume >= 0, unique (symbol, timeframe, timestamp), timestamps aligned{extra}.",
    )
    @user_errors
    def _quality(context: dg.AssetCheckExecutionContext, store: StoreResource):
        parts = partitions_of(context)
        results = [quality_for(p, timeframe, store.get()) for p in parts]
        yield from check_outcome(context, asset, check_key.name, parts, results)

    return _quality


QUALITY_CHECKS = [quality_check(key, tf)
                  for key, tf in zip(QUALITY_CHECK_KEYS, BAR_TIMEFRAMES, strict=True)]
