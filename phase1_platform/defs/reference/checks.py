"""The parity checks: each bar timeframe against the vendor's bars (``reference_bars``).

One check per timeframe on its ``bars_<tf>`` asset, blocking, partitioned like the bars (each
partition's verdict recorded with its partition). The judging is ``app.parity``: the
comparator categorizes every differing bar by the vendor convention that explains it; a
vendor places some prints in other bars than their time says (lean-equity matches 99.8%
of LEAN's SPY minutes of 2013-10-07 exactly, none unexplained), so a partition passes
when the unexplained share stays under ``settings.max_unexplained_pct`` and, with at least
``settings.min_bars_for_match_pct`` bars compared, the exact-match share reaches
``settings.min_parity_match_pct``. A partition without vendor bars passes without comparing
and says so. A corrupted reference or corrupted bars show up as unexplained differences.
Each verdict is also kept in the store (``judge_and_record_partition``) for the read API.
"""

import dagster as dg

from ...app.parity import ParityVerdict, judge_and_record_partition, read_reference_csv
from ...app.run_build import take_built
from .. import compat  # noqa: F401  (filters the partitioned-check preview warning)
from ..boundary import check_outcome, partitions_of, rule_set_of, run_id, user_errors
from ..keys import BAR_ASSETS, BAR_TIMEFRAMES, PARITY_CHECK_KEYS, REFERENCE_BARS
from ..partitions import partitions_def
from ..resources import PipelineSettings, SourcesResource, StoreResource


def verdict_metadata(verdict: ParityVerdict) -> dict:
    """The check's metadata for one partition's verdict."""
    if verdict.report is None:
        return {"partition": verdict.partition.key, "compared": False, "reference": verdict.note}
    report, t = verdict.report, verdict.thresholds
    return {
        "partition": verdict.partition.key,
        "compared": True,
        "rule_set": verdict.rule_set,
        "match_pct": float(round(report.match_pct, 4)),
        "required_match_pct": float(t.min_match_pct) if verdict.match_pct_judged
        else "not judged (fewer than settings.min_bars_for_match_pct bars)",
        "unexplained_bars": int(verdict.unexplained_bars),
        "unexplained_pct": float(round(verdict.unexplained_pct, 4)),
        "allowed_unexplained_pct": float(t.max_unexplained_pct),
        "is_exact_parity": bool(report.is_parity),
        "bars_compared": int(report.compared),
        "bars_matched": int(report.matched),
        "missing_in_generated": int(len(report.missing_in_generated)),
        "missing_in_reference": int(len(report.missing_in_reference)),
        "mismatched_by_field": dg.MetadataValue.json(
            {k: int(n) for k, n in report.field_mismatched.items()}),
        "mismatched_by_category": dg.MetadataValue.json(
            {k: int(n) for k, n in report.category_counts.items()}),
        "worst_rows": dg.MetadataValue.json(verdict.worst_rows),
        "report": dg.MetadataValue.md(f"```\n{report.to_text(max_rows=10)}\n```"),
    }


def _spec(check_key: dg.AssetCheckKey, timeframe: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        check_key.name,
        asset=BAR_ASSETS[timeframe],
        blocking=True,
        additional_deps=[REFERENCE_BARS],
        partitions_def=partitions_def,
        description=f"bars_{timeframe} against the vendor's {timeframe} bars (reference_bars); "
        "passes without comparing when the partition has no reference.",
    )


PARITY_SPECS = [_spec(key, tf) for key, tf in zip(PARITY_CHECK_KEYS, BAR_TIMEFRAMES,
                                                  strict=True)]


@dg.multi_asset_check(
    name="parity",
    specs=PARITY_SPECS,
    can_subset=True,
    description="Every bar timeframe against the vendor's bars (reference_bars), one step "
    "for all timeframes and partitions of the run: each partition's reference read once.",
)
@user_errors
def parity_checks(context: dg.AssetCheckExecutionContext, store: StoreResource,
                  sources: SourcesResource, settings: PipelineSettings):
    parts = partitions_of(context)
    selected = set(context.selected_asset_check_keys)
    keys = [(k, tf) for k, tf in zip(PARITY_CHECK_KEYS, BAR_TIMEFRAMES, strict=True)
            if k in selected]
    results: dict[str, list[tuple[bool, dict]]] = {tf: [] for _, tf in keys}
    for part in parts:
        reference = read_reference_csv(settings.reference_file(part.date, part.symbol))
        ticks, stored, digests = take_built(run_id(context), store.get(), part)  # None: read
        tf_col = None if stored is None else stored["timeframe"].astype(str).to_numpy(object)
        for _, tf in keys:
            bars = None if stored is None else stored[tf_col == tf].reset_index(drop=True)
            verdict = judge_and_record_partition(store.get(), part, tf, reference,
                                                 rule_set_of(sources, part),
                                                 settings.parity_thresholds(), ticks, bars,
                                                 digests.get(tf))
            results[tf].append((verdict.passed, verdict_metadata(verdict)))
    for key, tf in keys:
        yield from check_outcome(context, key, parts, results[tf])
