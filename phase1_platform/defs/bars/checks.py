"""The quality checks of the bars: one per timeframe, blocking, partitioned like the bars.

great-expectations (``expectations.GE``) and the pure rules of ``core.quality`` both judge
the partition's stored bars of the timeframe: low <= open, close <= high, volume >= 0,
unique (symbol, timeframe, timestamp), timestamps aligned, daily bars inside the session.
A failure (severity ERROR) blocks ``canonical_export`` in the same run. Each partition's
result is recorded with its partition (Dagster 1.13 ``partitions_def`` on the check), and
its verdict kept in the store by ``app.quality.judge_quality``.
"""

import dagster as dg

from ...app.quality import QualityVerdict, judge_quality
from ...core.timeframes import TIMEFRAMES
from .. import compat  # noqa: F401  (filters the partitioned-check preview warning)
from ..boundary import check_outcome, partitions_of, user_errors
from ..keys import BAR_ASSETS, BAR_TIMEFRAMES, QUALITY_CHECK_KEYS
from ..partitions import partitions_def
from ..resources import StoreResource
from .expectations import GEVerdict, judge_bars_with_ge


def quality_metadata(verdict: QualityVerdict) -> dict:
    """The check's metadata for one partition's verdict (judged with great-expectations)."""
    ge, core = verdict.extra, verdict.report
    assert isinstance(ge, GEVerdict), "the quality checks judge with great-expectations"
    meta = {
        "partition": verdict.partition.key,
        "bars": int(verdict.bars),
        "great_expectations_success": ge.success,
        "expectations_evaluated": len(ge.expectations),
        "expectations_failed": len(ge.failed),
        "failed_expectations": "\n".join(ge.failed) or "none",
        "great_expectations": dg.MetadataValue.json(ge.expectations),
        "rule_violations": dg.MetadataValue.json(core.violations),
        "examples": dg.MetadataValue.json(core.examples),
    }
    if ge.broken:
        meta["broken_expectations"] = "\n".join(ge.broken)
    return meta


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
        verdicts = [judge_quality(store.get(), p, timeframe, extra=judge_bars_with_ge)
                    for p in parts]
        yield from check_outcome(context, asset, check_key.name, parts,
                                 [(v.passed, quality_metadata(v)) for v in verdicts])

    return _quality


QUALITY_CHECKS = [quality_check(key, tf)
                  for key, tf in zip(QUALITY_CHECK_KEYS, BAR_TIMEFRAMES, strict=True)]
