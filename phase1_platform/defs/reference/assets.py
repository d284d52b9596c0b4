"""reference_bars: the vendor's own bars of the partition, for the parity checks.

From the symbol's reference source: the LEAN minute/second/daily files in the drop
(``app.parity.reference_from_lean``), or (live mode) Alpaca's or Yahoo's bars. Kept as a
canonical CSV under ``$PHASE1_EXPORT_DIR/_reference/<date>/<SYMBOL>.csv``; a partition
without vendor bars has no reference (not a failure: the parity checks say so).
"""

import dagster as dg
import pandas as pd

from ...app.parity import reference_from_lean
from ...core.errors import ConfigError
from ...core.export import CanonicalExporter
from ...core.partition import Partition
from ..boundary import (
    materialize_result,
    partitioned_asset,
    partitions_of,
    reference_files,
    reference_source_of,
    require_live,
)
from ..keys import REFERENCE_BARS
from ..metadata import bars_preview_md, time_range
from ..resources import (
    AlpacaResource,
    FileDropResource,
    PipelineSettings,
    SourcesResource,
    YFinanceResource,
)


def vendor_bars(source: str, part: Partition, drop, settings, alpaca, yfinance
                ) -> tuple[pd.DataFrame | None, list[str]]:
    """The partition's vendor bars from ``source`` and where they came from."""
    if source == "none":
        return None, []
    if source == "drop":
        files = reference_files(drop, part)
        return reference_from_lean(files, part), [str(f) for f in files]
    if source in ("alpaca", "yfinance"):
        require_live(settings.mode, f"reference source {source} for {part.symbol}")
        conn = (alpaca if source == "alpaca" else yfinance).connector()
        start = pd.Timestamp(part.start_ns, tz="UTC")
        end = pd.Timestamp(part.end_ns, tz="UTC")
        frames = [f for f in (conn.get_bars(part.symbol, tf, start, end) for tf in ("1m", "1d"))
                  if len(f)]
        ref = pd.concat(frames, ignore_index=True) if frames else None
        return ref, [f"{source}: {part.symbol} 1m, 1d bars"]
    raise ConfigError(f"unknown reference source {source!r} for {part.symbol}: use drop, "
                      "alpaca, yfinance or none")


def keep_reference(part: Partition, drop, sources, settings, alpaca, yfinance) -> dict:
    target = settings.reference_file(part.date, part.symbol)
    source = reference_source_of(sources, part)
    ref, files = vendor_bars(source, part, drop, settings, alpaca, yfinance)
    if ref is None:
        target.unlink(missing_ok=True)
        return {"partition": part.key, "reference": "none",
                "note": f"no vendor bars for {part.key} (source {source}): the parity check "
                        "passes without comparing"}
    digest = CanonicalExporter(ref).write(target)
    counts = ref["timeframe"].value_counts()
    return {
        "partition": part.key,
        "reference": source,
        "files": "\n".join(files),
        "bars": int(len(ref)),
        "bars_by_timeframe": dg.MetadataValue.json({str(k): int(v) for k, v in counts.items()}),
        "time_range": time_range(ref["ts"].to_numpy("int64")),
        "path": dg.MetadataValue.path(str(target)),
        "hash": digest,
        "preview": lambda: bars_preview_md(ref),
    }


@partitioned_asset(
    key=REFERENCE_BARS,
    group_name="reference",
    kinds={"pandas", "csv"},
    description="The vendor's own bars for the partition (LEAN minute/second/daily files in "
    "the drop), kept as a canonical CSV under $PHASE1_EXPORT_DIR/_reference for the parity "
    "checks. A partition without vendor bars has no reference (not a failure).",
)
def reference_bars(context: dg.AssetExecutionContext, drop: FileDropResource,
                   sources: SourcesResource, settings: PipelineSettings,
                   alpaca: AlpacaResource, yfinance: YFinanceResource) -> dg.MaterializeResult:
    parts = partitions_of(context)
    out = [keep_reference(p, drop, sources, settings, alpaca, yfinance) for p in parts]
    return materialize_result(parts, out)
