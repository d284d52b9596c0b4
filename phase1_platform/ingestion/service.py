"""The live ingestion service: connector -> micro-batches -> store, bars -> WebSocket.

Pipeline (one asyncio loop; database and numpy work run in a worker thread so the
connector keeps reading while a batch lands):

1. connector callbacks (``LiveTicks``) put raw tick frames in a buffer (awaiting, i.e.
   back-pressuring the connector, only when more than ``high_water`` rows wait), and
   the connector's quarantine frames beside them;
2. every ``flush_interval`` seconds (or at ``max_batch_rows``) the buffer becomes one
   micro-batch, prepared by ``batches.Batches.prepare``: bad rows quarantined whatever
   their shape, ``TickNormalizer`` (subscribed symbols only), tape-stable identities
   for streams without trade ids (``identity.StreamIdentity``), gaps (``gaps``);
3. the gaps' backfill is fetched from the historical connector (``TickHistory``);
4. ``Batches.commit`` feeds the ticks new to the store to the streaming bars
   (``bars.LiveBars``), then in ONE transaction lands the batch through ``app.land`` (the
   one tick identity, conflicting duplicates quarantined), advances watermarks, stores
   quarantine rows and writes the bars that changed (``app.live_bars``: upserts by key,
   the 1d bar and volume-only minutes included, as the batch path stores them), so a 1m
   bar is in the store within a flush interval of its ticks; ``on_bars_written`` (e.g.
   the Dagster reporter of ``phase1 ingest``) is told what was written;
5. the bars that changed are published on the ``BarBroadcaster``;
6. trade cancels and corrections of a connector that sends them (``LiveAmendments``:
   Alpaca's data stream) are recorded once the ticks received before them have landed,
   and the streamed bars they touch are restated and stored (``amendments``).

Startup catch-up (``start``, before the stream connects): each subscribed symbol with a
stored watermark of the stream's source is backfilled from its watermark to the
history's present (``gaps.GapTracker.startup``, reason ``startup``), fetched and
committed as steps 3 to 5 commit a batch's gaps (streaming bars, one transaction, bars
stored and published), so a service killed after receiving the day's last trades, and
restarted when no trade follows, still lands them. A store error keeps the catch-up for
a retry (landed before any later batch); ``stop`` set meanwhile ends the start.

Landed ticks are the partition's raw ticks for the asset graph as they are: the asset
reads ``Store.ticks.read(partition)`` from the same store (``DATABASE_URL``,
``TICK_STORE``). On first sight of a (symbol, trading date) the streaming bars are
seeded with the ticks already stored for it, and afterwards receive only ticks new to
the store, so they equal a batch build of the stored ticks. They keep the current and
the previous trading date of each symbol (``bars.RETAIN_TRADING_DATES``), so memory and
per-batch cost stay bounded however long the service runs.

Nothing is lost silently: a store outage keeps the batch for a retry; a bug while
preparing or committing a batch is logged (one JSON line with its place) and the
batch's rows are quarantined with the reason, and the service goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..app.live_bars import WrittenBars
from ..app.sources import load_sources
from ..connectors.base import wait_or_stop
from ..connectors.protocols import LiveAmendments, LiveTicks, TickHistory
from ..core.calendar import DEFAULT_CALENDAR
from ..core.errors import ConfigError, UserError, one_line
from ..core.rules import EligibilityRules, get_rules
from ..core.schema import QUARANTINE_COLUMNS, empty_bars, empty_ticks
from ..core.timeframes import DEFAULT_TIMEFRAMES
from ..storage import Store, StoreError, WatermarkRepository
from .amendments import AmendmentBatches
from .bars import LiveBars
from .batches import Batches, Prepared, rows_text, tick_partitions, ticks_quarantine
from .broadcast import BarBroadcaster
from .gaps import Gap, GapTracker, SourcedStream, connection_epoch
from .identity import StreamIdentity
from .logs import JsonFormatter, event, log, setup_logging

NOT_A_FRAME = "delivery is not a tick frame"
PREPARE_FAILED = "batch preparation failed"
COMMIT_FAILED = "batch not landed"


@dataclass
class IngestStats:
    connected: bool = False  # the stream came up (False: stopped while connecting)
    rows_received: int = 0
    batches: int = 0
    ticks: int = 0  # valid ticks processed (live + backfill)
    landed: int = 0  # new rows in the landing table
    duplicates: int = 0  # valid ticks that were already landed
    quarantined: int = 0
    gaps: int = 0
    backfill_requests: int = 0
    backfilled: int = 0  # backfill ticks new to the store
    backfill_errors: int = 0
    amendments: int = 0  # trade cancels and corrections applied (their bars restated)
    amendment_duplicates: int = 0  # cancels and corrections recorded before (redelivered)
    bar_updates: int = 0
    bars_written: int = 0  # bar rows stored by the live path (upserts, restatements included)
    store_errors: int = 0
    batch_errors: int = 0  # bugs while preparing or committing a batch (rows quarantined)
    busy_seconds: float = 0.0
    watermarks: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "watermarks"}
        d["busy_seconds"] = round(self.busy_seconds, 3)
        return d


class IngestionService:
    """Lands a connector's ticks in the store and streams the bars they make.

    ``identity``: a ``StreamIdentity`` for streams without trade ids (Finnhub), None
    to keep the connector's identities (files, Alpaca). ``historical``: a
    ``TickHistory`` that fills gaps and catches up at start, up to its ``LatestTrade``
    when it has one (None: gaps are logged, not filled). ``rules``: one
    rule set for every symbol (``--rules``), or one per symbol; None: each symbol's rule
    set of the per-symbol setting (``app.sources``).
    """

    def __init__(
        self,
        connector: LiveTicks,
        store: Store,
        symbols: Iterable[str],
        *,
        identity: StreamIdentity | None = None,
        historical: TickHistory | None = None,
        broadcaster: BarBroadcaster | None = None,
        timeframes=DEFAULT_TIMEFRAMES,
        rules: EligibilityRules | Mapping[str, EligibilityRules] | None = None,
        calendar: str = DEFAULT_CALENDAR,
        flush_interval: float = 0.25,
        max_batch_rows: int = 20_000,
        high_water: int = 200_000,
        service_partition: str | None = None,
        progress_interval: float = 5.0,
        on_bars_written: Callable[[WrittenBars], None] | None = None,
    ) -> None:
        self.connector = connector
        self.store = store
        self.symbols = sorted({s.strip().upper() for s in symbols if s.strip()})
        if not self.symbols:
            raise ConfigError("no symbols to ingest: give --symbols A,B")
        self.identity = identity
        self.historical = historical
        self.broadcaster = broadcaster
        self.calendar = calendar
        self.flush_interval = flush_interval
        self.max_batch_rows = max_batch_rows
        self.high_water = high_water
        self.progress_interval = progress_interval
        self.source = connector.name  # the source of rows delivered without one
        name = identity.stream if identity is not None else connector.name
        self.service_partition = service_partition or f"ingest|{name}"
        self.aggregator = LiveBars(rules_by_symbol(self.symbols, rules), timeframes, calendar)
        self.stats = IngestStats()
        self.gaps = GapTracker(store.ticks, WatermarkRepository(store),
                               identity=identity, historical=historical, stats=self.stats,
                               calendar=calendar)
        self.batches = Batches(
            store, self.symbols, self.aggregator, self.gaps, source=self.source,
            service_partition=self.service_partition, identity=identity,
            historical_source=historical.name if historical is not None else "backfill",
            stats=self.stats, calendar=calendar, on_bars_written=on_bars_written)
        self.amendments = AmendmentBatches(store, self.aggregator, stats=self.stats,
                                           calendar=calendar, on_bars_written=on_bars_written)

        self._amended: list[pd.DataFrame] = []  # amendment frames not recorded yet
        self._buffer: list[tuple[int, pd.DataFrame]] = []
        self._buffered = 0
        self._bad_frames: list[pd.DataFrame] = []
        self._retry: list[Prepared] = []  # prepared batches to land before newer ones
        self._catching_up: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task | None = None
        self._stopping = False
        self._floors: dict[str, int] = {}  # the streaming bars' retention, last seen
        self._last_progress = time.monotonic()

    # -- connector side ------------------------------------------------------------
    async def _on_raw(self, frame: pd.DataFrame) -> None:
        if not isinstance(frame, pd.DataFrame):  # a connector bug: kept, with the reason
            self._bad_frames.append(pd.DataFrame({
                "source": [self.source], "source_row": [-1], "reason": [NOT_A_FRAME],
                "raw": [repr(frame)[:2000]]}).astype(QUARANTINE_COLUMNS))
            self.stats.rows_received += 1
            return
        if len(frame) == 0:
            return
        self._buffer.append((connection_epoch(self.connector), frame))
        self._buffered += len(frame)
        self.stats.rows_received += len(frame)
        if self._buffered >= self.max_batch_rows:
            self._wake.set()
        if self._buffered >= self.high_water and not self._stopping:
            self._room.clear()
            await self._room.wait()  # back-pressure: the connector stops reading

    async def _on_amendments(self, frame: pd.DataFrame) -> None:
        """Trade cancels and corrections (``AMENDMENT_COLUMNS``): recorded after the ticks
        received before them have landed (``amendments.AmendmentBatches``)."""
        if len(frame):
            self._amended.append(frame)
            self.stats.rows_received += len(frame)
            self._wake.set()

    async def _on_bad_frame(self, quarantine: pd.DataFrame) -> None:
        """Rows the connector could not read (QUARANTINE_COLUMNS): received, kept."""
        self._bad_frames.append(quarantine)
        self.stats.rows_received += len(quarantine)

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, stop: asyncio.Event | None = None) -> bool:
        """Register, subscribe and connect. True once the stream is up; False when
        ``stop`` was set first (connecting is abandoned at once; call ``stop()``)."""
        if self.broadcaster is not None:
            await self.broadcaster.start()
            event("broadcast_started", url=self.broadcaster.url)
        self.connector.register_callback(self._on_raw)
        self.connector.register_quarantine_callback(self._on_bad_frame)
        if isinstance(self.connector, LiveAmendments):
            self.connector.register_amendment_callback(self._on_amendments)
        await self.connector.subscribe(self.symbols)
        self._flusher = asyncio.create_task(self._flush_loop(), name="ingest-flusher")
        self._catching_up = asyncio.create_task(self._catch_up(), name="ingest-catch-up")
        if not await wait_or_stop(asyncio.shield(self._catching_up), stop):
            event("ingest_stopped_while_catching_up", logging.WARNING,
                  connector=self.connector.name)
            return False
        if stop is None:
            await self.connector.connect()
        elif not await wait_or_stop(self.connector.connect(stop), stop) or stop.is_set():
            event("ingest_stopped_while_connecting", logging.WARNING,
                  connector=self.connector.name)
            return False
        self.stats.connected = True
        event("ingest_started", symbols=self.symbols, connector=self.connector.name,
              historical=self.historical.name if self.historical is not None else None,
              stream=self.identity.stream if self.identity else None,
              rule_sets=sorted(self.aggregator.aggregators))
        return True

    async def stop(self) -> IngestStats:
        """Disconnect (the connector delivers its pending rows), flush everything, stop."""
        self._stopping = True
        self._room.set()
        if self._catching_up is not None and not self._catching_up.done():
            self._catching_up.cancel()  # its commit, once begun, ends under the flush lock
            with contextlib.suppress(asyncio.CancelledError):
                await self._catching_up
        try:
            await self.connector.disconnect()
        except (UserError, OSError) as exc:
            event("disconnect_failed", logging.WARNING, error=one_line(exc))
        except Exception:  # noqa: BLE001 - a bug: logged; what was received still lands
            log.exception("disconnect failed")
        if self._flusher is not None:  # never cancelled mid-batch: it ends after a flush
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()
        if self.broadcaster is not None:
            await self.broadcaster.stop()
        event("ingest_stopped", **self.stats.as_dict(),
              broadcast_sent=self.broadcaster.sent_total if self.broadcaster else 0,
              broadcast_dropped=self.broadcaster.dropped_total if self.broadcaster else 0,
              unstored_rows=self._buffered + sum(len(p.ticks) for p in self._retry))
        return self.stats

    async def _flush_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the service must go on; logged with its place
                log.exception("flush failed")
            now = time.monotonic()
            if now - self._last_progress >= self.progress_interval:
                self._last_progress = now
                event("progress", **self.stats.as_dict(), streamed=self.aggregator.state_size())

    # -- flushing ------------------------------------------------------------------
    async def flush(self) -> None:
        """Land everything buffered so far (loops until the buffer is empty)."""
        async with self._flush_lock:
            while self._buffer or self._bad_frames or self._retry or self._amended:
                entries, self._buffer = self._buffer, []
                amended, self._amended = self._amended, []  # after the ticks taken with them
                self._buffered = 0
                self._room.set()
                bad, self._bad_frames = self._bad_frames, []
                t0 = time.perf_counter()
                batches = list(self._retry)
                self._retry = []
                if entries or bad:
                    batches.append(await self._prepare(entries, bad))
                failed = False
                for prep in batches:
                    if failed:
                        self._retry.append(prep)
                        continue
                    failed = not await self._commit(prep)
                if amended and not failed:
                    failed = not await self._amend(amended)
                elif amended:
                    self._amended[:0] = amended  # their trades wait for the store
                self.stats.busy_seconds += time.perf_counter() - t0
                if failed:
                    if self._stopping:
                        return  # reported by stop() as unstored rows
                    await asyncio.sleep(1.0)

    async def _commit(self, prep: Prepared) -> bool:
        """Fetch the gaps of ``prep``, land it with them, publish the bars it changed.
        False after a store error (``prep`` is kept for a retry)."""
        if prep.gaps:
            prep.backfill += await self.gaps.fetch(prep.gaps)
            prep.gaps = []
        try:
            updates = await asyncio.to_thread(self.batches.commit, prep)
        except StoreError as exc:
            self.stats.store_errors += 1
            event("store_error", logging.ERROR, error=one_line(exc), rows_kept=len(prep.ticks))
            self._retry.append(prep)
            return False
        except Exception as exc:  # noqa: BLE001 - a bug: rows kept in quarantine
            updates = await self._commit_failed(prep, exc)
        if self.broadcaster is not None and len(updates):
            self.broadcaster.publish(updates)
            floors = self.aggregator.floors()
            if floors != self._floors:  # a trading date was evicted
                self._floors = floors
                self.broadcaster.forget_before(floors)
        self.stats.bar_updates += len(updates)
        return True

    async def _catch_up(self) -> None:
        """The startup catch-up (module doc): gaps from the watermarks to the history's
        present, fetched (cancellable), then committed under the flush lock (shielded:
        once begun, a commit ends even when the start is abandoned)."""
        stream = self.connector
        try:
            gaps = await self.gaps.startup(
                self.symbols, stream.source if isinstance(stream, SourcedStream) else None)
            backfill = await self.gaps.fetch(gaps) if gaps else []
        except Exception:  # noqa: BLE001 - a bug: logged with its place, the start goes on
            log.exception("catch up failed")
            return
        if backfill:
            await asyncio.shield(self._commit_alone(
                Prepared(empty_ticks(), [], [], 0, backfill=backfill)))

    async def _commit_alone(self, prep: Prepared) -> None:
        async with self._flush_lock:
            t0 = time.perf_counter()
            await self._commit(prep)
            self.stats.busy_seconds += time.perf_counter() - t0

    async def _prepare(self, entries: list[tuple[int, pd.DataFrame]],
                       bad: list[pd.DataFrame]) -> Prepared:
        try:
            return await asyncio.to_thread(self.batches.prepare, entries, bad)
        except Exception as exc:  # noqa: BLE001 - a bug: the rows go to quarantine, not away
            self.stats.batch_errors += 1
            log.exception("batch preparation failed", extra={"fields": {
                "rows": sum(len(f) for _, f in entries)}})
            reason = f"{PREPARE_FAILED} ({type(exc).__name__})"
            rows = [_as_quarantine(f, self.source, reason) for _, f in entries]
            rows = [r for r in [*bad, *rows] if len(r)]
            quarantine = [(r, np.full(len(r), self.service_partition, dtype=object))
                          for r in rows]
            return Prepared(empty_ticks(), quarantine, [], 0)

    async def _amend(self, frames: list[pd.DataFrame]) -> bool:
        """Record amendments and publish the bars they restate. False after a store outage
        (they are kept for the next flush, which restates from the store again); a bug
        quarantines them (with the reason) like a batch's rows."""
        try:
            updates = await asyncio.to_thread(self.amendments.commit, frames)
        except StoreError as exc:
            self.stats.store_errors += 1
            event("store_error", logging.ERROR, error=one_line(exc),
                  amendments_kept=sum(len(f) for f in frames))
            self._amended[:0] = frames
            return False
        except Exception as exc:  # noqa: BLE001 - a bug: the messages go to quarantine
            self.stats.batch_errors += 1
            log.error("amendments commit failed", exc_info=exc)
            rows = [_as_quarantine(f.drop(columns=["raw"]), self.source,
                                   f"{COMMIT_FAILED} ({type(exc).__name__})") for f in frames]
            self._bad_frames.extend(rows)
            return True
        if self.broadcaster is not None and len(updates):
            self.broadcaster.publish(updates)
        self.stats.bar_updates += len(updates)
        return True

    async def _commit_failed(self, prep: Prepared, exc: Exception) -> pd.DataFrame:
        """Keep the rows of a batch whose commit hit a bug in quarantine (reason)."""
        self.stats.batch_errors += 1
        log.error("batch commit failed", exc_info=exc,
                  extra={"fields": {"ticks": len(prep.ticks)}})
        reason = f"{COMMIT_FAILED} ({type(exc).__name__})"
        quarantine = list(prep.quarantine)
        if len(prep.ticks):
            quarantine.append((ticks_quarantine(prep.ticks, reason),
                               tick_partitions(prep.ticks, self.calendar)))
        kept = Prepared(prep.ticks.iloc[:0], quarantine, [], 0)
        try:
            return await asyncio.to_thread(self.batches.commit, kept)
        except StoreError:
            self._retry.append(kept)
        except Exception:  # noqa: BLE001 - the quarantine itself fails: say what is lost
            log.exception("rows_not_stored", extra={"fields": {
                "rows": sum(len(r) for r, _ in quarantine)}})
        return empty_bars()


