"""``live_ticks_sensor``: live micro-batches from the ingestion watermarks.

Every ``PHASE1_LIVE_SENSOR_INTERVAL_S`` seconds (default 15) the sensor reads the store's
watermarks (``app.ingestion_state.read_ingestion_state``): per (source, symbol) the
latest tick time the ingestion service landed. A watermark that moved since the
sensor's cursor marks its partition (``Partition.of_timestamp``: the tick's trading date
from ``core.calendar``, symbol) as touched, and the sensor requests one ``live_bars`` run
for it with run key ``live|<date>|<SYMBOL>|<watermark ns>``: the same watermark never
launches a second run, a new one launches exactly one. The cursor (JSON:
``"source|symbol" -> ns``) advances with every request. While a run of a partition is
still queued or running, the sensor requests nothing for it and keeps its cursor entry
behind, so the next tick asks again for everything landed since (micro-batches coalesce
instead of piling up behind a slow run). Symbols not yet registered are added to the
``symbols`` dynamic partitions in the same evaluation (before the run requests).

Late ticks behind the watermark do not move it, so the sensor also reads the store's
pending tick landings (``IngestionState.pending``: ticks landed whose bars are not
rebuilt yet) of the symbols streamed live (those with a watermark), within the horizon:
a partition with pending landings gets a run too, its run key ending
``|<newest landing id>``. A ``live_bars`` run recomputes incrementally: it reads only the
ticks from the earliest pending landing's hour and rewrites only the bars they touch.

A symbol that is not valid (DESIGN section 3) never becomes a partition key, a run or a
registration: it is skipped with a note in the sensor's log. A store that is missing or
not migrated skips the tick with one line naming the fix (``phase1 db upgrade``); the
sensor never migrates it.

Evaluation cost: one small query on the watermarks (one row per stream and symbol), one
on the pending landings (consumed by every build, so few rows) and one query of
in-flight runs: milliseconds, far under Dagster's 60 s limit.
"""

from __future__ import annotations

import json
import os

import dagster as dg
import numpy as np
import pandas as pd

from ...app.ingestion_state import Watermark, read_ingestion_state
from ...core.calendar import trading_date_of, trading_dates
from ...core.errors import UserError, one_line
from ...core.partition import Partition, is_valid_symbol
from ..jobs import LIVE_RUN_CONFIG, live_bars
from ..partitions import SYMBOLS_PARTITION, is_trading_date
from ..resources import StoreResource

LIVE_SENSOR_INTERVAL_S = int(os.environ.get("PHASE1_LIVE_SENSOR_INTERVAL_S", "15"))
# watermarks older than this (market time) behind the newest one are no longer watched
CURSOR_HORIZON_NS = 10 * 24 * 3600 * 1_000_000_000
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
             dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
WATERMARK_TAG = "phase1/watermark_ns"
PARTITION_TAG = "dagster/partition"


