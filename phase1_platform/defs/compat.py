"""Everything version-specific about Dagster in one place (written against dagster 1.13.27).

- Warnings of preview/beta features we use on purpose, filtered narrowly (one message each):
  ``partitions_def`` on an asset check (preview in 1.13: each partition's check result is
  recorded with its partition, so the UI shows it in the asset's partitions view and
  history instead of "-"), and ``backfill_policy`` on ``@asset`` (beta: several
  partitions per backfill run).
- Two private imports. ``AssetCheckEvaluationTargetMaterializationData``: in a run over a
  partition range Dagster records an ``AssetCheckResult`` without a partition (1.13 takes
  the step's partition key, and a range has none), so the checks emit one
  ``AssetCheckEvaluation`` per partition themselves; this pointer links each evaluation to
  the materialization of its partition as Dagster does for a single partition. Not public in
  1.13 (no ``dg.`` name); revisit when upgrading. ``DefinitionsLoadContext``: one context
  for the whole defs-folder load (:func:`load_defs_folder` says why).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
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


def load_defs_folder(path_within_project: Path) -> dg.Definitions:
    """What ``dg.load_from_defs_folder`` loads (every module of the project's ``defs/``
    folder, and the component tree ``dg`` and the UI read), without two costs of 1.13 that
    a single-partition materialize pays on every definitions load (profiled, 4.4 s run):

    - the plugin component-type catalog: ``load_from_defs_folder`` builds the JSON schema
      and a sample YAML of every installed component type and attaches it as definitions
      metadata (0.16 s; nothing in the open-source webserver or CLI reads it, and this
      project defines no component types). Building the tree's defs folder itself
      (``ComponentTree.build_defs`` of its ``defs_module_path``) leaves it out; the tree
      is attached as ``load_from_defs_folder`` attaches it;
    - the definitions-load context: with none set (``dagster asset materialize -m``,
      ``dg``, tests), 1.13 makes a new ``DefinitionsLoadContext`` for every module of the
      folder and each reads the instance's defs-state pointer from its run storage (76
      queries for our 38 modules, 0.13 s). One context scoped to the load reads it once;
      it is the same initialization context Dagster would make each time. Under a
      Dagster-managed load (a code server, a run worker) the context is already set and
      used as is.

    The folder holds plain Python modules only (no state-backed or app-managed
    components, which only the project root level would add).
    """
    if DefinitionsLoadContext.is_set():
        return _load_tree(path_within_project)
    with DefinitionsLoadContext.scoped(DefinitionsLoadContext(DefinitionsLoadType.INITIALIZATION)):
        return _load_tree(path_within_project)


def _load_tree(path_within_project: Path) -> dg.Definitions:
    with warnings.catch_warnings():  # load_from_defs_folder silences these internal ones too
        warnings.filterwarnings("ignore", category=dg.PreviewWarning,
                                message=r"Function `load_definitions_from_modules?` is currently")
        tree = dg.ComponentTree.for_project(path_within_project=path_within_project)
        return dg.Definitions.merge(tree.build_defs(tree.defs_module_path),
                                    dg.Definitions(component_tree=tree))
