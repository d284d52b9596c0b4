"""Gaps of the live stream and their backfill from a historical connector.

A connection epoch is the connector's handshake count (``stats.connections``, see
``ReconnectingStream``; a polling connector has one epoch). When ticks of a symbol
arrive in a new epoch (a reconnect), or for the first time in this process while a
watermark exists for its source (a restart), the gap is ``[last tick before, first
tick after]``; with a historical connector (``TickHistory``) it is fetched (both ends
inclusive, whole milliseconds) and landed with the batch.

Startup catch-up: before the stream connects, every subscribed symbol with a stored
watermark of the live stream's source (id-less stream: the newest of its
``<stream>:<SYMBOL>:<date>`` sources) gets a gap ``[watermark, present]`` (reason
``startup``) when a historical connector is configured, fetched, trimmed and landed by
the same code as the others, without waiting for a live tick: the ticks a killed
service had received but not landed are backfilled even when no tick follows (the
day's last trades). "The present" is the historical connector's own newest trade of
the symbol when it can tell (``LatestTrade``: Alpaca's latest trade, Finnhub's
``/quote``, a file's newest row, the simulator's market clock through the same
protocols), else the clock (UTC ns). The first live tick afterwards is then a restart
against the advanced watermark, as below.

Id-less backfill ticks are re-stamped with the live stream's identity
(``identity.StreamIdentity``), so the ones that already landed are the same rows and
land once. Backfill ticks WITH trade ids (Alpaca) behind an id-less live stream
(Finnhub) cannot be matched trade by trade: only the ticks strictly inside the gap
(boundary milliseconds excluded) are landed, under their own identity; a trade missed
at exactly the boundary milliseconds stays missing. A startup gap's upper end is the
present, not a live tick: it is inclusive. Behind a stream with ids of its own, the
window is inclusive and identities dedup exactly.

First tick of a symbol in this process vs the stored watermark ``wm`` of its source:
earlier than ``wm`` = the stream replays the tape (a restarted simulator, or ticks the
startup catch-up already landed): identities repeat, landing dedups; equal = resumed
inside ``wm``'s millisecond: numbering continues after the rows landed there; later =
a gap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..connectors.protocols import LatestTrade, LiveTicks, TickHistory
from ..core.calendar import DEFAULT_CALENDAR, trading_date_of
from ..core.errors import UserError, one_line
from ..core.schema import ts_ns
from ..storage import TickStore, WatermarkRepository
from .identity import NS_PER_MS, StreamIdentity, source_for
from .logs import event, log


@dataclass
class Gap:
    symbol: str
    lo_ns: int  # last tick before (inclusive)
    hi_ns: int  # first tick after (inclusive); at startup: the present
    source: str
    reason: str  # "reconnect", "restart" or "startup"
    hi_live: bool = True  # hi_ns is a live tick's time (False: the present, at startup)


@runtime_checkable
class SourcedStream(Protocol):
    """A live stream whose ticks land under one source name (``source``, e.g. Alpaca's
    ``alpaca:iex``): its watermark is the one to catch up from at startup."""

    source: str


@runtime_checkable
class ReconnectingStream(Protocol):
    """A live stream that reconnects by itself and counts its handshakes
    (``stats.connections``): ticks of a new connection may follow a gap."""

    stats: Any


def connection_epoch(connector: LiveTicks) -> int:
    """The connector's handshake count (0 for a stream without reconnects)."""
    if isinstance(connector, ReconnectingStream):
        return int(connector.stats.connections)
    return 0