def rules_by_symbol(symbols: Iterable[str],
                    rules: EligibilityRules | Mapping[str, EligibilityRules] | None = None
                    ) -> dict[str, EligibilityRules]:
    """Each symbol's rule set: ``rules`` for all, a mapping's entry, else the per-symbol
    setting (``app.sources``)."""
    if isinstance(rules, EligibilityRules):
        return {s: rules for s in symbols}
    given = dict(rules or {})
    missing = [s for s in symbols if s not in given]
    if missing:
        setting = load_sources()
        given.update({s: get_rules(setting.for_symbol(s).rule_set) for s in missing})
    return {s: given[s] for s in symbols}


def _as_quarantine(frame: pd.DataFrame, source: str, reason: str) -> pd.DataFrame:
    """Any delivered frame as quarantine rows with ``reason`` (its text kept)."""
    rows = frame.get("source_row")
    if rows is None or not pd.api.types.is_integer_dtype(rows.dtype):
        rows = np.arange(len(frame), dtype="int64")
    return pd.DataFrame({"source": source, "source_row": np.asarray(rows, dtype="int64"),
                         "reason": reason, "raw": rows_text(frame)}).astype(QUARANTINE_COLUMNS)

__all__ = ["Gap", "IngestStats", "IngestionService", "JsonFormatter", "event", "setup_logging"]
