"""Assets: raw ticks -> normalized ticks -> bars per timeframe -> canonical export.

Data lives in the store of record (``store`` resource); the assets move it along and
record what they did as metadata. Each asset runs for every partition of its run
(one partition normally; several in a backfill run).

- ``raw_ticks``: lands the partition's tick files (file drop) into the landing table;
  bad rows are quarantined with their reason. A partition's raw ticks are what landed
  for its symbol and trading date, whichever way they came.
- ``normalized_ticks``: the partition's canonical tick set (all sources merged, one row
  per trade_id, canonical order) read from the landing table.
- ``bars_1m``, ``bars_5m``, ``bars_15m``, ``bars_1h``, ``bars_1d``: one multi-asset
  (``bars``), each timeframe its own asset key: one ``BarEngine.build`` of every
  timeframe from the normalized ticks with the symbol's rule set (exactly what
  ``phase1 replay`` builds, whatever the rule set), written with one atomic
  ``BarRepository.write_partition``.

  With config ``incremental: true`` (the ``live_bars`` job), ``normalized_ticks`` and
  ``bars`` read only the ticks landed since the partition's last build and rewrite only
  the bars they touch (``app.build``); the stored bars equal a full recompute.
- ``reference_bars``: the vendor's own bars for the partition (LEAN files in the drop),
  kept as a canonical CSV for the parity checks.
- ``canonical_export``: the canonical CSV of every timeframe of the partition, at
  ``$PHASE1_EXPORT_DIR/<date>/<SYMBOL>.csv``, its sha256 in the metadata.
"""


import functools
import hashlib
import json
import time
import warnings
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from ..app.build import BuildInput, Full, build_bars, prepare_build_for, take_prepared
from ..app.land import land_ticks
from ..core.export import CanonicalExporter, read_canonical_csv
from ..core.normalizer import NormalizeResult, TickNormalizer
from ..core.partition import Partition
from ..core.rules import get_rules
from ..core.schema import QTY_SCALE, ts_ns
from ..core.timeframes import DEFAULT_TIMEFRAMES as BAR_TIMEFRAMES
from ..core.timeframes import TIMEFRAMES
from ..readers import read_lean_bars, read_ticks
from .metadata import (
    bars_chart_md,
    bars_preview_md,
    counts_table_md,
    ticks_preview_md,
    time_range,
)
from .partitions import backfill_policy, partitions_def, split_key
from .resources import (
    AlpacaResource,
    FileDropResource,
    PipelineSettings,
    SourcesResource,
    StoreResource,
    YFinanceResource,
)

# the backfill policy (several partitions per run) is a beta parameter of @asset in 1.13
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

OWNERS = ["team:market-data"]
COMMON = {"partitions_def": partitions_def, "backfill_policy": backfill_policy, "owners": OWNERS}


Part = Partition


def user_errors(fn):
    """A bad file, a missing key, an unreachable database: one clear line, not a traceback."""
    from ..connectors.base import ConnectorError

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, OSError, ConnectorError) as exc:
            raise dg.Failure(description=f"{type(exc).__name__}: {exc}") from exc

    return wrapper


def partitions_of(context) -> list[Part]:
    """The partitions of this run (one normally, several in a backfill run)."""
    if not context.has_partition_key and not context.has_partition_key_range:
        raise dg.Failure("run without a partition: choose one, e.g. --partition 2013-10-07|SPY")
    return [Partition(*split_key(k)) for k in context.partition_keys]


def _result(parts: list[Part], per_part: list[dict]) -> dg.MaterializeResult:
    """One partition: its metadata; several: totals of numbers plus each one's metadata."""
    if len(per_part) == 1:
        return dg.MaterializeResult(metadata=per_part[0])
    merged: dict[str, object] = {"partitions": len(parts)}
    for key in per_part[0]:
        vals = [m.get(key) for m in per_part]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            merged[key] = int(sum(vals))
    merged["by_partition"] = dg.MetadataValue.json(
        {p.key: {k: v for k, v in m.items() if isinstance(v, (int, float, str))}
         for p, m in zip(parts, per_part, strict=True)}
    )
    return dg.MaterializeResult(metadata=merged)


