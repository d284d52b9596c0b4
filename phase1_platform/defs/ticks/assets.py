"""raw_ticks -> normalized_ticks.

- ``raw_ticks``: lands the partition's tick batches (the file drop's files, or a vendor's
  trades in live mode) through ``app.land.land_ticks``: new ticks stored by the tick
  identity, bad rows and conflicting duplicates quarantined with their reason. A
  partition's raw ticks are what landed for its symbol and trading date, whichever way.
  The ticks it landed are handed to the next step in process (``app.run_build``) when they
  are all the partition holds, so they are not read back.
- ``normalized_ticks``: the canonical tick set of each partition of the run (all sources
  merged, one row per trade id, canonical order), prepared for every partition at once by
  ``app.run_build.prepare_builds`` (one read, one normalizer pass) and handed to the bars
  step of the same run, in full or incrementally; rows rejected while merging the sources
  join the partition's quarantine (``app.land.keep_rejects``), which its check
  ``rejected_ratio`` (evaluated in the same step) judges.
"""

import hashlib

import dagster as dg
import pandas as pd

from ...app.build import Full
from ...app.land import accepted_ticks, keep_rejects, land_ticks
from ...app.quality import judge_rejected_ratio
from ...app.run_build import hand_over_landed, hand_over_prepared, prepare_builds
from ...core.errors import ConfigError, InputError
from ...core.normalizer import TickNormalizer
from ...core.partition import Partition
from ...core.schema import ts_ns
from ...readers import read_ticks
from ..boundary import (
    RecomputeConfig,
    check_outcome,
    log_partitions,
    materialize_result,
    partitioned_asset,
    partitions_of,
    require_live,
    rule_set_of,
    run_id,
    tick_files,
    tick_source_of,
)
from ..keys import NORMALIZED_TICKS, RAW_TICKS, REJECTED_RATIO_CHECK_KEY
from ..metadata import counts_table_md, ticks_preview_md, time_range
from ..resources import (
    AlpacaResource,
    FileDropResource,
    PipelineSettings,
    SourcesResource,
    StoreResource,
)
from .checks import REJECTED_RATIO_SPEC, rejected_ratio_metadata


def tick_batches(source: str, part: Partition, drop: FileDropResource, mode: str,
                 alpaca: AlpacaResource) -> list[tuple[str, object]]:
    """(source name, loader of a raw tick frame) for each batch the partition lands."""
    if source == "drop":
        # the readers name each row's source (file name, zip member): the landing identity
        return [(str(p), lambda p=p: read_ticks(p)) for p in tick_files(drop, part)]
    if source == "alpaca":
        require_live(mode, f"tick source alpaca for {part.symbol}")
        conn = alpaca.connector()
        start = pd.Timestamp(part.start_ns, tz="UTC")
        end = pd.Timestamp(part.end_ns, tz="UTC")
        return [(conn.source, lambda: conn.fetch_trades(part.symbol, start, end))]
    raise ConfigError(f"tick source {source!r} of {part.symbol} has no batch history for "
                      "Dagster runs: use drop or alpaca (live-only sources land through "
                      "`phase1 ingest`)")


def ticks_fingerprint(ticks: pd.DataFrame) -> str:
    """sha256 of the canonical ticks' values: equal fingerprints, equal tick sets."""
    if len(ticks) == 0:
        return "sha256:" + hashlib.sha256(b"").hexdigest()
    cols = ["symbol", "price", "size", "exchange", "conditions", "trade_id", "sequence"]
    h = pd.util.hash_pandas_object(ticks[cols], index=False).to_numpy()
    digest = hashlib.sha256(ts_ns(ticks["ts"]).tobytes() + h.tobytes())
    return "sha256:" + digest.hexdigest()


