"""Asset checks: parity against the vendor's bars, data quality with great-expectations.

All checks are blocking: a failed check (severity ERROR) stops the assets downstream of
the checked one in the same run, so a failing parity or quality check blocks
``canonical_export``. A partition without vendor bars is not a parity failure: the check
passes and says so in its metadata.

Parity verdict: the comparator categorizes every differing bar by the vendor convention
that explains it (a condition the vendor treats differently, auction prints, a boundary
print...). A vendor's rules cannot all be told from trade conditions (lean-equity matches
87.7% of LEAN's SPY minutes of 2013-10-07 exactly, with 0.1% unexplained), so the check
passes when the unexplained share stays under ``settings.max_unexplained_pct`` and, with
at least ``settings.min_bars_for_match_pct`` bars compared, the exact-match share reaches
``settings.min_parity_match_pct``. A corrupted reference or corrupted bars show up as
unexplained differences.

great-expectations 1.x runs in-process with an ephemeral context (dagster-ge does not
support GE 1.x); it is imported lazily (its import takes seconds) and its progress bars
are off. The expectations validate the same derived columns the pure rules in
``core.quality`` compute; both verdicts are in the metadata.
"""

import threading

import dagster as dg
import pandas as pd

from ..core.export import to_canonical
from ..core.parity import UNEXPLAINED, BarComparator
from ..core.quality import evaluate_bars, quality_frame, rejected_ratio
from ..core.timeframes import TIMEFRAMES
from .assets import (
    BAR_ASSETS,
    Part,
    normalized_ticks,
    normalized_ticks_of,
    partitions_of,
    read_reference,
    reference_bars,
    rules_name,
    store_repos,
    user_errors,
)
from .resources import FileDropResource, PipelineSettings, SourcesResource, StoreResource


def _combine(parts: list[Part], results: list[tuple[bool, dict]]) -> dg.AssetCheckResult:
    if len(results) == 1:
        passed, meta = results[0]
        return dg.AssetCheckResult(passed=passed, metadata=meta,
                                   severity=dg.AssetCheckSeverity.ERROR)
    meta = {"partitions": len(parts),
            "failed_partitions": ", ".join(p.key for p, (ok, _) in zip(parts, results,
                                                                       strict=True) if not ok)
            or "none",
            "by_partition": dg.MetadataValue.json({
                p.key: {k: v for k, v in m.items() if isinstance(v, (int, float, str, bool))}
                for p, (_, m) in zip(parts, results, strict=True)})}
    return dg.AssetCheckResult(passed=all(ok for ok, _ in results), metadata=meta,
                               severity=dg.AssetCheckSeverity.ERROR)