def _load_cursor(cursor: str | None) -> dict[str, int]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:  # a cursor edited by hand: start afresh (runs are keyed anyway)
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def in_flight_partitions(instance: dg.DagsterInstance) -> set[str]:
    """Partitions with a run of any job queued or running (a live run must not race a
    backfill or a user's materialization of the same partition)."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT))
    return {r.tags[PARTITION_TAG] for r in runs if PARTITION_TAG in r.tags}


def _dates_between(first: str, last: str) -> list[str]:
    days = pd.date_range(first, last, freq="D").strftime("%Y-%m-%d")
    return [d for d in days if is_trading_date(d)]


def trading_dates_between(lo_ns: int, hi_ns: int) -> list[str]:
    """The trading dates of the partitions a tick time span reaches into."""
    return _dates_between(trading_date_of(lo_ns), trading_date_of(hi_ns))


def pending_partitions(spans: pd.DataFrame, marks: list[Watermark]) -> dict[str, int]:
    """Partition key -> newest pending landing id, for the valid symbols streamed live
    (those with a watermark), within the horizon of the newest watermark."""
    live = {m.symbol for m in marks if is_valid_symbol(m.symbol)}
    newest = max((m.ts for m in marks), default=0)
    keep = spans["symbol"].isin(live).to_numpy(bool) & (
        spans["hi_ts"].to_numpy("int64") >= newest - CURSOR_HORIZON_NS)
    rows = spans[keep]
    firsts = trading_dates(rows["lo_ts"].to_numpy("int64"))
    lasts = trading_dates(rows["hi_ts"].to_numpy("int64"))
    out: dict[str, int] = {}
    for sym, first, last, lid in zip(rows["symbol"], firsts, lasts,
                                     rows["id"].to_numpy(np.int64), strict=True):
        for date in _dates_between(first, last):
            pk = Partition(date, str(sym)).key
            out[pk] = max(out.get(pk, 0), int(lid))
    return out


def plan_live_runs(marks: list[Watermark], cursor: dict[str, int], registered: set[str],
                   busy: set[str], pending: dict[str, int] | None = None
                   ) -> tuple[list[dg.RunRequest], list[str], dict[str, int], list[str]]:
    """(run requests, symbols to register, new cursor, notes) for the watermarks seen and
    the partitions with pending landings (``pending_partitions``)."""
    pending = pending or {}
    newest = max((m.ts for m in marks), default=0)
    stream_mark: dict[str, int] = {}
    for m in marks:
        stream_mark[m.symbol] = max(stream_mark.get(m.symbol, 0), m.ts)
    touched: dict[Partition, list[Watermark]] = {Partition.parse(pk): [] for pk in pending}
    notes: list[str] = []
    new_cursor = dict(cursor)
    for m in marks:
        if m.ts <= cursor.get(m.cursor_key, -1):
            continue
        if m.cursor_key not in cursor and m.ts < newest - CURSOR_HORIZON_NS:
            continue  # an old stream the sensor never watched: history, not live
        if not is_valid_symbol(m.symbol):
            notes.append(f"{m.source}: invalid symbol {m.symbol!r} (skipped, not a partition)")
            new_cursor[m.cursor_key] = m.ts
            continue
        date = trading_date_of(m.ts)
        if not is_trading_date(date):
            notes.append(f"{m.symbol}: ticks on {date}, not a trading session (skipped)")
            new_cursor[m.cursor_key] = m.ts
            continue
        touched.setdefault(Partition(date, m.symbol), []).append(m)
    requests: list[dg.RunRequest] = []
    new_symbols: list[str] = []
    for part in sorted(touched, key=lambda p: p.key):
        group, pk = touched[part], part.key
        if pk in busy:
            notes.append(f"{pk}: a run is still queued or running; asking again next tick")
            continue
        wm = max((m.ts for m in group), default=stream_mark.get(part.symbol, 0))
        landing = f"|{pending[pk]}" if pk in pending else ""
        if part.symbol not in registered and part.symbol not in new_symbols:
            new_symbols.append(part.symbol)
        requests.append(dg.RunRequest(
            run_key=f"live|{pk}|{wm}{landing}",
            partition_key=pk,
            run_config=LIVE_RUN_CONFIG,
            tags={WATERMARK_TAG: str(wm),
                  "phase1/sources": ",".join(sorted(m.source for m in group))[:200]},
        ))
        for m in group:
            new_cursor[m.cursor_key] = m.ts
    # forget streams far behind the newest watermark (bounded cursor)
    new_cursor = {k: v for k, v in new_cursor.items() if v >= newest - CURSOR_HORIZON_NS}
    return requests, new_symbols, new_cursor, notes


@dg.sensor(
    name="live_ticks_sensor",
    job=live_bars,
    minimum_interval_seconds=LIVE_SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Newly landed ticks (the ingestion service's per (source, symbol) watermarks, and "
    "pending landings of late ticks) -> one incremental live_bars run per touched (trading "
    "date, symbol) partition; run keys derive from the watermarks (no duplicate runs); new "
    "symbols are registered as partitions.",
)
def live_ticks_sensor(context: dg.SensorEvaluationContext, store: StoreResource):
    try:
        state = read_ingestion_state(store.database_url or None)
    except UserError as exc:
        return dg.SkipReason(f"store not readable: {one_line(exc)}")
    cursor = _load_cursor(context.cursor)
    registered = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITION))
    busy = in_flight_partitions(context.instance)
    marks = state.watermarks
    requests, new_symbols, new_cursor, notes = plan_live_runs(
        marks, cursor, registered, busy, pending_partitions(state.pending, marks))
    for note in notes:
        context.log.info(note)
    if new_cursor != cursor:
        context.update_cursor(json.dumps(new_cursor, sort_keys=True))
    if not requests and not new_symbols:
        why = "; ".join(notes) or f"no watermark moved ({len(marks)} watched)"
        return dg.SkipReason(why)
    partition_requests = (
        [dg.AddDynamicPartitionsRequest(SYMBOLS_PARTITION, new_symbols)] if new_symbols else [])
    return dg.SensorResult(run_requests=requests,
                           dynamic_partitions_requests=partition_requests)


ALL_SENSORS = [live_ticks_sensor]
