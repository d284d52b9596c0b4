"""canonical_export: the canonical bar CSV of the partition (every stored timeframe in one
file) at ``$PHASE1_EXPORT_DIR/<date>/<SYMBOL>.csv``, through ``app.export.export_bars``
(the bytes ``phase1 export`` writes for the same selection), with its sha256 and a
``.meta.json`` sidecar naming the rule set. Blocked by failing parity or quality checks.
"""

import json
from pathlib import Path

import dagster as dg

from ...app.export import export_bars
from ...core.export import write_atomic
from ...core.partition import Partition
from ...core.rules import get_rules
from ...core.timeframes import TIMEFRAMES
from ..boundary import (
    log_partitions,
    materialize_result,
    partitioned_asset,
    partitions_of,
    rule_set_of,
)
from ..keys import BAR_ASSETS, CANONICAL_EXPORT
from ..metadata import bars_chart_md, bars_preview_md, time_range
from ..resources import PipelineSettings, SourcesResource, StoreResource


def export_partition(part: Partition, store, sources, settings) -> dict:
    path = settings.export_file(part.date, part.symbol)
    timeframes = [*TIMEFRAMES, *settings.bar_timeframes()]  # the stored information bars
    exported = export_bars(store.get(), part.symbol, timeframes, part.date, part.date,
                           calendar=part.calendar, path=path)
    bars = exported.frame  # the bars the file holds (canonical order)
    rule_set = rule_set_of(sources, part)
    counts = {tf: n for tf, n in exported.counts.items() if n}
    sidecar = {"partition": part.key, "hash": exported.sha256, "rule_set": rule_set,
               "rule_set_description": get_rules(rule_set).describe(),
               "bars_by_timeframe": counts}
    write_atomic(Path(str(path) + ".meta.json"), (json.dumps(sidecar, indent=2) + "\n").encode())
    chart_tf = "5m" if "5m" in counts else next(iter(counts), "1m")
    return {
        "partition": part.key,
        "path": dg.MetadataValue.path(str(path)),
        "hash": exported.sha256,
        "rows": int(exported.bars),
        "bars_by_timeframe": dg.MetadataValue.json(counts),
        "time_range": time_range(bars["ts"].to_numpy("int64")),
        "rule_set": rule_set,
        "preview": lambda: bars_preview_md(bars),
        "chart": lambda: bars_chart_md(bars[bars["timeframe"] == chart_tf],
                               f"{part.symbol} {chart_tf} bars, {part.date}"),
    }


@partitioned_asset(
    key=CANONICAL_EXPORT,
    group_name="export",
    kinds={"csv"},
    deps=list(BAR_ASSETS.values()),
    description="The canonical bar CSV of the partition (every timeframe in one file) at "
    "$PHASE1_EXPORT_DIR/<date>/<SYMBOL>.csv, read back from the store; sha256 in metadata. "
    "Blocked by failing parity or data-quality checks.",
)
def canonical_export(context: dg.AssetExecutionContext, store: StoreResource,
                     sources: SourcesResource, settings: PipelineSettings) -> dg.MaterializeResult:
    parts = partitions_of(context)
    out = [export_partition(p, store, sources, settings) for p in parts]
    log_partitions(context, [f"{p.key}: exported {m['rows']} bars to {m['path'].path} "
                             f"({m['hash']})" for p, m in zip(parts, out, strict=True)])
    return materialize_result(parts, out)
