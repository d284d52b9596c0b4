"""bars_1m, bars_5m, bars_15m, bars_1h, bars_1d: one multi-asset (``bars``), each timeframe
its own asset key, with the quality check of each timeframe evaluated in the same step.

Every timeframe of every partition of the run from one ``app.run_build.build_run`` (the
normalized ticks the previous step handed over; one engine pass for all partitions of a
rule set, each partition its own group: exactly what ``phase1 replay`` builds, whatever the
rule set), each partition written with one atomic ``BarRepository.write_partition``; each
timeframe's metadata describes the bars stored after the build
(``app.build.bars_after_build``). With config ``incremental: true`` (the ``live_bars`` job)
only the ticks landed since the partition's last build are read and only the bars they
touch rewritten; the stored bars equal a full recompute.
"""

import time

import dagster as dg
import pandas as pd

from ...app.build import BuildResult, Full, bars_after_build
from ...app.run_build import build_run, hand_over_built
from ...core.export import CanonicalExporter
from ...core.partition import Partition
from ...core.rules import get_rules
from ...core.schema import QTY_SCALE
from ...core.timeframes import parse_timeframe
from ..boundary import (
    RecomputeConfig,
    check_outcome,
    log_partitions,
    materialize_result,
    partitions_of,
    rule_set_of,
    run_id,
    user_errors,
)
from ..keys import BAR_ASSETS, BAR_TIMEFRAMES, NORMALIZED_TICKS, OWNERS, QUALITY_CHECK_KEYS
from ..metadata import bars_chart_md, bars_preview_md, time_range
from ..partitions import PARTITIONED
from ..resources import PipelineSettings, SourcesResource, StoreResource
from .checks import QUALITY_SPECS, judge_stored
from .live_check import LIVE_CHECK_SPECS, live_check_results


def bar_metadata(bars: pd.DataFrame, part: Partition, timeframe: str, rule_set: str) -> dict:
    ts = bars["ts"].to_numpy("int64")
    return {
        "partition": part.key,
        "bars": int(len(bars)),
        "time_range": time_range(ts),
        "volume": float(bars["qty"].sum() / QTY_SCALE) if len(bars) else 0.0,
        "trade_count": int(bars["trade_count"].sum()) if len(bars) else 0,
        "rule_set": rule_set,
        "rule_set_description": get_rules(rule_set).describe(),
        "preview": lambda: bars_preview_md(bars),
        "chart": lambda: bars_chart_md(bars, f"{part.symbol} {timeframe} bars, {part.date}"),
    }


def _bar_spec(timeframe: str) -> dg.AssetSpec:
    tf = parse_timeframe(timeframe)
    label = "daily (one regular XNYS session)" if tf.is_session else timeframe
    return dg.AssetSpec(
        key=BAR_ASSETS[timeframe],
        group_name="bars",
        kinds={"pandas", "sql"},
        deps=[NORMALIZED_TICKS],
        owners=OWNERS,
        description=f"{label} bars of the partition, built from its normalized ticks with the "
        "symbol's rule set in the same BarEngine.build as every other timeframe (exactly "
        "`phase1 replay`); all timeframes replace the partition's bars in one transaction.",
    )


def partition_metadata(built: BuildResult, stored: pd.DataFrame) -> dict[str, dict]:
    """Each timeframe's metadata of one partition's build (``stored``: its bars after it)."""
    read, written, part = built.input, built.bars, built.input.partition
    lag = {} if read.landings.landed_ns is None else {
        "oldest_landing_age_s": round((time.time_ns() - read.landings.landed_ns) / 1e9, 3)}
    tf_col = stored["timeframe"].astype(str).to_numpy()
    written_tf = written["timeframe"].astype(str).value_counts()
    return {tf: {**bar_metadata(stored[tf_col == tf].reset_index(drop=True), part, tf,
                                built.rule_set),
                 "recompute": read.plan.describe(), **lag,
                 "bars_written": int(written_tf.get(tf, 0)) if built.verdict.written else 0}
            for tf in BAR_TIMEFRAMES}


@dg.multi_asset(
    name="bars",
    specs=[_bar_spec(tf) for tf in BAR_TIMEFRAMES],
    check_specs=[*QUALITY_SPECS, *LIVE_CHECK_SPECS],
    **PARTITIONED,
    description="Every bar timeframe of the run's partitions from one BarEngine pass over "
    "the normalized ticks, each partition written with one atomic "
    "BarRepository.write_partition; the quality checks judge the bars stored, and a live run "
    "checks them against what the live path stored (live_equals_batch).",
)
@user_errors
def bars(context: dg.AssetExecutionContext, config: RecomputeConfig, store: StoreResource,
         sources: SourcesResource, settings: PipelineSettings):
    """One build for all timeframes and partitions: exactly ``BarEngine(rules).build(ticks,
    timeframes)`` of each partition, or (incremental) the bars the ticks landed since the
    last build touch.

    Rolling the coarser timeframes up from stored 1m bars is not exact for rule sets where
    a tick may count in volume but set no price (lean-equity): a minute holding only such
    ticks has no 1m bar, yet its volume belongs to the 5m/15m/1h/1d bars. The engine
    decides when a roll-up is exact; an incremental build keeps such minutes' volume as
    stored volume-only rows to roll the 1d bar up exactly (``core.incremental``).
    """
    parts = partitions_of(context)
    rule_sets = {p: rule_set_of(sources, p) for p in parts}
    built = build_run(store.get(), parts, rule_sets, config.incremental,
                      settings.bar_timeframes(), scope=run_id(context))
    stored = [bars_after_build(store.get(), b) for b in built]
    digests = [CanonicalExporter(s).timeframe_hashes() for s in stored]  # of what is judged
    for b, bars_now, sha in zip(built, stored, digests, strict=True):  # for the parity step
        hand_over_built(run_id(context), store.get(), b.input.partition,
                        b.input.ticks if isinstance(b.plan, Full) else None, bars_now, sha)
    log_partitions(context, [f"{b.input.partition.key}: {b.plan.describe()}; "
                             f"{len(b.input.ticks)} ticks read, {len(b.bars)} bars written"
                             for b in built])
    per_part = [partition_metadata(b, s) for b, s in zip(built, stored, strict=True)]
    for tf in BAR_TIMEFRAMES:
        yield materialize_result(parts, [m[tf] for m in per_part], asset_key=BAR_ASSETS[tf])
    quality = [judge_stored(store.get(), p, s, sha, settings.great_expectations)
               for p, s, sha in zip(parts, stored, digests, strict=True)]
    for key, tf in zip(QUALITY_CHECK_KEYS, BAR_TIMEFRAMES, strict=True):
        yield from check_outcome(context, key, parts, [q[tf] for q in quality])
    yield from live_check_results(context, store.get(), [b.verdict for b in built])
