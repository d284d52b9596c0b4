"""Micro-batches of the live service: raw frames -> normalized ticks -> store -> bars.

``prepare`` (worker thread) turns what the connector delivered into normalized ticks
and quarantine rows. Whatever a connector delivers is taken: a frame without a
required column, with a cell of the wrong type (a list for a price, a bool for a size,
a dict for a symbol) or an unreadable ``source_row`` has those rows quarantined with
the reason (``sanitize``); the rest goes to ``TickNormalizer``, which quarantines the
rows it refuses. Quarantine rows go to ``<trading date>|<SYMBOL>`` when the row has
both, else to the service's own partition ``ingest|<stream>``.

``commit`` (worker thread) lands a prepared batch with its gaps' backfill:

1. the one tick identity (``core.identity``): a repeat inside the batch with the same
   content is a duplicate (counted once), with other content a conflicting duplicate
   (the first arrival stays, the other is quarantined with that reason);
2. partitions (symbol, trading date) seen for the first time seed the streaming bars
   with the ticks already stored for them (before this batch lands);
3. ``app.land.land_ticks`` per partition of the batch: idempotent landing; an identity
   already stored with other content is refused and quarantined (under its partition)
   as a conflicting duplicate;
4. watermarks per (source, symbol), quarantine rows per partition;
5. the ticks that were new to the store go to the streaming bars, so the streamed bars
   equal a batch build of the stored ticks; the bars they changed (and the seeded
   partitions' bars) are stored (``app.live_bars.write_live_bars``) and returned.

Steps 3 to 5 store in ONE transaction (``app.live_bars.flush_transaction``): the stored
bars always match the ticks the service landed, wherever the process is killed. The
streaming bars take the batch before that transaction; a store error keeps what they
drained on the batch (``Prepared.changes``), so the retry stores the same bars without
feeding the ticks twice. ``on_bars_written`` (optional) is told what each flush wrote,
per partition and timeframe, after the commit (it must not block: it runs in the worker).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..app.land import Landed, land_ticks, quarantine_partitions, tick_partitions
from ..app.live_bars import WrittenBars, flush_transaction, source_names, write_live_bars
from ..core.calendar import DEFAULT_CALENDAR, is_session, trading_dates, trading_day_window
from ..core.identity import CONFLICTING_DUPLICATE, find_repeats
from ..core.normalizer import REQUIRED_COLUMNS, NormalizeResult, TickNormalizer, canonical_sort
from ..core.partition import Partition
from ..core.schema import QUARANTINE_COLUMNS, empty_quarantine, empty_ticks, ts_ns
from ..storage import QuarantineRepository, Store, WatermarkRepository
from .bars import LiveBars
from .gaps import Gap, GapTracker
from .identity import StreamIdentity
from .logs import event, log

_NUMBER_TYPES = (int, float, np.integer, np.floating, str, type(None), type(pd.NA))
_TEXT_TYPES = (str, int, np.integer, type(None), type(pd.NA))
_TIME_TYPES = (str, int, np.integer, pd.Timestamp, np.datetime64, type(None), type(pd.NA))
_CELL_RULES = (  # column, allowed cell types, reason (first that applies wins)
    ("timestamp", _TIME_TYPES, "timestamp is not a time"),
    ("symbol", _TEXT_TYPES, "symbol is not text"),
    ("price", _NUMBER_TYPES, "price is not a number"),
    ("size", _NUMBER_TYPES, "size is not a number"),
    ("exchange", _TEXT_TYPES, "exchange is not text"),
    ("conditions", _TEXT_TYPES, "conditions is not text"),
    ("trade_id", _TEXT_TYPES, "trade_id is not text"),
    ("sequence", _NUMBER_TYPES, "sequence is not a number"),
    ("source", _TEXT_TYPES, "source is not text"),
)
SOURCE_ROW_BAD = "source_row is not an integer"


@dataclass
class Prepared:
    ticks: pd.DataFrame
    quarantine: list[tuple[pd.DataFrame, np.ndarray]]  # (rows, partition per row)
    gaps: list[Gap]  # to fetch before the commit
    rows_in: int
    backfill: list[tuple[Gap, pd.DataFrame]] = field(default_factory=list)  # fetched
    new: np.ndarray | None = None  # ticks new to the store, as first found (for a retry)
    changes: object | None = None  # what the streaming bars drained for it (for a retry)
    sources: dict[str, str] = field(default_factory=dict)  # symbol -> bars' source
    expired: int = 0  # its ticks older than the streamed trading dates


def rows_text(frame: pd.DataFrame) -> np.ndarray:
    """Each row as ``column=value,...`` (the raw form of a quarantined row)."""
    if len(frame) == 0 or len(frame.columns) == 0:
        return np.full(len(frame), "", dtype=object)
    text = frame.astype("str").fillna("")
    out = f"{text.columns[0]}=" + text.iloc[:, 0]
    for name in text.columns[1:]:
        out = out + f",{name}=" + text[name]
    return out.to_numpy(object)


def _bad_cells(col: pd.Series, allowed: tuple) -> np.ndarray:
    """Rows whose cell is not one of ``allowed`` types (object columns only: a typed
    column holds its type; a bool column is never a number or text)."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return np.ones(len(col), dtype=bool)
    if col.dtype != object:
        return np.zeros(len(col), dtype=bool)
    types = col.map(type)
    ok = types.isin(allowed) | types.map(lambda t: issubclass(t, allowed)
                                         and not issubclass(t, (bool, np.bool_)))
    missing = col.map(lambda v: isinstance(v, float) and v != v)  # NaN: an empty cell
    return ~(ok | missing).to_numpy(bool)