def land_partition(context, part: Partition, store, drop, sources, settings, alpaca
                   ) -> tuple[dict, str]:
    """Land the partition's batches; (its metadata, its log line)."""
    source = tick_source_of(sources, part)
    batches = tick_batches(source, part, drop, settings.mode, alpaca)
    files = [name for name, _ in batches]
    rows_in = accepted = new = already = conflicting = 0
    reasons: dict[str, int] = {}
    normalizer = TickNormalizer(symbols=[part.symbol], window=part.window)
    stored_before = accepted_ticks(store.get(), part) if batches else None
    frames = []
    for name, load in batches:
        result = normalizer.normalize(load(), source=name)
        landed = land_ticks(store.get(), result, part.key)
        frames.append(result.ticks)
        rows_in += landed.rows_read
        accepted += landed.accepted
        new += landed.new
        already += landed.already
        conflicting += landed.conflicting
        for reason, n in landed.quarantined_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
    if accepted == 0 and accepted_ticks(store.get(), part) == 0:
        found = f"{len(files)} file(s) without a valid tick of that date" if files else "no file"
        raise InputError(
            f"no ticks for {part.symbol} on {part.date} ({found}): drop a tick file at "
            f"{drop.drop_path() / part.date / (part.symbol + '.csv')} or a LEAN tick zip "
            f"(searched {drop.describe()})")
    if stored_before == 0 and new == accepted:  # the partition's ticks are these: hand over
        hand_over_landed(run_id(context), store.get(), part, frames[0] if len(frames) == 1
                         else normalizer.normalize(pd.concat(frames, ignore_index=True).rename(
                             columns={"ts": "timestamp"})).ticks)
    log = (f"{part.key}: {len(files)} file(s), {rows_in} rows, {new} new, "
           f"{sum(reasons.values())} quarantined")
    return {
        "partition": part.key,
        "source": source,
        "files": "\n".join(str(p) for p in files) or "(none: ticks already landed)",
        "rows_read": rows_in,
        "ticks_accepted": accepted,
        "ticks_new": new,
        "ticks_already_landed": already,
        "conflicting_duplicates": conflicting,
        "rejected": sum(reasons.values()),
        "rejected_by_reason": dg.MetadataValue.json(reasons),
        "rejected_table": counts_table_md(reasons),
        "mode": settings.mode,
    }, log


@partitioned_asset(
    key=RAW_TICKS,
    group_name="ingest",
    kinds={"python", "sql"},
    description="Tick files of the partition (file drop: <drop>/<date>/<SYMBOL>.csv or LEAN "
    "tick zips) landed into the store's landing table; bad rows quarantined with a reason.",
)
def raw_ticks(context: dg.AssetExecutionContext, store: StoreResource, drop: FileDropResource,
              sources: SourcesResource, settings: PipelineSettings,
              alpaca: AlpacaResource) -> dg.MaterializeResult:
    parts = partitions_of(context)
    landed = [land_partition(context, p, store, drop, sources, settings, alpaca) for p in parts]
    log_partitions(context, [line for _, line in landed])
    return materialize_result(parts, [meta for meta, _ in landed])


@partitioned_asset(
    key=NORMALIZED_TICKS,
    group_name="ingest",
    kinds={"pandas"},
    deps=[RAW_TICKS],
    check_specs=[REJECTED_RATIO_SPEC],
    description="The partition's canonical ticks: every source landed for the symbol and "
    "trading date, merged, one row per trade_id, in canonical order (DESIGN sections 3, 7).",
)
def normalized_ticks(context: dg.AssetExecutionContext, config: RecomputeConfig,
                     store: StoreResource, sources: SourcesResource,
                     settings: PipelineSettings):
    parts = partitions_of(context)
    rule_sets = {p: rule_set_of(sources, p) for p in parts}
    timeframes = settings.bar_timeframes()
    inputs = prepare_builds(store.get(), parts, rule_sets, config.incremental, timeframes,
                            scope=run_id(context))
    hand_over_prepared(run_id(context), store.get(), inputs, rule_sets, config.incremental,
                       timeframes)
    out, counts = [], []
    for read in inputs:
        part, res = read.partition, read.normalized
        full = isinstance(read.plan, Full)
        keep_rejects(store.get(), part, res.quarantine)  # duplicates across sources
        ticks = res.ticks
        per_source = ticks["source"].astype(str).value_counts().sort_index()
        stored = read.stored_ticks  # the store's count, when reading counted it
        if stored is None and not full:
            stored = accepted_ticks(store.get(), part)
        counts.append(stored)
        meta = {
            "partition": part.key,
            "recompute": read.plan.describe(),
            "ticks": int(len(ticks)) if full else stored,
            "ticks_read": int(len(ticks)),
            "landings_pending": len(read.landings),
            "time_range": time_range(ts_ns(ticks["ts"])),
            "duplicates_removed": int(res.rejected),
            "sources": dg.MetadataValue.json({str(k): int(v) for k, v in per_source.items()}),
            "preview": lambda ticks=ticks: ticks_preview_md(ticks),
        }
        if full:  # the whole tick set was read
            meta["fingerprint"] = ticks_fingerprint(ticks)
        out.append(meta)
    yield materialize_result(parts, out)
    verdicts = [judge_rejected_ratio(store.get(), p, settings.max_rejected_ratio, n)
                for p, n in zip(parts, counts, strict=True)]
    yield from check_outcome(context, REJECTED_RATIO_CHECK_KEY, parts,
                             [(v.passed, rejected_ratio_metadata(v)) for v in verdicts])
