"""Everything version-specific about Dagster in one place (written against dagster 1.13.27).

- Warnings of preview/beta features we use on purpose, filtered narrowly (one message each):
  ``partitions_def`` on an asset check (preview in 1.13: each partition's check result is
  recorded with its partition, so the UI shows it in the asset's partitions view and
  history instead of "-"), and ``backfill_policy`` on ``@asset`` (beta: several
  partitions per backfill run).
- The one private import: ``AssetCheckEvaluationTargetMaterializationData``. In a run over a
  partition range Dagster records an ``AssetCheckResult`` without a partition (1.13 takes
  the step's partition key, and a range has none), so the checks emit one
  ``AssetCheckEvaluation`` per partition themselves; this pointer links each evaluation to
  the materialization of its partition as Dagster does for a single partition. Not public in
  1.13 (no ``dg.`` name); revisit when upgrading.
"""

from __future__ import annotations

import warnings

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

DAGSTER_VERSION_WRITTEN_FOR = "1.13.27"

# preview in 1.13: partitioned asset checks (partitions_def equal to the asset's)
warnings.filterwarnings(
    "ignore", message=r"Specifying a partitions_def on an AssetCheckSpec is currently in preview",
    category=dg.PreviewWarning)
# beta in 1.13: several partitions per backfill run
warnings.filterwarnings(
    "ignore", message=r"Parameter `backfill_policy` of function `asset` is currently in beta",
    category=dg.BetaWarning)
warnings.filterwarnings(
    "ignore", message=r"Parameter `backfill_policy` of function `multi_asset` is currently in beta",
    category=dg.BetaWarning)


def target_materializations(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                            partitions: list[str]
                            ) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """The latest materialization of each of ``asset_key``'s ``partitions`` (what a check of
    that partition evaluated), found through the public records API in one query per
    asset; a partition never materialized is left out."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=list(partitions)),
        limit=max(1000, 4 * len(partitions)),  # newest first
    ).records
    out: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}
    for rec in records:
        key = rec.partition_key
        if key is not None and key not in out:
            out[key] = AssetCheckEvaluationTargetMaterializationData(
                storage_id=rec.storage_id, run_id=rec.run_id, timestamp=rec.timestamp)
    return out
