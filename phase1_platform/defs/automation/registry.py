"""``symbol_registry_sensor``: the store's symbols become ``symbols`` dynamic partitions.

Every minute, every valid symbol found in the store's landing table or watermarks
(``app.ingestion_state.landed_symbols``) that is not registered yet is added (new
symbols only). An invalid symbol (DESIGN section 3) is never registered: it
is skipped and named in the sensor's log. A store that is missing or not migrated skips
the tick with one line naming the fix; the sensor never migrates it.
"""

from __future__ import annotations

import dagster as dg

from ...app.ingestion_state import landed_symbols
from ...core.errors import UserError, one_line
from ...core.partition import is_valid_symbol
from ..partitions import SYMBOLS_PARTITION
from ..resources import StoreResource


@dg.sensor(
    name="symbol_registry_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers every valid symbol found in the store's landing table or "
    "watermarks as a 'symbols' dynamic partition.",
)
def symbol_registry_sensor(context: dg.SensorEvaluationContext, store: StoreResource):
    try:
        found = landed_symbols(store.database_url or None)
    except UserError as exc:
        return dg.SkipReason(f"store not readable: {one_line(exc)}")
    invalid = sorted(s for s in found if not is_valid_symbol(s))
    if invalid:
        context.log.warning(f"not registering invalid symbol(s) {', '.join(map(repr, invalid))}"
                            " found in the store (expected DESIGN section 3 symbols)")
    registered = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITION))
    new = sorted(s for s in found if is_valid_symbol(s) and s not in registered)
    if not new:
        return dg.SkipReason(f"no new symbol ({len(registered)} registered"
                             + (f", {len(invalid)} invalid skipped)" if invalid else ")"))
    context.log.info(f"registering symbols: {', '.join(new)}")
    return dg.SensorResult(
        dynamic_partitions_requests=[dg.AddDynamicPartitionsRequest(SYMBOLS_PARTITION, new)])


ALL_SENSORS = [symbol_registry_sensor]