# ----------------------------------------------------------------------------- domain glue
def store_repos(store: StoreResource):
    from ..storage.repositories import BarRepository, QuarantineRepository, TickRepository

    s = store.get()
    return TickRepository(s), BarRepository(s), QuarantineRepository(s)


class RecomputeConfig(dg.Config):
    incremental: bool = Field(
        default=False,
        description="Read only the ticks landed since the partition's last build and "
        "rewrite only the bars they touch (live runs); false: recompute the whole partition.",
    )


def normalized_ticks_of(store: StoreResource, part: Part) -> NormalizeResult:
    """All the partition's canonical ticks (a full read)."""
    from ..app.build import normalize_partition
    from ..storage.repositories import TickRepository

    return normalize_partition(TickRepository(store.get()).read(part), part)


def rules_name(drop: FileDropResource, sources: SourcesResource, part: Part) -> str:
    return sources.rules_for(part.symbol, drop.tick_files(part.date, part.symbol))


def ticks_fingerprint(ticks: pd.DataFrame) -> str:
    """sha256 of the canonical ticks' values: equal fingerprints, equal tick sets."""
    if len(ticks) == 0:
        return "sha256:" + hashlib.sha256(b"").hexdigest()
    cols = ["symbol", "price", "size", "exchange", "conditions", "trade_id", "sequence"]
    h = pd.util.hash_pandas_object(ticks[cols], index=False).to_numpy()
    digest = hashlib.sha256(ts_ns(ticks["ts"]).tobytes() + h.tobytes())
    return "sha256:" + digest.hexdigest()


def bar_metadata(bars: pd.DataFrame, part: Part, timeframe: str, rule_set: str) -> dict:
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


def require_live(settings: PipelineSettings, what: str) -> None:
    if settings.mode != "live":
        raise dg.Failure(f"{what} needs the network: run with INGESTION_MODE=live "
                         f"(settings.mode is {settings.mode!r}); mock mode uses the file drop")


def tick_batches(source: str, part: Part, drop: FileDropResource, settings: PipelineSettings,
                 alpaca: AlpacaResource) -> list[tuple[str, object]]:
    """(source name, loader of a raw tick frame) for each batch the partition lands."""
    if source == "drop":
        # the readers name each row's source (file name, zip member): the landing identity
        return [(str(p), lambda p=p: read_ticks(p)) for p in drop.tick_files(part.date,
                                                                            part.symbol)]
    if source == "alpaca":
        require_live(settings, f"tick source alpaca for {part.symbol}")
        conn = alpaca.connector()
        start = pd.Timestamp(part.start_ns, tz="UTC")
        end = pd.Timestamp(part.end_ns, tz="UTC")
        return [(conn.source, lambda: conn.fetch_trades(part.symbol, start, end))]
    raise dg.Failure(f"unknown tick source {source!r} for {part.symbol}: use drop or alpaca")


