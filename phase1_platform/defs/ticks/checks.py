"""The check of the ticks: quarantined rows / rows received stays under a threshold.

Partitioned like its asset (Dagster 1.13 ``partitions_def`` on ``@asset_check``), so each
partition's result is recorded with its partition (the UI's partitions view and history).
"""

import dagster as dg

from ...core.quality import rejected_ratio
from ...storage import QuarantineRepository, TickRepository
from .. import compat  # noqa: F401  (filters the partitioned-check preview warning)
from ..boundary import check_outcome, partitions_of, user_errors
from ..keys import NORMALIZED_TICKS, REJECTED_RATIO_CHECK_KEY
from ..partitions import partitions_def
from ..resources import PipelineSettings, StoreResource


def rejected_ratio_of(store, part, threshold: float) -> tuple[bool, dict]:
    quarantined = QuarantineRepository(store).read(part.key)
    accepted = TickRepository(store).count_canonical(part)
    r = rejected_ratio(accepted + len(quarantined), len(quarantined), threshold)
    reasons = quarantined["reason"].value_counts()
    return r.passed, {
        "partition": part.key,
        "rows": r.rows_in,
        "rejected": r.rejected,
        "rejected_ratio": float(round(r.ratio, 6)),
        "threshold": float(r.threshold),
        "rejected_by_reason": dg.MetadataValue.json({str(k): int(v) for k, v in reasons.items()}),
    }


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
    results = [rejected_ratio_of(store.get(), p, settings.max_rejected_ratio) for p in parts]
    yield from check_outcome(context, NORMALIZED_TICKS, REJECTED_RATIO_CHECK_KEY.name, parts,
                             results)
