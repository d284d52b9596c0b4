"""The quality checks of the bars: one per timeframe, blocking, partitioned like the bars,
evaluated by the ``bars`` step itself (``check_specs`` of the multi-asset) on the bars it
has just stored, so nothing is read back and no step is spent per check.

The rules are ``core.quality``'s, vectorized: low <= open, close <= high, volume >= 0,
unique (symbol, timeframe, timestamp), timestamps aligned, daily bars inside the session.
great-expectations can judge the same derived frame as a second opinion
(``PipelineSettings.great_expectations``, off by default): it validates the columns our
rules compute, so it adds no independent evidence, and its import costs seconds in every
run process (more than the whole build of a day of SPY), so the default run does without.
A failure (severity ERROR) fails the bars step after the bars are stored, which blocks
``canonical_export`` in the same run. Each partition's verdict is also kept in the store
(``app.quality.judge_quality``) for the read API.
"""

from collections.abc import Mapping

import dagster as dg
import pandas as pd

from ...app.quality import QualityVerdict, judge_quality
from ...core.partition import Partition
from ...core.timeframes import TIMEFRAMES
from .. import compat  # noqa: F401  (filters the partitioned-check preview warning)
from ..keys import BAR_ASSETS, BAR_TIMEFRAMES, QUALITY_CHECK_KEYS
from ..partitions import partitions_def


def quality_metadata(verdict: QualityVerdict) -> dict:
    """The check's metadata for one partition's verdict."""
    core = verdict.report
    meta = {
        "partition": verdict.partition.key,
        "bars": int(verdict.bars),
        "rules_passed": bool(core.passed),
        "failed_rules": "\n".join(core.failed_rules()) or "none",
        "rule_violations": dg.MetadataValue.json(core.violations),
        "examples": dg.MetadataValue.json(core.examples),
    }
    ge = verdict.extra
    if ge is not None:  # great-expectations asked for
        meta.update({
            "great_expectations_success": ge.success,
            "expectations_evaluated": len(ge.expectations),
            "expectations_failed": len(ge.failed),
            "failed_expectations": "\n".join(ge.failed) or "none",
            "great_expectations": dg.MetadataValue.json(ge.expectations),
        })
        if ge.broken:
            meta["broken_expectations"] = "\n".join(ge.broken)
    return meta


def _spec(check_key: dg.AssetCheckKey, timeframe: str) -> dg.AssetCheckSpec:
    extra = ", bars inside the session" if TIMEFRAMES[timeframe].is_session else ""
    return dg.AssetCheckSpec(
        check_key.name,
        asset=BAR_ASSETS[timeframe],
        blocking=True,
        partitions_def=partitions_def,
        description=f"bars_{timeframe}: low <= open, close <= high, volume >= 0, unique "
        f"(symbol, timeframe, timestamp), timestamps aligned{extra} (core.quality; "
        "great-expectations too when settings.great_expectations is on).",
    )


QUALITY_SPECS = [_spec(key, tf) for key, tf in zip(QUALITY_CHECK_KEYS, BAR_TIMEFRAMES,
                                                    strict=True)]


def judge_stored(store, part: Partition, stored: pd.DataFrame, digests: Mapping[str, str],
                 great_expectations: bool) -> dict[str, tuple[bool, dict]]:
    """Timeframe -> (passed, metadata) of the partition's stored bars (all timeframes;
    ``digests``: their sha256 per timeframe)."""
    extra = None
    if great_expectations:
        from .expectations import judge_bars_with_ge  # imported only when asked for

        extra = judge_bars_with_ge
    tf_col = stored["timeframe"].astype(str).to_numpy(object)
    out = {}
    for tf in BAR_TIMEFRAMES:
        bars = stored[tf_col == tf].reset_index(drop=True)
        verdict = judge_quality(store, part, tf, extra=extra, bars=bars, digest=digests.get(tf))
        out[tf] = (verdict.passed, quality_metadata(verdict))
    return out