def sanitize(raw: pd.DataFrame, source: str, first_row: int
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(rows the normalizer can read, quarantine rows, all rows with their source and
    source_row) of ``raw``.

    ``source`` fills a missing ``source`` column; a missing ``source_row`` is numbered
    from ``first_row`` (the service's arrival counter), so identities of id-less rows
    stay unique across batches."""
    frame = raw.reset_index(drop=True)
    n = len(frame)
    if "source" not in frame.columns:
        frame = frame.assign(source=source)
    if "source_row" not in frame.columns:
        frame = frame.assign(source_row=np.arange(first_row, first_row + n, dtype="int64"))
    reason = np.full(n, None, dtype=object)
    for name in REQUIRED_COLUMNS:
        if name not in frame.columns:
            reason[pd.isna(reason)] = f"missing {name}"
    for name, allowed, why in _CELL_RULES:
        if name in frame.columns:
            bad = _bad_cells(frame[name], allowed) & pd.isna(reason)
            reason[bad] = why
    col = frame["source_row"]
    if pd.api.types.is_integer_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        row, row_ok = col, np.ones(n, dtype=bool)
    else:
        row = pd.to_numeric(col.where(~_bad_cells(col, _NUMBER_TYPES)), errors="coerce")
        value = row.to_numpy("float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            row_ok = np.isfinite(value) & (value == np.floor(value)) & (np.abs(value) < 2**62)
        reason[~row_ok & pd.isna(reason)] = SOURCE_ROW_BAD
    bad = ~pd.isna(reason)
    if not bad.any():
        return frame.astype({"source_row": "int64"}), empty_quarantine(), frame
    rows = frame[bad]
    quarantine = pd.DataFrame({
        "source": rows["source"].map(lambda v: v if isinstance(v, str) else source),
        "source_row": np.where(row_ok[bad], row.to_numpy("float64", na_value=-1)[bad], -1),
        "reason": reason[bad].astype(str),
        "raw": rows_text(rows),
    }).astype(QUARANTINE_COLUMNS)
    good = frame[~bad].astype({"source_row": "int64"}).reset_index(drop=True)
    return good, quarantine, frame


def ticks_quarantine(ticks: pd.DataFrame, reason: str) -> pd.DataFrame:
    """Normalized ticks as quarantine rows with ``reason``."""
    shown = ticks.drop(columns=["source", "source_row"])
    return pd.DataFrame({
        "source": ticks["source"].to_numpy(object), "source_row": ticks["source_row"],
        "reason": reason, "raw": rows_text(shown),
    }).astype(QUARANTINE_COLUMNS)


class Batches:
    """Prepares and commits the micro-batches of one ingestion service."""

    def __init__(self, store: Store, symbols: Iterable[str], bars: LiveBars, gaps: GapTracker,
                 *, source: str, service_partition: str, identity: StreamIdentity | None,
                 historical_source: str, stats, calendar: str = DEFAULT_CALENDAR,
                 on_bars_written: Callable[[WrittenBars], None] | None = None) -> None:
        self.store = store
        self.symbols = sorted(symbols)
        self.bars = bars
        self.gaps = gaps
        self.source = source
        self.service_partition = service_partition
        self.identity = identity
        self.historical_source = historical_source
        self.stats = stats
        self.calendar = calendar
        self.normalizer = TickNormalizer(symbols=self.symbols)
        self.ticks_repo = store.ticks
        self.watermarks = WatermarkRepository(store)
        self.quarantine_repo = QuarantineRepository(store)
        self._next_row = 0  # arrival number of rows delivered without a source_row
        self._seeded: dict[str, set[str]] = {}  # symbol -> trading dates seeded
        self.on_bars_written = on_bars_written
        self.rule_set_of = {s: bars.rule_set(s) for s in self.symbols}

    # -- prepare -----------------------------------------------------------------------
    def normalize(self, frames: list[pd.DataFrame], source: str,
                  quarantine: list) -> pd.DataFrame:
        """Normalized ticks of raw frames; their bad rows appended to ``quarantine``."""
        clean = []
        for raw in frames:  # each as delivered: a frame's own columns tell what it lacks
            frame, bad, keyed = sanitize(raw, source, self._next_row)
            if "source_row" not in raw.columns:
                self._next_row += len(raw)
            if len(bad):
                quarantine.append((bad, self._partitions(bad, keyed)))
            if len(frame):
                clean.append(frame)
        if not clean:
            return empty_ticks()
        frame = clean[0] if len(clean) == 1 else pd.concat(clean, ignore_index=True)
        result = self.normalizer.normalize(frame, source=source)
        if len(result.quarantine):
            quarantine.append((result.quarantine, self._partitions(result.quarantine, frame)))
        return result.ticks

    def prepare(self, entries: list[tuple[int, pd.DataFrame]],
                bad: list[pd.DataFrame]) -> Prepared:
        """Normalized ticks, quarantine rows and gaps of buffered (epoch, frame) entries
        and of the connector's quarantine frames."""
        parts, quarantine, gaps = [], [], []
        rows_in = 0
        for q in bad:
            quarantine.append((q, np.full(len(q), self.service_partition, dtype=object)))
        i = 0
        while i < len(entries):  # runs of one connection epoch
            epoch = entries[i][0]
            j = i
            while j < len(entries) and entries[j][0] == epoch:
                j += 1
            frames = [f for _, f in entries[i:j]]
            i = j
            rows_in += sum(len(f) for f in frames)
            ticks = self.normalize(frames, self.source, quarantine)
            if len(ticks) == 0:
                continue
            gaps.extend(self.gaps.check(ticks, epoch))
            if self.identity is not None:
                ticks = self.identity.restamp(ticks, live=True)
            parts.append(ticks)
        ticks = pd.concat(parts, ignore_index=True) if parts else empty_ticks()
        return Prepared(ticks, quarantine, gaps, rows_in)

    def _partitions(self, quarantine: pd.DataFrame, raw: pd.DataFrame) -> np.ndarray:
        """``<date>|<SYMBOL>`` of each quarantined row when it has both (a subscribed
        symbol), else the service's partition (``app.land.quarantine_partitions``)."""
        return quarantine_partitions(quarantine, raw, self.service_partition,
                                     symbols=self.symbols, calendar=self.calendar)

    # -- commit ------------------------------------------------------------------------
    def commit(self, prep: Prepared) -> pd.DataFrame:
        """Land a prepared batch and its fetched backfill; the bar updates it made.
        After a store error the same ``prep`` is committed again: landing is idempotent, and
        which ticks were new to the store is kept from the first attempt (``prep.new``)."""
        quarantine = list(prep.quarantine)
        parts = []
        for gap, raw in prep.backfill:
            ticks = self.normalize([raw], self.historical_source, quarantine)
            parts.append(self.gaps.trim(gap, ticks))
        n_backfill = sum(len(p) for p in parts)
        ticks = pd.concat([*parts, prep.ticks], ignore_index=True) if parts else prep.ticks
        from_backfill = np.r_[np.ones(n_backfill, bool), np.zeros(len(prep.ticks), bool)]
        repeats_in_batch = 0
        if len(ticks):
            rep = find_repeats(ticks)  # arrival order: the backfill, then the stream
            if rep.conflicting.any():
                clash = ticks[rep.conflicting]
                quarantine.append((ticks_quarantine(clash, CONFLICTING_DUPLICATE),
                                        tick_partitions(clash, self.calendar)))
            repeats_in_batch = int(rep.duplicate.sum())
            keep = ~rep.repeated
            ticks, from_backfill = ticks[keep], from_backfill[keep]
            order = canonical_sort(ticks.assign(_bf=from_backfill)).reset_index(drop=True)
            from_backfill = order.pop("_bf").to_numpy(bool)
            ticks = order
        if prep.new is None or len(prep.new) != len(ticks):
            prep.new = ~self.ticks_repo.stored_mask(ticks)
        new = prep.new
        if prep.changes is None:  # a retry keeps what the streaming bars took the first time
            seeded = self._seed(ticks)  # before landing: what earlier runs landed
            expired = self.bars.expired
            fresh = ticks[new]
            self.bars.on_batch(fresh)
            prep.expired = self.bars.expired - expired
            prep.changes = self.bars.drain_changes()
            prep.sources = _sources([*seeded, fresh])
        changes = prep.changes
        with flush_transaction(self.store):  # ticks, watermarks, quarantine and bars: all or none
            landed = self._land(ticks)
            marks = {}
            if len(ticks):
                frame = pd.DataFrame({"source": ticks["source"].to_numpy(object),
                                      "symbol": ticks["symbol"].to_numpy(object),
                                      "ts": ts_ns(ticks["ts"])})
                for (source, symbol), mark in frame.groupby(["source", "symbol"])[
                        "ts"].max().items():
                    marks[f"{source}|{symbol}"] = self.watermarks.advance(source, symbol,
                                                                          int(mark))
            n_quarantined = self._store_quarantine(quarantine) + landed.conflicting
            written = write_live_bars(self.store, changes, self.rule_set_of, prep.sources,
                                      self.calendar)
        n_landed = landed.new
        self.stats.watermarks.update(marks)
        if prep.expired:
            event("late_ticks_not_streamed", logging.WARNING, ticks=prep.expired,
                  note="older than the retained trading dates: landed, not streamed; "
                  "the partition's next live_bars run builds their bars")
        self.stats.backfilled += int((new & from_backfill).sum())
        self.stats.batches += 1
        self.stats.ticks += len(ticks) - landed.conflicting + repeats_in_batch
        self.stats.landed += n_landed
        self.stats.duplicates += landed.already + repeats_in_batch
        self.stats.quarantined += n_quarantined
        self.stats.bars_written += sum(v["bars"] for tfs in written.values()
                                       for v in tfs.values())
        if n_quarantined:  # one line per batch: how many rows, why
            reasons = pd.concat([q["reason"] for q, _ in quarantine] + [pd.Series(
                [CONFLICTING_DUPLICATE] * landed.conflicting, dtype="str")]).value_counts()
            event("rows_quarantined", logging.WARNING, rows=n_quarantined,
                  reasons={str(k): int(v) for k, v in sorted(reasons.items())})
        if n_landed != int(new.sum()):
            event("landing_mismatch", logging.WARNING, expected=int(new.sum()), landed=n_landed)
        updates = changes.bars
        event("batch", logging.DEBUG, rows=prep.rows_in, ticks=len(ticks), landed=n_landed,
              backfill=n_backfill, quarantined=n_quarantined, bar_updates=len(updates))
        if written and self.on_bars_written is not None:
            try:
                self.on_bars_written(written)
            except Exception:  # noqa: BLE001 - reporting never stops ingestion
                log.exception("bars_written report failed")
        return updates

    def _land(self, ticks: pd.DataFrame) -> Landed:
        """``app.land.land_ticks`` per partition of the batch (conflicting duplicates are
        quarantined under their own ``<date>|<SYMBOL>``); the totals."""
        if len(ticks) == 0:
            return Landed(0, 0, 0, 0, 0)
        keys = tick_partitions(ticks, self.calendar)
        uniq = pd.unique(keys)
        parts = [(uniq[0], ticks)] if len(uniq) == 1 else [(k, ticks[keys == k]) for k in uniq]
        new = already = conflicting = 0
        for key, part in parts:
            res = land_ticks(self.store, NormalizeResult(part, empty_quarantine(), len(part)),
                             str(key))
            new, already, conflicting = (new + res.new, already + res.already,
                                         conflicting + res.conflicting)
        return Landed(len(ticks), len(ticks), new, already, conflicting)

    def _store_quarantine(self, quarantine: list[tuple[pd.DataFrame, np.ndarray]]) -> int:
        """Store each (rows, partition per row) in one bulk insert; the rows given."""
        n = 0
        for rows, partitions in quarantine:
            self.quarantine_repo.add(rows.astype(QUARANTINE_COLUMNS), partitions)
            n += len(rows)
        return n

    def _seed(self, ticks: pd.DataFrame) -> list[pd.DataFrame]:
        """Seed the streaming bars of partitions seen for the first time with the ticks
        already stored for them (their bars are then all drained, hence stored again: what
        the store holds for the partition is rewritten from its ticks); forget the
        partitions the bars no longer retain. Returns the seeded ticks."""
        out: list[pd.DataFrame] = []
        if len(ticks) == 0:
            return out
        pairs = pd.DataFrame({"symbol": ticks["symbol"].to_numpy(object),
                              "date": trading_dates(ts_ns(ticks["ts"]), self.calendar),
                              "ts": ts_ns(ticks["ts"])}).groupby(["symbol", "date"])["ts"].min()
        for (symbol, date), first in pairs.items():
            seeded = self._seeded.setdefault(symbol, set())
            if date in seeded or not self.bars.retains(symbol, int(first)):
                continue
            seeded.add(date)
            if is_session(date, self.calendar):
                stored = self.ticks_repo.read(Partition(date, symbol, self.calendar))
                self.bars.on_batch(stored)
                if len(stored):
                    out.append(stored)
        for symbol, dates in self._seeded.items():
            for date in [d for d in dates if not self.bars.retains(
                    symbol, trading_day_window(d, self.calendar)[1] - 1)]:
                dates.discard(date)
        return out


def _sources(frames: list[pd.DataFrame]) -> dict[str, str]:
    """Symbol -> the bars' ``source`` text of the ticks fed to the streaming bars."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return {}
    both = pd.concat([f[["symbol", "source"]] for f in frames], ignore_index=True)
    return {str(sym): source_names(group["source"].astype(str).unique())
            for sym, group in both.groupby("symbol", sort=True)}


__all__ = ["Batches", "Prepared", "rows_text", "sanitize", "tick_partitions"]
