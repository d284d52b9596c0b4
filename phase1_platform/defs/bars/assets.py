"""bars_1m, bars_5m, bars_15m, bars_1h, bars_1d: one multi-asset (``bars``), each timeframe
its own asset key.

One ``app.build.build_bars`` of every timeframe from the normalized ticks with the symbol's
rule set (exactly what ``phase1 replay`` builds, whatever the rule set), written with one
atomic ``BarRepository.write_partition``; each timeframe's metadata describes the bars
stored after the build (``app.build.bars_after_build``). With config ``incremental: true`` (the
``live_bars`` job) only the ticks landed since the partition's last build are read and only
the bars they touch rewritten; the stored bars equal a full recompute.
"""

import time

import dagster as dg
import pandas as pd

from ...app.build import bars_after_build, build_bars, take_prepared
from ...core.partition import Partition
from ...core.rules import get_rules
from ...core.schema import QTY_SCALE
from ...core.timeframes import TIMEFRAMES
from ..boundary import (
    RecomputeConfig,
    materialize_result,
    partitions_of,
    rule_set_of,
    run_id,
    user_errors,
)
from ..keys import BAR_ASSETS, BAR_TIMEFRAMES, NORMALIZED_TICKS, OWNERS
from ..metadata import bars_chart_md, bars_preview_md, time_range
from ..partitions import PARTITIONED
from ..resources import SourcesResource, StoreResource
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
        "preview": bars_preview_md(bars),
        "chart": bars_chart_md(bars, f"{part.symbol} {timeframe} bars, {part.date}"),
    }


def _bar_spec(timeframe: str) -> dg.AssetSpec:
    tf = TIMEFRAMES[timeframe]
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


def build_partition(context, part: Partition, incremental: bool, store,
                    sources) -> tuple[dict[str, dict], object]:
    """Build and store the partition's bars; each timeframe's metadata, and the verdict
    on the live path's stored bars (``app.verify_live``)."""
    rule_set = rule_set_of(sources, part)
    prepared = take_prepared(run_id(context), store.get(), part, rule_set, incremental,
                             BAR_TIMEFRAMES)
    built = build_bars(store.get(), part, rule_set, incremental, BAR_TIMEFRAMES,
                       prepared=prepared)
    read, written = built.input, built.bars
    context.log.info(f"{part.key}: {read.plan.describe()}; {len(read.ticks)} ticks read, "
                     f"{len(written)} bars written")
    lag = {} if read.landings.landed_ns is None else {
        "oldest_landing_age_s": round((time.time_ns() - read.landings.landed_ns) / 1e9, 3)}
    stored = bars_after_build(store.get(), built)
    tf_col = stored["timeframe"].astype(str).to_numpy()
    written_tf = written["timeframe"].astype(str).value_counts()
    return {tf: {**bar_metadata(stored[tf_col == tf].reset_index(drop=True), part, tf,
                                rule_set),
                 "recompute": read.plan.describe(), **lag,
                 "bars_written": int(written_tf.get(tf, 0)) if built.verdict.written else 0}
            for tf in BAR_TIMEFRAMES}, built.verdict


@dg.multi_asset(
    name="bars",
    specs=[_bar_spec(tf) for tf in BAR_TIMEFRAMES],
    **PARTITIONED,
    check_specs=LIVE_CHECK_SPECS,
    description="Every bar timeframe of the partition from one BarEngine.build over the "
    "normalized ticks, written with one atomic BarRepository.write_partition.",
)
@user_errors
def bars(context: dg.AssetExecutionContext, config: RecomputeConfig, store: StoreResource,
         sources: SourcesResource):
    """One build for all timeframes: exactly ``BarEngine(rules).build(ticks, timeframes)``,
    or (incremental) the bars the ticks landed since the last build touch.

    Rolling the coarser timeframes up from stored 1m bars is not exact for rule sets where
    a tick may count in volume but set no price (lean-equity): a minute holding only such
    ticks has no 1m bar, yet its volume belongs to the 5m/15m/1h/1d bars. The engine
    decides when a roll-up is exact; an incremental build keeps such minutes' volume as
    stored volume-only rows to roll the 1d bar up exactly (``core.incremental``).
    """
    parts = partitions_of(context)
    built = [build_partition(context, p, config.incremental, store, sources) for p in parts]
    per_part = [m for m, _ in built]
    for tf in BAR_TIMEFRAMES:
        yield materialize_result(parts, [m[tf] for m in per_part], asset_key=BAR_ASSETS[tf])
    yield from live_check_results(context, store.get(), [v for _, v in built])