# ----------------------------------------------------------------------------------- assets
@dg.asset(
    group_name="ingest",
    kinds={"python", "sql"},
    description="Tick files of the partition (file drop: <drop>/<date>/<SYMBOL>.csv or LEAN "
    "tick zips) landed into the store's landing table; bad rows quarantined with a reason.",
    **COMMON,
)
@user_errors
def raw_ticks(context: dg.AssetExecutionContext, store: StoreResource, drop: FileDropResource,
              sources: SourcesResource, settings: PipelineSettings,
              alpaca: AlpacaResource) -> dg.MaterializeResult:
    ticks_repo, _, quarantine_repo = store_repos(store)
    parts = partitions_of(context)
    out = []
    for part in parts:
        source = sources.tick_source(part.symbol)
        batches = tick_batches(source, part, drop, settings, alpaca)
        files = [name for name, _ in batches]
        rows_in = landed_new = accepted = 0
        reasons: dict[str, int] = {}
        normalizer = TickNormalizer(symbols=[part.symbol], window=(part.start_ns, part.end_ns))
        for name, load in batches:
            res = normalizer.normalize(load(), source=name)
            rows_in += res.rows_in
            landed = land_ticks(ticks_repo.store, res, part.key)
            accepted += landed.accepted - landed.conflicting
            landed_new += landed.new
            for reason, n in landed.quarantined_by_reason.items():
                reasons[reason] = reasons.get(reason, 0) + n
        if accepted == 0 and len(ticks_repo.read(part)) == 0:
            found = f"{len(files)} file(s) without a valid tick of that date" if files else \
                "no file"
            raise dg.Failure(
                f"no ticks for {part.symbol} on {part.date} ({found}): drop a tick file at "
                f"{drop.drop_path() / part.date / (part.symbol + '.csv')} or a LEAN tick zip "
                f"(searched {drop.describe()})"
            )
        context.log.info(f"{part.key}: {len(files)} file(s), {rows_in} rows, {landed_new} new, "
                         f"{sum(reasons.values())} quarantined")
        out.append({
            "partition": part.key,
            "source": source,
            "files": "\n".join(str(p) for p in files) or "(none: ticks already landed)",
            "rows_read": rows_in,
            "ticks_accepted": accepted,
            "ticks_new": landed_new,
            "ticks_already_landed": accepted - landed_new,
            "rejected": sum(reasons.values()),
            "rejected_by_reason": dg.MetadataValue.json(reasons),
            "rejected_table": counts_table_md(reasons),
            "mode": settings.mode,
        })
    return _result(parts, out)


@dg.asset(
    group_name="ingest",
    kinds={"pandas"},
    deps=[raw_ticks],
    description="The partition's canonical ticks: every source landed for the symbol and "
    "trading date, merged, one row per trade_id, in canonical order (DESIGN sections 3, 7).",
    **COMMON,
)
@user_errors
def normalized_ticks(context: dg.AssetExecutionContext, config: RecomputeConfig,
                     store: StoreResource, drop: FileDropResource,
                     sources: SourcesResource) -> dg.MaterializeResult:
    ticks_repo, _, quarantine_repo = store_repos(store)
    parts = partitions_of(context)
    out = []
    for part in parts:
        read: BuildInput = prepare_build_for(context.run_id, store.get(), part,
                                             rules_name(drop, sources, part),
                                             config.incremental, BAR_TIMEFRAMES)
        res = read.normalized
        full = isinstance(read.plan, Full)
        quarantine_repo.add(res.quarantine, part.key)  # duplicates across sources
        ticks = res.ticks
        per_source = ticks["source"].astype(str).value_counts().sort_index()
        meta = {
            "partition": part.key,
            "recompute": read.plan.describe(),
            "ticks": int(len(ticks)) if full else ticks_repo.count_canonical(part),
            "ticks_read": int(len(ticks)),
            "landings_pending": len(read.landings),
            "time_range": time_range(ts_ns(ticks["ts"])),
            "duplicates_removed": int(res.rejected),
            "sources": dg.MetadataValue.json({str(k): int(v) for k, v in per_source.items()}),
            "preview": ticks_preview_md(ticks),
        }
        if full:  # the whole tick set was read
            meta["fingerprint"] = ticks_fingerprint(ticks)
        out.append(meta)
    return _result(parts, out)


def _bar_spec(timeframe: str) -> dg.AssetSpec:
    tf = TIMEFRAMES[timeframe]
    label = "daily (one regular XNYS session)" if tf.is_session else timeframe
    return dg.AssetSpec(
        key=f"bars_{timeframe}",
        group_name="bars",
        kinds={"pandas", "sql"},
        deps=[normalized_ticks],
        owners=OWNERS,
        description=f"{label} bars of the partition, built from its normalized ticks with the "
        "symbol's rule set in the same BarEngine.build as every other timeframe (exactly "
        "`phase1 replay`); all timeframes replace the partition's bars in one transaction.",
    )


BAR_SPECS = [_bar_spec(tf) for tf in BAR_TIMEFRAMES]
BAR_ASSETS = {tf: spec.key for tf, spec in zip(BAR_TIMEFRAMES, BAR_SPECS, strict=True)}