# ------------------------------------------------------------------------------ parity
def parity_for(part: Part, timeframe: str, store: StoreResource, drop: FileDropResource,
               sources: SourcesResource, settings: PipelineSettings) -> tuple[bool, dict]:
    ref = read_reference(settings, part)
    if ref is None:
        return True, {"partition": part.key, "compared": False,
                      "reference": f"none: no vendor bars for {part.key}, nothing to compare "
                                   "(not a failure)"}
    ref = ref[ref["timeframe"] == timeframe]
    if len(ref) == 0:
        return True, {"partition": part.key, "compared": False,
                      "reference": f"the reference has no {timeframe} bars (not a failure)"}
    _, bar_repo, _ = store_repos(store)
    gen = bar_repo.read(part.symbol, [timeframe], part.start_ns, part.end_ns)
    rule_set = rules_name(drop, sources, part)
    ticks = normalized_ticks_of(store, part).ticks
    report = BarComparator(price_tolerance=settings.price_tolerance,
                           volume_tolerance=settings.volume_tolerance).compare(
        to_canonical(gen), ref, ticks=ticks, rules=rule_set)
    unexplained = sum(
        1 for cats in (report.mismatches["categories"] if len(report.mismatches) else [])
        if any(str(c).startswith(UNEXPLAINED) for c in cats)
    )
    unexplained_pct = 100.0 * unexplained / report.compared if report.compared else 0.0
    judge_pct = report.compared >= settings.min_bars_for_match_pct
    passed = unexplained_pct <= settings.max_unexplained_pct + 1e-9 and (
        not judge_pct or report.match_pct >= settings.min_parity_match_pct - 1e-9)
    d = report.to_dict()
    text = report.to_text(max_rows=10)
    meta = {
        "partition": part.key,
        "compared": True,
        "rule_set": rule_set,
        "match_pct": float(round(report.match_pct, 4)),
        "required_match_pct": float(settings.min_parity_match_pct) if judge_pct
        else "not judged (fewer than settings.min_bars_for_match_pct bars)",
        "unexplained_bars": int(unexplained),
        "unexplained_pct": float(round(unexplained_pct, 4)),
        "allowed_unexplained_pct": float(settings.max_unexplained_pct),
        "is_exact_parity": bool(report.is_parity),
        "bars_compared": int(report.compared),
        "bars_matched": int(report.matched),
        "missing_in_generated": int(len(report.missing_in_generated)),
        "missing_in_reference": int(len(report.missing_in_reference)),
        "mismatched_by_field": dg.MetadataValue.json(
            {k: int(v) for k, v in report.field_mismatched.items()}),
        "mismatched_by_category": dg.MetadataValue.json(
            {k: int(v) for k, v in report.category_counts.items()}),
        "worst_rows": dg.MetadataValue.json(d.get("largest", {})),
        "report": dg.MetadataValue.md(f"```\n{text}\n```"),
    }
    return passed, meta


def parity_check(timeframe: str) -> dg.AssetChecksDefinition:
    asset = BAR_ASSETS[timeframe]

    @dg.asset_check(
        asset=asset,
        name=f"parity_{timeframe}",
        blocking=True,
        additional_deps=[reference_bars],
        description=f"bars_{timeframe} against the vendor's {timeframe} bars (reference_bars); "
        "passes without comparing when the partition has no reference.",
    )
    @user_errors
    def _parity(context: dg.AssetCheckExecutionContext, store: StoreResource,
                drop: FileDropResource, sources: SourcesResource,
                settings: PipelineSettings) -> dg.AssetCheckResult:
        parts = partitions_of(context.op_execution_context)
        results = [parity_for(p, timeframe, store, drop, sources, settings) for p in parts]
        return _combine(parts, results)

    return _parity