class GapTracker:
    """Per symbol: the newest tick seen and its connection epoch; finds gaps in a
    batch of normalized ticks, fetches and trims their backfill."""

    def __init__(self, ticks: TickStore, watermarks: WatermarkRepository, *,
                 identity: StreamIdentity | None, historical: TickHistory | None,
                 stats, calendar: str = DEFAULT_CALENDAR,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.ticks = ticks
        self.watermarks = watermarks
        self.identity = identity
        self.historical = historical
        self.stats = stats
        self.calendar = calendar
        self.clock = clock  # UTC ns: "the present" of a history that cannot tell its own
        self._last_ts: dict[str, int] = {}  # symbol -> newest tick ts processed
        self._epoch_of: dict[str, int] = {}  # symbol -> connection epoch of its last tick

    # -- detection (worker thread) ---------------------------------------------------
    def check(self, ticks: pd.DataFrame, epoch: int) -> list[Gap]:
        """Gaps before the first tick of each symbol of ``ticks`` (one epoch's ticks)."""
        gaps: list[Gap] = []
        ts = ts_ns(ticks["ts"])
        sym = ticks["symbol"].to_numpy(object)
        per_symbol = pd.Series(ts).groupby(sym, sort=True)
        lasts = per_symbol.max()
        for symbol, at in per_symbol.idxmin().items():
            first = int(ts[at])
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
        return gaps

    def _source_of(self, symbol: str, ts: int, row_source: str) -> str:
        if self.identity is None:
            return row_source
        return source_for(self.identity.stream, symbol, trading_date_of(ts, self.calendar))

    def _restart_gap(self, symbol: str, source: str, wm: int, first: int,
                     gaps: list[Gap]) -> None:
        first_ms, wm_ms = first // NS_PER_MS, wm // NS_PER_MS
        if first_ms < wm_ms:
            event("replay_detected", symbol=symbol, source=source,
                  behind_watermark_s=round((wm - first) / 1e9, 3))
            return
        if self.identity is not None and first_ms == wm_ms:
            landed = self.ticks.count_at(symbol, source, wm_ms * NS_PER_MS)
            self.identity.seed(symbol, wm_ms, landed)
        self._gap(Gap(symbol, wm, first, source, "restart"), gaps)

    def _gap(self, gap: Gap, gaps: list[Gap]) -> None:
        self.stats.gaps += 1
        event("gap_detected", symbol=gap.symbol, reason=gap.reason,
              gap_seconds=round((gap.hi_ns - gap.lo_ns) / 1e9, 3),
              start=_iso(gap.lo_ns), end=_iso(gap.hi_ns),
              backfill=self.historical is not None)
        if self.historical is not None:
            gaps.append(gap)

    # -- startup catch-up (event loop) -----------------------------------------------
    async def startup(self, symbols: Iterable[str], live_source: str | None) -> list[Gap]:
        """``[watermark, present]`` of each symbol with a stored watermark of the live
        stream (``live_source`` for a stream with ids; the identity's sources else), when
        a historical connector is configured (see the module doc)."""
        gaps: list[Gap] = []
        if self.historical is None:
            return gaps
        for symbol in symbols:
            try:
                mark = await asyncio.to_thread(self._stream_watermark, symbol, live_source)
                present = None if mark is None else await self.present(symbol)
            except (UserError, OSError) as exc:  # store or vendor: one line, start goes on
                self.stats.backfill_errors += 1
                event("catch_up_failed", logging.WARNING, symbol=symbol, error=one_line(exc))
                continue
            except Exception:  # noqa: BLE001 - a bug: logged with its place, start goes on
                self.stats.backfill_errors += 1
                log.exception("catch up failed", extra={"fields": {"symbol": symbol}})
                continue
            if mark is None:
                continue
            source, wm = mark
            if present is None or present // NS_PER_MS < wm // NS_PER_MS:
                event("caught_up", symbol=symbol, watermark=_iso(wm),
                      present=None if present is None else _iso(present))
                continue
            self._gap(Gap(symbol, wm, present, source, "startup", hi_live=False), gaps)
        return gaps

    async def present(self, symbol: str) -> int | None:
        """UTC ns up to which the history has ``symbol``'s trades: its own newest trade
        when it can tell (``LatestTrade``; None: it has none), else the clock."""
        if isinstance(self.historical, LatestTrade):
            latest = await self.historical.latest_trade_time(symbol)
            return None if latest is None else int(pd.Timestamp(latest).value)
        return int(self.clock())

    def _stream_watermark(self, symbol: str, live_source: str | None
                          ) -> tuple[str, int] | None:
        """(source, ts) of the live stream's newest watermark of ``symbol``."""
        if self.identity is not None:
            return self.watermarks.latest(symbol, source_for(self.identity.stream, symbol, ""))
        wm = None if live_source is None else self.watermarks.get(live_source, symbol)
        return None if wm is None else (live_source, wm)

    # -- backfill (event loop) -------------------------------------------------------
    async def fetch(self, gaps: list[Gap]) -> list[tuple[Gap, pd.DataFrame]]:
        """The historical connector's raw ticks of each gap (whole milliseconds)."""
        out = []
        for gap in gaps:
            lo = pd.Timestamp((gap.lo_ns // NS_PER_MS) * NS_PER_MS, tz="UTC")
            hi = pd.Timestamp((gap.hi_ns // NS_PER_MS + 1) * NS_PER_MS, tz="UTC")
            self.stats.backfill_requests += 1
            try:
                pages = [p async for p in self.historical.get_historical_ticks(
                    gap.symbol, lo, hi)]
            except (UserError, OSError) as exc:  # the vendor refused or is unreachable
                self.stats.backfill_errors += 1
                event("backfill_failed", logging.WARNING, symbol=gap.symbol,
                      error=one_line(exc))
                continue
            except Exception:  # noqa: BLE001 - a bug: logged with its place, the stream goes on
                self.stats.backfill_errors += 1
                log.exception("backfill failed", extra={"fields": {"symbol": gap.symbol}})
                continue
            pages = [p for p in pages if isinstance(p, pd.DataFrame) and len(p)]
            if pages:
                out.append((gap, pd.concat(pages, ignore_index=True)))
        return out

    def trim(self, gap: Gap, ticks: pd.DataFrame) -> pd.DataFrame:
        """The normalized backfill ticks of ``gap`` to land (see the module doc)."""
        if len(ticks) == 0:
            return ticks
        ms = ts_ns(ticks["ts"]) // NS_PER_MS
        lo_ms, hi_ms = gap.lo_ns // NS_PER_MS, gap.hi_ns // NS_PER_MS
        inclusive = (ms >= lo_ms) & (ms <= hi_ms)
        if self.identity is None:  # same kind of identity on both sides
            keep = inclusive
        else:  # id-less live stream: id-less backfill is re-stamped, ids only strictly inside
            has_id = ticks["trade_id"].to_numpy(object) != ""
            below = (ms < hi_ms) if gap.hi_live else (ms <= hi_ms)
            keep = np.where(has_id, (ms > lo_ms) & below, inclusive)
        ticks = ticks[keep & (ticks["symbol"].to_numpy(object) == gap.symbol)]
        if self.identity is not None:
            ticks = self.identity.restamp(ticks.reset_index(drop=True), live=False)
        return ticks


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


__all__ = ["Gap", "GapTracker", "ReconnectingStream", "SourcedStream", "connection_epoch"]