@dg.multi_asset(
    name="bars",
    specs=BAR_SPECS,
    partitions_def=partitions_def,
    backfill_policy=backfill_policy,
    description="Every bar timeframe of the partition from one BarEngine.build over the "
    "normalized ticks, written with one atomic BarRepository.write_partition.",
)
@user_errors
def bars(context: dg.AssetExecutionContext, config: RecomputeConfig, store: StoreResource,
         drop: FileDropResource, sources: SourcesResource):
    """One build for all timeframes: exactly ``BarEngine(rules).build(ticks, timeframes)``,
    or (incremental) the bars the ticks landed since the last build touch.

    Rolling the coarser timeframes up from stored 1m bars is not exact for rule sets where
    a tick may count in volume but set no price (lean-equity): a minute holding only such
    ticks has no 1m bar, yet its volume belongs to the 5m/15m/1h/1d bars. The engine
    decides when a roll-up is exact; an incremental build keeps such minutes' volume as
    stored volume-only rows to roll the 1d bar up exactly (``core.incremental``).
    """
    _, bar_repo, _ = store_repos(store)
    parts = partitions_of(context)
    per_tf: dict[str, list[dict]] = {tf: [] for tf in BAR_TIMEFRAMES}
    for part in parts:
        rule_set = rules_name(drop, sources, part)
        prepared = take_prepared(context.run_id, store.get(), part, rule_set,
                                 config.incremental, BAR_TIMEFRAMES)
        built = build_bars(store.get(), part, rule_set, config.incremental, BAR_TIMEFRAMES,
                           prepared=prepared)
        read, written = built.input, built.bars
        context.log.info(f"{part.key}: {read.plan.describe()}; {len(read.ticks)} ticks read, "
                         f"{len(written)} bars written")
        lag = {} if read.landings.landed_ns is None else {
            "oldest_landing_age_s": round((time.time_ns() - read.landings.landed_ns) / 1e9, 3)}
        # a full build wrote the whole partition; otherwise read what is stored now
        stored = written if isinstance(read.plan, Full) else bar_repo.read_partition(part)
        tf_col = stored["timeframe"].astype(str).to_numpy()
        written_tf = written["timeframe"].astype(str).value_counts()
        for tf in BAR_TIMEFRAMES:
            sub = stored[tf_col == tf].reset_index(drop=True)
            per_tf[tf].append({**bar_metadata(sub, part, tf, rule_set),
                               "recompute": read.plan.describe(), **lag,
                               "bars_written": int(written_tf.get(tf, 0))})
    return tuple(dg.MaterializeResult(asset_key=BAR_ASSETS[tf],
                                      metadata=_result(parts, per_tf[tf]).metadata)
                 for tf in BAR_TIMEFRAMES)




def load_reference(drop: FileDropResource, part: Part) -> tuple[pd.DataFrame | None, list[Path]]:
    """The vendor's bars for the partition from the drop's LEAN files (None: no reference)."""
    files = drop.reference_files(part.date, part.symbol)
    if not files:
        return None, []
    frames = [read_lean_bars(f, start=part.date, end=part.date) for f in files]
    ref = pd.concat(frames, ignore_index=True)
    ts = ref["ts"].to_numpy("int64")
    ref = ref[(ref["symbol"] == part.symbol) & (ts >= part.start_ns) & (ts < part.end_ns)]
    return ref.reset_index(drop=True), files