# ----------------------------------------------------------------- great-expectations
class _GreatExpectations:
    """One ephemeral GE context per process, with one pandas asset and suite per name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ctx = None
        self._batches: dict[str, object] = {}
        self._suites: dict[str, object] = {}

    def _context(self):
        if self._ctx is None:
            import great_expectations as gx  # lazy: the import takes seconds
            from great_expectations.data_context.types.base import ProgressBarsConfig

            ctx = gx.get_context(mode="ephemeral")
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
            self._ctx = ctx
            self._gx = gx
        return self._ctx

    def validate(self, name: str, frame: pd.DataFrame, expectations) -> object:
        with self._lock:
            ctx = self._context()
            if name not in self._batches:
                source = ctx.data_sources.add_pandas(f"phase1_{name}")
                asset = source.add_dataframe_asset(name)
                self._batches[name] = asset.add_batch_definition_whole_dataframe("all")
                suite = self._gx.ExpectationSuite(name=f"phase1_{name}")
                for e in expectations(self._gx.expectations):
                    suite.add_expectation(e)
                self._suites[name] = ctx.suites.add(suite)
            batch = self._batches[name].get_batch(batch_parameters={"dataframe": frame})
            return batch.validate(self._suites[name])


GE = _GreatExpectations()


def bar_expectations(gxe) -> list:
    pair = gxe.ExpectColumnPairValuesAToBeGreaterThanB
    return [
        pair(column_A="high", column_B="open", or_equal=True),
        pair(column_A="high", column_B="close", or_equal=True),
        pair(column_A="open", column_B="low", or_equal=True),
        pair(column_A="close", column_B="low", or_equal=True),
        pair(column_A="high", column_B="low", or_equal=True),
        gxe.ExpectColumnValuesToBeInSet(column="prices_ok", value_set=[True]),
        gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "timeframe", "ts"]),
        gxe.ExpectColumnValuesToBeInSet(column="ts_offset_ns", value_set=[0]),
        gxe.ExpectColumnValuesToBeInSet(column="in_session", value_set=[True]),
    ]


def summarize_ge(result) -> tuple[bool, dict, list[str]]:
    """(success, per-expectation summary, broken expectations) of a GE validation result."""
    summary = {}
    broken = []
    for r in result.results:
        cfg = r.expectation_config
        kwargs = cfg.kwargs
        target = kwargs.get("column") or (
            f"{kwargs.get('column_A')}>={kwargs.get('column_B')}" if "column_A" in kwargs
            else ",".join(kwargs.get("column_list", [])))
        key = f"{cfg.type}({target})"
        info = r.exception_info or {}
        raised = bool(info.get("raised_exception")) if isinstance(info, dict) else False
        if raised:
            broken.append(f"{key}: {info.get('exception_message')}")
        summary[key] = {"success": bool(r.success),
                        "unexpected": int((r.result or {}).get("unexpected_count") or 0),
                        "raised": raised}
    return bool(result.success), summary, broken


def quality_for(part: Part, timeframe: str, store: StoreResource) -> tuple[bool, dict]:
    _, bar_repo, _ = store_repos(store)
    bars = bar_repo.read(part.symbol, [timeframe], part.start_ns, part.end_ns)
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


def quality_check(timeframe: str) -> dg.AssetChecksDefinition:
    asset = BAR_ASSETS[timeframe]
    extra = ", bars inside the session" if TIMEFRAMES[timeframe].is_session else ""

    @dg.asset_check(
        asset=asset,
        name=f"quality_{timeframe}",
        blocking=True,
        description=f"great-expectations on bars_{timeframe}: low <= open, close <= high, "
        f"volume >= 0, unique (symbol, timeframe, timestamp), timestamps aligned{extra}.",
    )
    @user_errors
    def _quality(context: dg.AssetCheckExecutionContext,
                 store: StoreResource) -> dg.AssetCheckResult:
        parts = partitions_of(context.op_execution_context)
        return _combine(parts, [quality_for(p, timeframe, store) for p in parts])

    return _quality


@dg.asset_check(
    asset=normalized_ticks,
    name="rejected_ratio",
    blocking=True,
    description="Quarantined ticks / rows received for the partition stays under "
    "settings.max_rejected_ratio.",
)
@user_errors
def rejected_ratio_check(context: dg.AssetCheckExecutionContext, store: StoreResource,
                         settings: PipelineSettings) -> dg.AssetCheckResult:
    parts = partitions_of(context.op_execution_context)
    ticks_repo, _, quarantine_repo = store_repos(store)
    results = []
    for part in parts:
        quarantined = quarantine_repo.read(part.key)
        accepted = ticks_repo.count_canonical(part)
        r = rejected_ratio(accepted + len(quarantined), len(quarantined),
                           settings.max_rejected_ratio)
        reasons = quarantined["reason"].value_counts()
        results.append((r.passed, {
            "partition": part.key,
            "rows": r.rows_in,
            "rejected": r.rejected,
            "rejected_ratio": float(round(r.ratio, 6)),
            "threshold": float(r.threshold),
            "rejected_by_reason": dg.MetadataValue.json({str(k): int(v)
                                                         for k, v in reasons.items()}),
        }))
    return _combine(parts, results)


PARITY_CHECKS = [parity_check(tf) for tf in BAR_ASSETS]
QUALITY_CHECKS = [quality_check(tf) for tf in BAR_ASSETS]
ALL_CHECKS = [*PARITY_CHECKS, *QUALITY_CHECKS, rejected_ratio_check]
