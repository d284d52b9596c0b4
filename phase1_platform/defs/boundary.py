"""The boundary between Dagster and the use cases in ``app/``: partitions in, results out,
user errors turned into one line.

- ``user_errors``: a ``core.errors.UserError`` (bad file, bad partition key, missing key,
  unreachable store...) becomes ``dg.Failure`` with its one-line message and no chained
  traceback; any other exception is a bug and propagates untouched, traceback and all
  (DESIGN section 7). Works for plain and generator bodies (checks yield per partition).
  ``partitioned_asset`` declares an asset with it, partitioned and owned like the others.
- ``partitions_of``: the run's partitions as ``core.partition.Partition`` values, validated
  before any file or SQL is touched (a dynamic symbol such as ``../../x`` added through the
  UI or API is refused here with one line).
- ``materialize_result`` / ``check_outcome``: one partition's metadata, or, for a run over
  several partitions (a backfill range), totals plus each partition's metadata; checks
  record one evaluation per partition, each with its partition.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from ..core.errors import ConfigError, UserError, one_line
from ..core.partition import Partition
from . import compat
from .keys import OWNERS
from .partitions import PARTITIONED, to_partition

NO_PARTITION = ("this run has no partition: choose one, e.g. "
                "--partition '2013-10-07|SPY' (phase1 symbols add SPY first)")


class RecomputeConfig(dg.Config):
    """Run config of normalized_ticks and bars (the live_bars job sets it)."""

    incremental: bool = Field(
        default=False,
        description="Read only the ticks landed since the partition's last build and "
        "rewrite only the bars they touch (live runs); false: recompute the whole partition.",
    )


def _failure(exc: UserError) -> dg.Failure:
    return dg.Failure(description=one_line(exc), allow_retries=False)


def user_errors(fn):
    """Turn ``UserError`` (only) into a one-line ``dg.Failure``."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except UserError as exc:
                raise _failure(exc) from None

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise _failure(exc) from None

    return wrapper


def partitioned_asset(**asset_args):
    """``dg.asset(**asset_args)`` as every partitioned asset of the graph is declared:
    partitioned and backfilled alike (``PARTITIONED``), owned by ``OWNERS``, its user
    errors turned into one line (``user_errors``)."""
    def decorate(fn):
        return dg.asset(**PARTITIONED, owners=OWNERS, **asset_args)(user_errors(fn))

    return decorate


def partitions_of(context) -> list[Partition]:
    """The run's partitions (one normally, several in a backfill run), each parsed and
    validated (``InvalidPartitionError``, a ``UserError``, for a bad key)."""
    if not context.has_partition_key and not context.has_partition_key_range:
        raise ConfigError(NO_PARTITION)
    if not context.has_partition_key_range:  # one key: no range to expand (each expansion
        return [to_partition(context.partition_key)]  # queries the symbols' partitions)
    return [to_partition(k) for k in context.partition_keys]


def log_partitions(context, lines: list[str]) -> None:
    """One log event for the run's partitions (a line each): Dagster stores every log
    message as an event, so a range run logs once per step, not once per partition."""
    if lines:
        context.log.info("\n".join(lines))


def run_id(context) -> str:
    return context.run.run_id


def _scalars(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if isinstance(v, (int, float, str, bool))}


def materialize_result(parts: list[Partition], per_part: list[dict],
                       asset_key: dg.AssetKey | None = None) -> dg.MaterializeResult:
    """One partition: its metadata; several: totals of the integer entries, the number of
    partitions and each partition's scalar metadata under ``by_partition``. An entry given
    as a function (a preview table, a chart) is rendered only for one partition: a range
    run's metadata keeps scalars alone, so it is never computed there."""
    if len(per_part) == 1:
        meta = {k: v() if callable(v) else v for k, v in per_part[0].items()}
        return dg.MaterializeResult(asset_key=asset_key, metadata=meta)
    merged: dict[str, object] = {"partitions": len(parts)}
    for key in per_part[0]:
        vals = [m.get(key) for m in per_part]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            merged[key] = int(sum(vals))
    merged["by_partition"] = dg.MetadataValue.json(
        {p.key: _scalars(m) for p, m in zip(parts, per_part, strict=True)})
    return dg.MaterializeResult(asset_key=asset_key, metadata=merged)


def check_outcome(context, check_key: dg.AssetCheckKey, parts: list[Partition],
                  results: list[tuple[bool, dict]]) -> Iterator:
    """What a partitioned check yields for its partitions (blocking, severity ERROR), from
    its own check op or from the asset step that evaluates it (``check_specs``).

    One partition: an ``AssetCheckResult`` (Dagster records it with the run's partition).
    Several (a range run): one ``AssetCheckEvaluation`` per partition, each with its
    partition and its materialization, then the check's output, since 1.13 would record a
    single result of a range run without a partition.
    """
    asset_key = check_key.asset_key
    if len(parts) == 1:
        passed, meta = results[0]
        yield dg.AssetCheckResult(asset_key=asset_key, check_name=check_key.name,
                                  passed=passed, metadata=meta,
                                  severity=dg.AssetCheckSeverity.ERROR)
        return
    targets = compat.target_materializations(context.instance, asset_key,
                                             [p.key for p in parts])
    for part, (passed, meta) in zip(parts, results, strict=True):
        yield dg.AssetCheckEvaluation(
            asset_key=asset_key, check_name=check_key.name, passed=passed, metadata=meta,
            severity=dg.AssetCheckSeverity.ERROR, blocking=True, partition=part.key,
            target_materialization_data=targets.get(part.key),
        )
    spec = dg.AssetCheckSpec(check_key.name, asset=asset_key)  # names the check's output
    yield dg.Output(None, output_name=spec.get_python_identifier())


def require_live(mode: str, what: str) -> None:
    """Refuse a network source outside live mode (one line naming the fix)."""
    if mode != "live":
        raise ConfigError(f"{what} needs the network: run with INGESTION_MODE=live "
                          f"(settings.mode is {mode!r}); mock mode uses the file drop")


# ------------------------------------------------- resources -> the app's per-partition values
# The one place the assets and checks ask the drop (``app.drop``) and the per-symbol setting
# (``app.sources``) about a partition, so each concern asks the same way.
def tick_files(drop, part: Partition) -> list:
    return drop.tick_files(part)


def reference_files(drop, part: Partition) -> list:
    return drop.reference_files(part)


def rule_set_of(sources, part: Partition) -> str:
    """The rule set that builds (and judges) the partition's bars: the symbol's setting."""
    return sources.for_symbol(part.symbol).rule_set


def tick_source_of(sources, part: Partition) -> str:
    return sources.for_symbol(part.symbol).tick_source


def reference_source_of(sources, part: Partition) -> str:
    return sources.for_symbol(part.symbol).reference_source