@dg.asset(
    group_name="reference",
    kinds={"pandas", "csv"},
    description="The vendor's own bars for the partition (LEAN minute/second/daily files in "
    "the drop), kept as a canonical CSV under $PHASE1_EXPORT_DIR/_reference for the parity "
    "checks. A partition without vendor bars has no reference (not a failure).",
    **COMMON,
)
@user_errors
def reference_bars(context: dg.AssetExecutionContext, drop: FileDropResource,
                   sources: SourcesResource, settings: PipelineSettings,
                   alpaca: AlpacaResource, yfinance: YFinanceResource) -> dg.MaterializeResult:
    parts = partitions_of(context)
    out = []
    for part in parts:
        target = settings.reference_file(part.date, part.symbol)
        source = sources.reference_source(part.symbol)
        if source == "none":
            ref, files = None, []
        elif source == "drop":
            ref, files = load_reference(drop, part)
        elif source in ("alpaca", "yfinance"):
            require_live(settings, f"reference source {source} for {part.symbol}")
            conn = (alpaca if source == "alpaca" else yfinance).connector()
            start = pd.Timestamp(part.start_ns, tz="UTC")
            end = pd.Timestamp(part.end_ns, tz="UTC")
            frames = [conn.get_bars(part.symbol, tf, start, end) for tf in ("1m", "1d")]
            ref = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(
                len(f) for f in frames) else None
            files = [f"{source}: {part.symbol} 1m, 1d bars"]
        else:
            raise dg.Failure(f"unknown reference source {source!r} for {part.symbol}: use "
                             "drop, alpaca, yfinance or none")
        if ref is None:
            target.unlink(missing_ok=True)
            out.append({"partition": part.key, "reference": "none",
                        "note": f"no vendor bars for {part.key} (source {source}): the parity "
                                "check passes without comparing"})
            continue
        digest = CanonicalExporter(ref).write(target)
        counts = ref["timeframe"].value_counts()
        out.append({
            "partition": part.key,
            "reference": source,
            "files": "\n".join(str(f) for f in files),
            "bars": int(len(ref)),
            "bars_by_timeframe": dg.MetadataValue.json({str(k): int(v)
                                                        for k, v in counts.items()}),
            "time_range": time_range(ref["ts"].to_numpy("int64")),
            "path": dg.MetadataValue.path(str(target)),
            "hash": digest,
            "preview": bars_preview_md(ref),
        })
    return _result(parts, out)


def read_reference(settings: PipelineSettings, part: Part) -> pd.DataFrame | None:
    path = settings.reference_file(part.date, part.symbol)
    return read_canonical_csv(path) if path.is_file() else None


@dg.asset(
    group_name="export",
    kinds={"csv"},
    deps=list(BAR_ASSETS.values()),
    description="The canonical bar CSV of the partition (every timeframe in one file) at "
    "$PHASE1_EXPORT_DIR/<date>/<SYMBOL>.csv, read back from the store; sha256 in metadata. "
    "Blocked by failing parity or data-quality checks.",
    **COMMON,
)
@user_errors
def canonical_export(context: dg.AssetExecutionContext, store: StoreResource,
                     drop: FileDropResource, sources: SourcesResource,
                     settings: PipelineSettings) -> dg.MaterializeResult:
    _, bar_repo, _ = store_repos(store)
    parts = partitions_of(context)
    out = []
    for part in parts:
        bars = bar_repo.read_partition(part)
        path = settings.export_file(part.date, part.symbol)
        digest = CanonicalExporter(bars).write(path)
        rule_set = rules_name(drop, sources, part)
        counts = {tf: int(n) for tf, n in bars["timeframe"].value_counts().items()}
        counts = {tf: counts[tf] for tf in TIMEFRAMES if tf in counts}
        sidecar = {"partition": part.key, "hash": digest, "rule_set": rule_set,
                   "rule_set_description": get_rules(rule_set).describe(),
                   "bars_by_timeframe": counts}
        Path(str(path) + ".meta.json").write_text(json.dumps(sidecar, indent=2) + "\n")
        chart_tf = "5m" if "5m" in counts else next(iter(counts), "1m")
        out.append({
            "partition": part.key,
            "path": dg.MetadataValue.path(str(path)),
            "hash": digest,
            "rows": int(len(bars)),
            "bars_by_timeframe": dg.MetadataValue.json(counts),
            "time_range": time_range(bars["ts"].to_numpy("int64")),
            "rule_set": rule_set,
            "preview": bars_preview_md(bars),
            "chart": bars_chart_md(bars[bars["timeframe"] == chart_tf],
                                   f"{part.symbol} {chart_tf} bars, {part.date}"),
        })
        context.log.info(f"{part.key}: exported {len(bars)} bars to {path} ({digest})")
    return _result(parts, out)


ALL_ASSETS = [raw_ticks, normalized_ticks, bars, reference_bars, canonical_export]

