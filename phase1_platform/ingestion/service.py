"""The live ingestion service: connector -> micro-batches -> store, bars -> WebSocket.

Pipeline (one asyncio loop; database and numpy work run in a worker thread so the
connector keeps reading while a batch lands):

1. connector callbacks put raw tick frames in a buffer (awaiting, i.e. back-pressuring
   the connector, only when more than ``high_water`` rows wait);
2. every ``flush_interval`` seconds (or at ``max_batch_rows``) the buffer becomes one
   micro-batch: ``TickNormalizer`` (subscribed symbols only), then, for streams without
   trade ids, tape-stable identities (``identity.StreamIdentity``);
3. gap check per symbol (see below), backfill of the gap from the historical connector;
4. ``TickRepository.land`` (idempotent), ``WatermarkRepository.advance`` per
   (source, symbol), ``QuarantineRepository.add`` per partition
   (``<trading date>|<SYMBOL>``, or ``ingest|<stream>`` for rows with no usable date or
   symbol, e.g. malformed frames);
5. the ticks that were new to the store go to ``StreamingBarAggregator.on_batch`` and
   ``drain_updates()`` is published on the ``BarBroadcaster``.

Landed ticks are the partition's raw ticks for the asset graph as they are: the asset
reads ``TickRepository.read(symbol, trading_day_window(date))`` from the same
``DATABASE_URL``.

Gaps. A connection epoch is the connector's handshake count (``stats.connections``).
When ticks of a symbol arrive in a new epoch (a reconnect), or for the first time in
this process while a watermark exists for its source (a restart), the gap is
``[last tick before, first tick after]``; with a historical connector it is fetched
(both ends inclusive, whole milliseconds) and landed. Id-less backfill ticks are
re-stamped with the live stream's identity, so the ones that already landed are the
same rows and land once. Backfill ticks WITH trade ids (Alpaca) behind an id-less live
stream (Finnhub) cannot be matched trade by trade: only the ticks strictly inside the
gap (boundary milliseconds excluded) are landed, under their own identity; a trade
missed at exactly the boundary milliseconds stays missing. Behind a stream of the
same vendor with ids (Alpaca polling), the window is inclusive and ids dedup exactly.

First tick of a symbol in this process vs the stored watermark ``wm`` of its source:
earlier than ``wm`` = the stream replays the tape (a restarted simulator): identities
repeat, landing dedups; equal = resumed inside ``wm``'s millisecond: numbering
continues after the rows landed there; later = a gap.

Streaming bars: on first sight of (symbol, trading date) the aggregator is seeded with
the ticks already landed for that partition, and afterwards it only receives ticks that
were new to the store, so its bars equal a batch build of the stored ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, func, select

from ..connectors.base import BaseConnector, ConnectorError
from ..core.calendar import DEFAULT_CALENDAR, trading_day_window
from ..core.normalizer import TickNormalizer, canonical_sort
from ..core.rules import DEFAULT_RULES, EligibilityRules
from ..core.schema import QUARANTINE_COLUMNS, empty_ticks, ts_ns
from ..core.streaming import StreamingBarAggregator
from ..storage import (
    QuarantineRepository,
    Store,
    StoreError,
    TickRepository,
    WatermarkRepository,
)
from ..storage.tables import ticks as ticks_t
from .broadcast import BarBroadcaster
from .identity import NS_PER_MS, StreamIdentity, source_for, trading_dates

log = logging.getLogger("phase1.ingest")


# ----------------------------------------------------------------------------- logging
class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event/message and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": pd.Timestamp(record.created, unit="s", tz="UTC").strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if fields is not None:
            out["event"] = record.getMessage()
            out.update(fields)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(out, default=str)


def setup_logging(level: int = logging.INFO, stream=None) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("websockets").setLevel(logging.WARNING)


def event(name: str, level: int = logging.INFO, **fields) -> None:
    log.log(level, name, extra={"fields": fields})


# ----------------------------------------------------------------------------- data
@dataclass
class Gap:
    symbol: str
    lo_ns: int  # last tick before (inclusive)
    hi_ns: int  # first tick after (inclusive)
    source: str
    reason: str  # "reconnect" or "restart"


@dataclass
class _Prepared:
    ticks: pd.DataFrame
    quarantine: list[tuple[pd.DataFrame, np.ndarray]]  # (rows, partition per row)
    gaps: list[Gap]
    seed: list[tuple[str, str]]  # (symbol, date) partitions to seed the aggregator with
    rows_in: int


@dataclass
class IngestStats:
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
    bar_updates: int = 0
    store_errors: int = 0
    busy_seconds: float = 0.0
    watermarks: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "watermarks"}
        d["busy_seconds"] = round(self.busy_seconds, 3)
        return d


# ----------------------------------------------------------------------------- service
class IngestionService:
    """Lands a connector's ticks in the store and streams the bars they make.

    ``identity``: a ``StreamIdentity`` for streams without trade ids (Finnhub), None
    to keep the connector's identities (files, Alpaca). ``historical``: a connector
    whose ``get_historical_ticks`` fills gaps (None: gaps are logged, not filled).
    """

    def __init__(
        self,
        connector: BaseConnector,
        store: Store,
        symbols: Iterable[str],
        *,
        identity: StreamIdentity | None = None,
        historical: BaseConnector | None = None,
        broadcaster: BarBroadcaster | None = None,
        timeframes: str = "1m,5m,15m,1h,1d",
        rules: EligibilityRules = DEFAULT_RULES,
        calendar: str = DEFAULT_CALENDAR,
        flush_interval: float = 0.25,
        max_batch_rows: int = 20_000,
        high_water: int = 200_000,
        service_partition: str | None = None,
        progress_interval: float = 5.0,
    ) -> None:
        self.connector = connector
        self.store = store
        self.symbols = sorted({s.strip().upper() for s in symbols if s.strip()})
        if not self.symbols:
            raise ValueError("no symbols to ingest: give --symbols A,B")
        self.identity = identity
        self.historical = historical
        self.broadcaster = broadcaster
        self.calendar = calendar
        self.flush_interval = flush_interval
        self.max_batch_rows = max_batch_rows
        self.high_water = high_water
        self.progress_interval = progress_interval
        name = identity.stream if identity is not None else getattr(connector, "name", "ingest")
        self.service_partition = service_partition or f"ingest|{name}"
        self.normalizer = TickNormalizer(symbols=self.symbols)
        self.aggregator = StreamingBarAggregator(timeframes, rules=rules, calendar=calendar)
        self.ticks_repo = TickRepository(store)
        self.watermarks = WatermarkRepository(store)
        self.quarantine_repo = QuarantineRepository(store)
        self.stats = IngestStats()

        self._buffer: list[tuple[int, pd.DataFrame]] = []
        self._buffered = 0
        self._bad_frames: list[pd.DataFrame] = []
        self._retry: list[_Prepared] = []
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task | None = None
        self._stopping = False
        self._last_ts: dict[str, int] = {}  # symbol -> newest tick ts processed
        self._epoch_of: dict[str, int] = {}  # symbol -> connection epoch of its last tick
        self._seeded: set[tuple[str, str]] = set()
        self._last_progress = time.monotonic()

    # -- connector side ------------------------------------------------------------
    def _epoch(self) -> int:
        return int(getattr(getattr(self.connector, "stats", None), "connections", 0) or 0)

    async def _on_raw(self, frame: pd.DataFrame) -> None:
        if frame is None or len(frame) == 0:
            return
        self._buffer.append((self._epoch(), frame))
        self._buffered += len(frame)
        self.stats.rows_received += len(frame)
        if self._buffered >= self.max_batch_rows:
            self._wake.set()
        if self._buffered >= self.high_water and not self._stopping:
            self._room.clear()
            await self._room.wait()  # back-pressure: the connector stops reading

    async def _on_bad_frame(self, quarantine: pd.DataFrame) -> None:
        self._bad_frames.append(quarantine)

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        if self.broadcaster is not None:
            await self.broadcaster.start()
            event("broadcast_started", url=self.broadcaster.url)
        self.connector.register_callback(self._on_raw)
        if hasattr(self.connector, "register_quarantine_callback"):
            self.connector.register_quarantine_callback(self._on_bad_frame)
        await self.connector.subscribe(self.symbols)
        await self.connector.connect()
        self._flusher = asyncio.create_task(self._flush_loop(), name="ingest-flusher")
        event("ingest_started", symbols=self.symbols, connector=self.connector.name,
              historical=getattr(self.historical, "name", None),
              stream=self.identity.stream if self.identity else None)

    async def stop(self) -> IngestStats:
        """Disconnect (the connector delivers its pending rows), flush everything, stop."""
        self._stopping = True
        self._room.set()
        with contextlib.suppress(Exception):
            await self.connector.disconnect()
        if self._flusher is not None:  # never cancelled mid-batch: it ends after a flush
            self._wake.set()
            with contextlib.suppress(Exception):
                await self._flusher
            self._flusher = None
        await self.flush()
        if self.broadcaster is not None:
            await self.broadcaster.stop()
        event("ingest_stopped", **self.stats.as_dict(),
              broadcast_sent=getattr(self.broadcaster, "sent_total", 0),
              broadcast_dropped=getattr(self.broadcaster, "dropped_total", 0),
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
            except Exception:  # noqa: BLE001 - the service must go on; counted and logged
                log.exception("flush failed")
            now = time.monotonic()
            if now - self._last_progress >= self.progress_interval:
                self._last_progress = now
                event("progress", **self.stats.as_dict())

    # -- flushing ------------------------------------------------------------------
    async def flush(self) -> None:
        """Land everything buffered so far (loops until the buffer is empty)."""
        async with self._flush_lock:
            while self._buffer or self._bad_frames or self._retry:
                entries, self._buffer = self._buffer, []
                self._buffered = 0
                self._room.set()
                bad, self._bad_frames = self._bad_frames, []
                t0 = time.perf_counter()
                batches = list(self._retry)
                self._retry = []
                if entries or bad:
                    try:
                        batches.append(await asyncio.to_thread(self._prepare, entries, bad))
                    except Exception:  # noqa: BLE001 - a bug: say loudly what was not stored
                        log.exception("batch preparation failed")
                        event("rows_not_stored", logging.ERROR,
                              rows=sum(len(f) for _, f in entries))
                        continue
                failed = False
                for prep in batches:
                    if failed:
                        self._retry.append(prep)
                        continue
                    backfill = await self._fetch_gaps(prep.gaps)
                    prep.gaps = []
                    try:
                        updates = await asyncio.to_thread(self._commit, prep, backfill)
                    except StoreError as exc:
                        self.stats.store_errors += 1
                        event("store_error", logging.ERROR, error=str(exc),
                              rows_kept=len(prep.ticks))
                        self._retry.append(prep)
                        failed = True
                        continue
                    if self.broadcaster is not None and len(updates):
                        self.broadcaster.publish(updates)
                    self.stats.bar_updates += len(updates)
                self.stats.busy_seconds += time.perf_counter() - t0
                if failed:
                    if self._stopping:
                        return  # reported by stop() as unstored rows
                    await asyncio.sleep(1.0)

    # -- step 1: normalize, identities, gaps (worker thread) ------------------------
    def _prepare(self, entries: list[tuple[int, pd.DataFrame]],
                 bad: list[pd.DataFrame]) -> _Prepared:
        parts, quarantine, gaps, seed = [], [], [], []
        rows_in = 0
        for q in bad:
            quarantine.append((q, np.full(len(q), self.service_partition, dtype=object)))
        i = 0
        while i < len(entries):  # runs of one connection epoch
            epoch = entries[i][0]
            j = i
            while j < len(entries) and entries[j][0] == epoch:
                j += 1
            raw = pd.concat([f for _, f in entries[i:j]], ignore_index=True)
            i = j
            rows_in += len(raw)
            result = self.normalizer.normalize(raw, source=getattr(self.connector, "name", "in"))
            if len(result.quarantine):
                quarantine.append((result.quarantine, self._partitions(result.quarantine, raw)))
            ticks = result.ticks
            if len(ticks) == 0:
                continue
            self._check_gaps(ticks, epoch, gaps, seed)
            if self.identity is not None:
                ticks = self.identity.restamp(ticks, live=True)
            parts.append(ticks)
        ticks = pd.concat(parts, ignore_index=True) if parts else empty_ticks()
        return _Prepared(ticks, quarantine, gaps, seed, rows_in)

    def _source_of(self, symbol: str, ts: int, row_source: str) -> str:
        if self.identity is None:
            return row_source
        date = trading_dates(np.array([ts], dtype="int64"), self.calendar)[0]
        return source_for(self.identity.stream, symbol, date)

    def _check_gaps(self, ticks: pd.DataFrame, epoch: int, gaps: list[Gap],
                    seed: list[tuple[str, str]]) -> None:
        ts = ts_ns(ticks["ts"])
        sym = ticks["symbol"].to_numpy(object)
        firsts = pd.Series(ts).groupby(sym, sort=True)
        lasts = firsts.max()
        first_idx = firsts.idxmin()
        for symbol, at in first_idx.items():
            first = int(ts[at])
            date = trading_dates(np.array([first], dtype="int64"), self.calendar)[0]
            if (symbol, date) not in self._seeded:
                self._seeded.add((symbol, date))
                seed.append((symbol, date))
            source = self._source_of(symbol, first, str(ticks["source"].iat[at]))
            prev = self._last_ts.get(symbol)
            if prev is None:
                wm = self.watermarks.get(source, symbol)
                if wm is not None:
                    self._restart_gap(symbol, source, wm, first, gaps)
            elif self._epoch_of.get(symbol) != epoch and first >= prev:
                self._gap(Gap(symbol, prev, first, source, "reconnect"), gaps)
            self._last_ts[symbol] = max(prev or 0, int(lasts[symbol]))
            self._epoch_of[symbol] = epoch

    def _restart_gap(self, symbol: str, source: str, wm: int, first: int,
                     gaps: list[Gap]) -> None:
        first_ms, wm_ms = first // NS_PER_MS, wm // NS_PER_MS
        if first_ms < wm_ms:
            event("replay_detected", symbol=symbol, source=source,
                  behind_watermark_s=round((wm - first) / 1e9, 3))
            return
        if self.identity is not None and first_ms == wm_ms:
            landed = self._count_at(symbol, source, wm_ms * NS_PER_MS)
            self.identity.seed(symbol, wm_ms, landed)
        self._gap(Gap(symbol, wm, first, source, "restart"), gaps)

    def _gap(self, gap: Gap, gaps: list[Gap]) -> None:
        self.stats.gaps += 1
        event("gap_detected", symbol=gap.symbol, reason=gap.reason,
              gap_seconds=round((gap.hi_ns - gap.lo_ns) / 1e9, 3),
              start=pd.Timestamp(gap.lo_ns, tz="UTC").isoformat(),
              end=pd.Timestamp(gap.hi_ns, tz="UTC").isoformat(),
              backfill=self.historical is not None)
        if self.historical is not None:
            gaps.append(gap)

    def _count_at(self, symbol: str, source: str, ts: int) -> int:
        query = select(func.count()).select_from(ticks_t).where(
            ticks_t.c.symbol == symbol, ticks_t.c.ts == ts, ticks_t.c.source == source,
            ticks_t.c.trade_id == "")
        with self.store.begin() as conn:
            return int(conn.execute(query).scalar_one())

    def _partitions(self, quarantine: pd.DataFrame, raw: pd.DataFrame) -> np.ndarray:
        """``<date>|<SYMBOL>`` of each quarantined row when it has both, else the service's."""
        out = np.full(len(quarantine), self.service_partition, dtype=object)
        if not {"source", "source_row"} <= set(raw.columns):
            return out
        key = pd.MultiIndex.from_arrays([raw["source"].astype(str),
                                         raw["source_row"].astype("int64")])
        qkey = pd.MultiIndex.from_arrays([quarantine["source"].astype(str),
                                          quarantine["source_row"].astype("int64")])
        pos = key.get_indexer(qkey) if key.is_unique else np.full(len(qkey), -1)
        found = pos >= 0
        if not found.any():
            return out
        rows = raw.iloc[pos[found]]
        col = rows["timestamp"]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            parsed = col.dt.tz_convert("UTC")
        else:
            parsed = pd.to_datetime(col.astype(str).str.strip(), utc=True, format="ISO8601",
                                    errors="coerce")
        ok_ts = parsed.notna().to_numpy(bool)
        ns = np.where(ok_ts, parsed.astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]")
                      .view("int64"), 0)
        dates = trading_dates(ns, self.calendar)
        symbol = rows["symbol"].astype(str).str.strip().str.upper().to_numpy(object)
        ok = ok_ts & np.isin(symbol, self.symbols)
        part = np.where(ok, dates.astype(object) + "|" + symbol, self.service_partition)
        out[np.flatnonzero(found)] = part
        return out

    # -- step 2: backfill (loop) -----------------------------------------------------
    async def _fetch_gaps(self, gaps: list[Gap]) -> list[tuple[Gap, pd.DataFrame]]:
        out = []
        for gap in gaps:
            lo = pd.Timestamp((gap.lo_ns // NS_PER_MS) * NS_PER_MS, tz="UTC")
            hi = pd.Timestamp((gap.hi_ns // NS_PER_MS + 1) * NS_PER_MS, tz="UTC")
            self.stats.backfill_requests += 1
            try:
                pages = [p async for p in self.historical.get_historical_ticks(gap.symbol, lo, hi)]
            except (ConnectorError, ValueError, OSError) as exc:
                self.stats.backfill_errors += 1
                event("backfill_failed", logging.WARNING, symbol=gap.symbol, error=str(exc))
                continue
            pages = [p for p in pages if len(p)]
            if pages:
                out.append((gap, pd.concat(pages, ignore_index=True)))
        return out

    # -- step 3: land, watermarks, quarantine, bars (worker thread) ------------------
    def _commit(self, prep: _Prepared, backfill: list[tuple[Gap, pd.DataFrame]]) -> pd.DataFrame:
        parts = []
        for gap, raw in backfill:
            result = self.normalizer.normalize(raw, source=getattr(self.historical, "name", "bf"))
            if len(result.quarantine):
                prep.quarantine.append((result.quarantine,
                                        self._partitions(result.quarantine, raw)))
            parts.append(self._backfill_ticks(gap, result.ticks))
        n_backfill = sum(len(p) for p in parts)
        ticks = pd.concat([*parts, prep.ticks], ignore_index=True) if parts else prep.ticks
        if len(ticks):
            ticks = _drop_same_identity(ticks)
            ticks = canonical_sort(ticks).reset_index(drop=True)
        new = ~self._landed_mask(ticks)
        for symbol, date in prep.seed:  # before landing: what earlier runs landed
            start, end = trading_day_window(date, self.calendar)
            self.aggregator.on_batch(self.ticks_repo.read(symbol, start, end))
        landed = self.ticks_repo.land(ticks)
        if len(ticks):
            ts = ts_ns(ticks["ts"])
            marks = pd.DataFrame({"source": ticks["source"].to_numpy(object),
                                  "symbol": ticks["symbol"].to_numpy(object), "ts": ts})
            for (source, symbol), mark in marks.groupby(["source", "symbol"])["ts"].max().items():
                self.stats.watermarks[f"{source}|{symbol}"] = self.watermarks.advance(
                    source, symbol, int(mark))
        n_quarantined = 0
        for rows, partitions in prep.quarantine:
            for partition in pd.unique(partitions):
                chunk = rows[partitions == partition].astype(QUARANTINE_COLUMNS)
                self.quarantine_repo.add(chunk, str(partition))
                n_quarantined += len(chunk)
        fresh = ticks[new]
        self.aggregator.on_batch(fresh)
        if n_backfill:
            self.stats.backfilled += _count_new_backfill(ticks, new, parts)
        self.stats.batches += 1
        self.stats.ticks += len(ticks)
        self.stats.landed += landed
        self.stats.duplicates += len(ticks) - landed
        self.stats.quarantined += n_quarantined
        if landed != int(new.sum()):
            event("landing_mismatch", logging.WARNING, expected=int(new.sum()), landed=landed)
        updates = self.aggregator.drain_updates()
        event("batch", logging.DEBUG, rows=prep.rows_in, ticks=len(ticks), landed=landed,
              backfill=n_backfill, quarantined=n_quarantined, bar_updates=len(updates))
        return updates

    def _backfill_ticks(self, gap: Gap, ticks: pd.DataFrame) -> pd.DataFrame:
        if len(ticks) == 0:
            return ticks
        ts = ts_ns(ticks["ts"])
        ms = ts // NS_PER_MS
        lo_ms, hi_ms = gap.lo_ns // NS_PER_MS, gap.hi_ns // NS_PER_MS
        has_id = ticks["trade_id"].to_numpy(object) != ""
        live_ids = self.identity is None
        if live_ids:  # same kind of identity on both sides: the inclusive window
            keep = (ms >= lo_ms) & (ms <= hi_ms)
        else:  # id-less live stream: id-less backfill is re-stamped, ids only strictly inside
            keep = np.where(has_id, (ms > lo_ms) & (ms < hi_ms), (ms >= lo_ms) & (ms <= hi_ms))
        ticks = ticks[keep & (ticks["symbol"].to_numpy(object) == gap.symbol)]
        if self.identity is not None:
            ticks = self.identity.restamp(ticks.reset_index(drop=True), live=False)
        return ticks

    def _landed_mask(self, ticks: pd.DataFrame) -> np.ndarray:
        """True for ticks whose identity is already in the landing table."""
        n = len(ticks)
        out = np.zeros(n, dtype=bool)
        if n == 0:
            return out
        ts = ts_ns(ticks["ts"])
        sym = ticks["symbol"].to_numpy(object)
        tid = ticks["trade_id"].to_numpy(object)
        src = ticks["source"].to_numpy(object)
        row = ticks["source_row"].to_numpy("int64")
        by_id = select(ticks_t.c.trade_id).where(
            ticks_t.c.symbol == bindparam("s"),
            ticks_t.c.trade_id.in_(bindparam("ids", expanding=True)))
        in_range = select(ticks_t.c.ts, ticks_t.c.source, ticks_t.c.source_row).where(
            ticks_t.c.symbol == bindparam("s"), ticks_t.c.ts >= bindparam("a"),
            ticks_t.c.ts <= bindparam("b"), ticks_t.c.trade_id == "")
        with self.store.begin() as conn:
            for symbol in pd.unique(sym):
                mine = sym == symbol
                idless = mine & (tid == "")
                if idless.any():
                    rows = conn.execute(in_range, {"s": symbol, "a": int(ts[idless].min()),
                                                   "b": int(ts[idless].max())}).all()
                    if rows:
                        have = pd.MultiIndex.from_tuples([tuple(r) for r in rows])
                        probe = pd.MultiIndex.from_arrays(
                            [ts[idless], src[idless].astype(str), row[idless]])
                        out[np.flatnonzero(idless)] = probe.isin(have)
                withid = np.flatnonzero(mine & (tid != ""))
                for s in range(0, len(withid), 500):
                    chunk = withid[s:s + 500]
                    ids = [str(x) for x in tid[chunk]]
                    have_ids = {r[0] for r in conn.execute(by_id, {"s": symbol, "ids": ids})}
                    if have_ids:
                        out[chunk] = np.isin(tid[chunk].astype(str), list(have_ids))
        return out


def _drop_same_identity(ticks: pd.DataFrame) -> pd.DataFrame:
    """One row per landing identity: (symbol, trade_id) or (symbol, ts, source, source_row)."""
    tid = ticks["trade_id"].astype(str)
    key = pd.DataFrame({
        "symbol": ticks["symbol"].astype(str),
        "a": np.where(tid.ne("").to_numpy(), tid.to_numpy(object), ticks["source"].astype(str)),
        "b": np.where(tid.ne("").to_numpy(), -1, ts_ns(ticks["ts"])),
        "c": np.where(tid.ne("").to_numpy(), -1, ticks["source_row"].to_numpy("int64")),
    })
    return ticks[~key.duplicated(keep="first").to_numpy(bool)]


def _count_new_backfill(ticks: pd.DataFrame, new: np.ndarray, parts: list) -> int:
    """New rows that came from the backfill (identities of the backfill parts)."""
    if not parts:
        return 0
    bf = pd.concat(parts, ignore_index=True)
    key = pd.MultiIndex.from_arrays([ticks["symbol"].astype(str), ts_ns(ticks["ts"]),
                                     ticks["source"].astype(str),
                                     ticks["source_row"].to_numpy("int64"),
                                     ticks["trade_id"].astype(str)])
    bkey = pd.MultiIndex.from_arrays([bf["symbol"].astype(str), ts_ns(bf["ts"]),
                                      bf["source"].astype(str),
                                      bf["source_row"].to_numpy("int64"),
                                      bf["trade_id"].astype(str)])
    return int((key.isin(bkey) & new).sum())


__all__ = ["Gap", "IngestStats", "IngestionService", "JsonFormatter", "event", "setup_logging"]
