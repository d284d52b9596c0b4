"""The check of the ticks: quarantined rows / rows received stays under a threshold.

Partitioned like its asset (Dagster 1.13 ``partitions_def`` on ``@asset_check``), so each
partition's result is recorded with its partition (the UI's partitions view and history).
The judging, and the verdict kept in the store, is ``app.quality.judge_rejected_ratio``;
``normalized_ticks`` evaluates it in its own step (``check_specs``), where the partition's
quarantine is complete.
"""

import dagster as dg

from ...app.quality import RejectedRatioVerdict
from .. import compat  # noqa: F401  (filters the partitioned-check preview warning)
from ..keys import NORMALIZED_TICKS, REJECTED_RATIO_CHECK_KEY
from ..metadata import json_entries
from ..partitions import partitions_def


def rejected_ratio_metadata(verdict: RejectedRatioVerdict) -> dict:
    """The check's metadata: the verdict's summary without its pass flag (the result's)."""
    return json_entries({k: v for k, v in verdict.summary().items() if k != "passed"})


REJECTED_RATIO_SPEC = dg.AssetCheckSpec(
    REJECTED_RATIO_CHECK_KEY.name,
    asset=NORMALIZED_TICKS,
    blocking=True,
    partitions_def=partitions_def,
    description="Quarantined ticks / rows received for the partition stays under "
    "settings.max_rejected_ratio (evaluated by normalized_ticks once it has merged the "
    "partition's sources).",
)
