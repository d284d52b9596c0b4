"""The check of the ticks: quarantined rows / rows received stays under a threshold.

Partitioned like its asset (Dagster 1.13 ``partitions_def`` on ``@asset_check``), so each
partition's result is recorded with its partition (the UI's partitions view and history).
The judging, and the verdict kept in the store, is ``app.quality.judge_rejected_ratio``.
"""

import dagster as dg

from ...app.quality import RejectedRatioVerdict, judge_rejected_ratio
from .. import compat  # noqa: F401  (filters the partitioned-check preview warning)
from ..boundary import check_outcome, partitions_of, user_errors
from ..keys import NORMALIZED_TICKS, REJECTED_RATIO_CHECK_KEY
from ..metadata import json_entries
from ..partitions import partitions_def
from ..resources import PipelineSettings, StoreResource


def rejected_ratio_metadata(verdict: RejectedRatioVerdict) -> dict:
    """The check's metadata: the verdict's summary without its pass flag (the result's)."""
    return json_entries({k: v for k, v in verdict.summary().items() if k != "passed"})


@dg.asset_check(
    asset=NORMALIZED_TICKS,
    name=REJECTED_RATIO_CHECK_KEY.name,
    blocking=True,
    partitions_def=partitions_def,
    description="Quarantined ticks / rows received for the partition stays under "
    "settings.max_rejected_ratio.",
)
@user_errors
def rejected_ratio_check(context: dg.AssetCheckExecutionContext, store: StoreResource,
                         settings: PipelineSettings):
    parts = partitions_of(context)
    verdicts = [judge_rejected_ratio(store.get(), p, settings.max_rejected_ratio) for p in parts]
    yield from check_outcome(context, NORMALIZED_TICKS, REJECTED_RATIO_CHECK_KEY.name, parts,
                             [(v.passed, rejected_ratio_metadata(v)) for v in verdicts])
