"""Sensors: live micro-batches from the ingestion watermarks, symbol registration.

``live_ticks_sensor`` (every ``PHASE1_LIVE_SENSOR_INTERVAL_S`` seconds, default 15) reads
the store's ``watermarks`` table: per (source, symbol) the latest tick time the ingestion
service landed. A watermark that moved since the sensor's cursor marks its partition
(the tick's trading date in America/New_York, symbol) as touched, and the sensor requests
one ``live_bars`` run for it with run key ``live|<date>|<SYMBOL>|<watermark ns>``: the same
watermark never launches a second run, a new one launches exactly one. The cursor (JSON:
``"source|symbol" -> ns``) advances with every request. While a run of a partition is
still queued or running, the sensor requests nothing for it and keeps its cursor entry
behind, so the next tick asks again for everything landed since (micro-batches coalesce
instead of piling up behind a slow run). Symbols not yet registered are added to the
``symbols`` dynamic partitions in the same evaluation (before the run requests).

Late ticks behind the watermark do not move it, so the sensor also reads the store's
pending tick landings (``tick_landings``: ticks landed whose bars are not rebuilt yet) of
the symbols streamed live (those with a watermark), within the horizon: a partition
with pending landings gets a run too, its run key ending ``|<newest landing id>``.
A ``live_bars`` run recomputes incrementally (``recompute.py``): it reads only the ticks
from the earliest pending landing's hour and rewrites only the bars they touch, and the
result equals a full recompute (tested).

``symbol_registry_sensor`` (every minute) registers every symbol found in the store's
landing table or watermarks as a ``symbols`` dynamic partition (new symbols only).

Evaluation cost: one small query on the watermarks table (one row per stream, symbol and
day), one on the pending landings (consumed by every build, so few rows) and one query
of in-flight runs: milliseconds, far under Dagster's 60 s limit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import dagster as dg
import pandas as pd
from sqlalchemy import text

from ..core.calendar import DEFAULT_CALENDAR, exchange_tz
from .jobs import LIVE_RUN_CONFIG, live_bars
from .partitions import SYMBOLS_PARTITION, date_partitions, partition_key
from .resources import StoreResource

LIVE_SENSOR_INTERVAL_S = int(os.environ.get("PHASE1_LIVE_SENSOR_INTERVAL_S", "15"))
# watermarks older than this (market time) behind the newest one are no longer watched
CURSOR_HORIZON_NS = 10 * 24 * 3600 * 1_000_000_000
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
             dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
WATERMARK_TAG = "phase1/watermark_ns"
PARTITION_TAG = "dagster/partition"


@dataclass(frozen=True)
class Watermark:
    source: str
    symbol: str
    ts: int

    @property
    def cursor_key(self) -> str:
        return f"{self.source}|{self.symbol}"


def _open_store(store: StoreResource):
    from ..storage.store import Store

    return Store.from_url(store.database_url or None)


def read_ingestion_state(store: StoreResource) -> tuple[list[Watermark], pd.DataFrame]:
    """(every watermark, every pending tick landing: id, symbol, lo_ts, hi_ts)."""
    from sqlalchemy import select

    from ..storage.repositories import LandingRepository
    from ..storage.tables import watermarks as watermarks_t

    s = _open_store(store)
    try:
        with s.begin(write=False) as conn:
            rows = conn.execute(select(watermarks_t.c.source, watermarks_t.c.symbol,
                                       watermarks_t.c.ts)).all()
        spans = LandingRepository(s).spans()
    finally:
        s.dispose()
    return [Watermark(str(a), str(b), int(c)) for a, b, c in rows], spans


# loose index scan (one index probe per symbol) on each partial index of the landing table
_DISTINCT_SYMBOLS = """
WITH RECURSIVE s(symbol) AS (
  SELECT MIN(symbol) FROM ticks WHERE {cond}
  UNION ALL
  SELECT (SELECT MIN(t.symbol) FROM ticks t WHERE {cond_t} AND t.symbol > s.symbol)
  FROM s WHERE s.symbol IS NOT NULL
)
SELECT symbol FROM s WHERE symbol IS NOT NULL
"""


def stored_symbols(store: StoreResource) -> set[str]:
    """Symbols in the landing table and the watermarks."""
    s = _open_store(store)
    out: set[str] = set()
    try:
        with s.begin(write=False) as conn:
            for cond in ("trade_id = ''", "trade_id <> ''"):
                query = _DISTINCT_SYMBOLS.format(cond=cond, cond_t="t." + cond)
                out |= {str(r[0]) for r in conn.execute(text(query))}
            out |= {str(r[0]) for r in conn.execute(text("SELECT DISTINCT symbol FROM "
                                                          "watermarks"))}
    finally:
        s.dispose()
    return out


def trading_date_of(ts_ns: int, calendar: str = DEFAULT_CALENDAR) -> str:
    """The trading date (exchange calendar day) a tick time belongs to."""
    return pd.Timestamp(int(ts_ns), tz="UTC").tz_convert(exchange_tz(calendar)).strftime(
        "%Y-%m-%d")


def is_trading_date(date: str) -> bool:
    """Whether ``date`` is a partition of the date dimension (an XNYS session)."""
    try:
        return date_partitions.has_partition_key(date)
    except Exception:  # noqa: BLE001 - malformed or out of range: not a partition
        return False


def _load_cursor(cursor: str | None) -> dict[str, int]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def in_flight_partitions(instance: dg.DagsterInstance) -> set[str]:
    """Partitions with a run of any job queued or running (a live run must not race a
    backfill or a user's materialization of the same partition)."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT))
    return {r.tags[PARTITION_TAG] for r in runs if PARTITION_TAG in r.tags}


def trading_dates_between(lo_ns: int, hi_ns: int) -> list[str]:
    """The trading dates of the partitions a tick time span reaches into."""
    first, last = trading_date_of(lo_ns), trading_date_of(hi_ns)
    days = [d.strftime("%Y-%m-%d") for d in pd.date_range(first, last, freq="D")]
    return [d for d in days if is_trading_date(d)]


def pending_partitions(spans: pd.DataFrame, marks: list[Watermark]) -> dict[str, int]:
    """Partition key -> newest pending landing id, for the symbols streamed live (those
    with a watermark), within the horizon of the newest watermark."""
    live = {m.symbol for m in marks}
    newest = max((m.ts for m in marks), default=0)
    out: dict[str, int] = {}
    for sym, lo, hi, lid in zip(spans["symbol"], spans["lo_ts"], spans["hi_ts"], spans["id"],
                                strict=True):
        if sym not in live or hi < newest - CURSOR_HORIZON_NS:
            continue
        for date in trading_dates_between(int(lo), int(hi)):
            pk = partition_key(date, str(sym))
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
    touched: dict[str, list[Watermark]] = {pk: [] for pk in pending}
    notes: list[str] = []
    new_cursor = {k: v for k, v in cursor.items()}
    for m in marks:
        if m.ts <= cursor.get(m.cursor_key, -1):
            continue
        if m.cursor_key not in cursor and m.ts < newest - CURSOR_HORIZON_NS:
            continue  # an old stream the sensor never watched: history, not live
        date = trading_date_of(m.ts)
        if not is_trading_date(date):
            notes.append(f"{m.symbol}: ticks on {date}, not a trading session (skipped)")
            new_cursor[m.cursor_key] = m.ts
            continue
        touched.setdefault(partition_key(date, m.symbol), []).append(m)
    requests: list[dg.RunRequest] = []
    new_symbols: list[str] = []
    for pk in sorted(touched):
        group = touched[pk]
        if pk in busy:
            notes.append(f"{pk}: a run is still queued or running; asking again next tick")
            continue
        date, symbol = pk.split("|", 1)
        wm = max((m.ts for m in group), default=stream_mark.get(symbol, 0))
        landing = f"|{pending[pk]}" if pk in pending else ""
        if symbol not in registered and symbol not in new_symbols:
            new_symbols.append(symbol)
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
    marks, spans = read_ingestion_state(store)
    cursor = _load_cursor(context.cursor)
    registered = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITION))
    busy = in_flight_partitions(context.instance)
    requests, new_symbols, new_cursor, notes = plan_live_runs(
        marks, cursor, registered, busy, pending_partitions(spans, marks))
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


@dg.sensor(
    name="symbol_registry_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers every symbol found in the store's landing table or watermarks as "
    "a 'symbols' dynamic partition.",
)
def symbol_registry_sensor(context: dg.SensorEvaluationContext, store: StoreResource):
    registered = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITION))
    new = sorted(stored_symbols(store) - registered)
    if not new:
        return dg.SkipReason(f"no new symbol ({len(registered)} registered)")
    context.log.info(f"registering symbols: {', '.join(new)}")
    return dg.SensorResult(
        dynamic_partitions_requests=[dg.AddDynamicPartitionsRequest(SYMBOLS_PARTITION, new)])


ALL_SENSORS = [live_ticks_sensor, symbol_registry_sensor]
